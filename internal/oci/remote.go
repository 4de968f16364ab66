package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Remote says how to reach a registry.
type Remote struct {
	// Keychain finds credentials; nil means authn.DefaultKeychain, which
	// reads the Docker configuration ($DOCKER_CONFIG/config.json or
	// ~/.docker/config.json, credential helpers included).
	Keychain authn.Keychain
	// Insecure allows plain HTTP. Registries on localhost and 127.0.0.1 are
	// reached over HTTP without it.
	Insecure bool
	// Transport replaces the default HTTP transport (tests).
	Transport http.RoundTripper
}

func (r Remote) parse(image string) (name.Reference, error) {
	var opts []name.Option
	if r.Insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(image, "oci://"), opts...)
	if err != nil {
		return nil, fmt.Errorf("%q is not an image reference: write registry/repository:tag, e.g. ghcr.io/acme/ipveil:v1.0.0 (%v)", image, err)
	}
	return ref, nil
}

func (r Remote) options(ctx context.Context) []remote.Option {
	kc := r.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithUserAgent("ipveil-oci")}
	if r.Transport != nil {
		opts = append(opts, remote.WithTransport(r.Transport))
	}
	return opts
}

// Push uploads img to image (registry/repository[:tag], or
// registry/repository@sha256:… which must then be img's digest) and returns
// the reference that pins it: registry/repository@sha256:….
func (r Remote) Push(ctx context.Context, img v1.Image, image string) (name.Digest, error) {
	ref, err := r.parse(image)
	if err != nil {
		return name.Digest{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	if dref, ok := ref.(name.Digest); ok && dref.DigestStr() != d.String() {
		return name.Digest{}, fmt.Errorf("%s names digest %s, but the image to push is %s: push by tag, or name the image's own digest", image, dref.DigestStr(), d)
	}
	if err := remote.Write(ref, img, r.options(ctx)...); err != nil {
		return name.Digest{}, explain(ref, err)
	}
	return ref.Context().Digest(d.String()), nil
}

// Pull fetches image the way Istio and Envoy Gateway do (an index resolves
// to its linux/amd64 image) and returns it with its manifest digest.
func (r Remote) Pull(ctx context.Context, image string) (v1.Image, error) {
	ref, err := r.parse(image)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(ref, r.options(ctx)...)
	if err != nil {
		return nil, explain(ref, err)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("reading %s as an image: %w", image, err)
	}
	return img, nil
}

// explain adds what to do to the registry errors people meet most.
func explain(ref name.Reference, err error) error {
	reg := ref.Context().RegistryStr()
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s refused the credentials for %s: log in with `docker login %s` (credentials come from $DOCKER_CONFIG or ~/.docker/config.json, credential helpers included) and check you may write to %s: %w",
				reg, ref.Context(), reg, ref.Context().RepositoryStr(), err)
		case http.StatusNotFound:
			return fmt.Errorf("%s has no %s (check the name and tag): %w", reg, ref, err)
		}
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("%s speaks plain HTTP: pass -insecure (make push INSECURE=1) if that is intended: %w", reg, err)
	}
	return fmt.Errorf("%s: %w", ref, err)
}

// Package oci packages a Proxy-Wasm module as an OCI image that Istio's
// WasmPlugin and Envoy Gateway's EnvoyExtensionPolicy can pull, writes it as
// an OCI image layout and archive, pushes it to a registry, and reads a
// module back out of an image by the same rules those control planes apply.
//
// Two layouts are built, both accepted by Istio and Envoy Gateway:
//
//   - Compat (the default): an ordinary OCI image with one
//     application/vnd.oci.image.layer.v1.tar+gzip layer holding a single
//     file, plugin.wasm, and the manifest annotation
//     module.wasm.image/variant=compat. Any registry and any image tool
//     handles it.
//   - Artifact ("oci"): the Wasm artifact layout, a config of media type
//     application/vnd.module.wasm.config.v1+json and exactly two layers, that
//     runtime config again and the raw module as
//     application/vnd.module.wasm.content.layer.v1+wasm. Istio and Envoy
//     Gateway require exactly two layers here; a one-layer artifact is
//     refused by both.
//
// Images are reproducible: the same module and options give the same bytes
// and so the same digest (fixed timestamps, one sorted tar entry,
// deterministic gzip, JSON with a fixed field order).
package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Variant names an image layout.
type Variant string

// Variants.
const (
	// Compat is an OCI image whose single tar+gzip layer holds plugin.wasm.
	Compat Variant = "compat"
	// Artifact is the two-layer Wasm artifact layout.
	Artifact Variant = "oci"
)

// Names and media types from the Wasm image specification.
const (
	// PluginFile is the file the compat layer holds; Istio and Envoy Gateway
	// look for exactly this base name.
	PluginFile = "plugin.wasm"
	// RuntimeConfigFile is the title of the artifact layout's config layer.
	RuntimeConfigFile = "runtime-config.json"
	// VariantAnnotation is the manifest annotation that marks a compat image.
	VariantAnnotation = "module.wasm.image/variant"
	// TitleAnnotation names the file a layer holds.
	TitleAnnotation = "org.opencontainers.image.title"
	// RefNameAnnotation names an image in an OCI image layout's index.
	RefNameAnnotation = "org.opencontainers.image.ref.name"

	// WasmConfigMediaType is the artifact layout's config (and first layer).
	WasmConfigMediaType types.MediaType = "application/vnd.module.wasm.config.v1+json"
	// WasmContentMediaType is the artifact layout's raw module layer.
	WasmContentMediaType types.MediaType = "application/vnd.module.wasm.content.layer.v1+wasm"
)

// Platform of the compat image's config: the GOOS/GOARCH the module is
// built for. Neither Istio nor Envoy Gateway reads it; it keeps the image
// from claiming to run on linux.
const (
	platformOS   = "wasip1"
	platformArch = "wasm"
)

// wasmMagic starts every WebAssembly binary.
var wasmMagic = []byte{0x00, 'a', 's', 'm'}

// Options control how an image is built. The zero value builds the compat
// variant with all timestamps at the Unix epoch and root id "ipveil".
type Options struct {
	// Variant is Compat (default) or Artifact.
	Variant Variant
	// Created is the time written into the tar entry and the image config.
	// The zero value means the Unix epoch. Use SOURCE_DATE_EPOCH for a
	// meaningful but still reproducible time.
	Created time.Time
	// RootIDs are the root ids recorded in the artifact layout's runtime
	// config. Empty means ["ipveil"].
	RootIDs []string
}

// ParseVariant reads a variant name as given on a command line.
func ParseVariant(s string) (Variant, error) {
	switch Variant(s) {
	case "", Compat:
		return Compat, nil
	case Artifact:
		return Artifact, nil
	}
	return "", fmt.Errorf("unknown variant %q: use %q (one tar+gzip layer with plugin.wasm, the default) or %q (two-layer Wasm artifact)", s, Compat, Artifact)
}

// Build packages module as an image. It refuses bytes that are not a
// WebAssembly binary, as Istio does after pulling.
func Build(module []byte, opts Options) (v1.Image, error) {
	if len(module) < 8 || !bytes.Equal(module[:4], wasmMagic) {
		return nil, errors.New("the module is not a WebAssembly binary (it does not start with \\0asm): build it with `make wasm` and package build/ipveil.wasm")
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC().Truncate(time.Second)
	if created.Before(time.Unix(0, 0)) {
		return nil, fmt.Errorf("creation time %s is before 1970: give a time (SOURCE_DATE_EPOCH) of 0 or later", created.Format(time.RFC3339))
	}
	variant := opts.Variant
	if variant == "" {
		variant = Compat
	}
	switch variant {
	case Compat:
		return buildCompat(module, created)
	case Artifact:
		roots := opts.RootIDs
		if len(roots) == 0 {
			roots = []string{"ipveil"}
		}
		return buildArtifact(module, roots)
	}
	_, err := ParseVariant(string(variant))
	return nil, err
}

// imageConfig is the compat image's config: an OCI image config with a
// fixed field order.
type imageConfig struct {
	Created      string   `json:"created"`
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	Config       struct{} `json:"config"`
	RootFS       rootFS   `json:"rootfs"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// runtimeConfig is the artifact layout's config, per the Wasm image
// specification. Neither Istio nor Envoy Gateway reads it.
type runtimeConfig struct {
	Type        string            `json:"type"`
	ABIVersions []string          `json:"abiVersions"`
	Config      runtimeConfigBody `json:"config"`
}

type runtimeConfigBody struct {
	RootIDs []string `json:"root_ids"`
}

func buildCompat(module []byte, created time.Time) (v1.Image, error) {
	layerTar, err := pluginTar(module, created)
	if err != nil {
		return nil, err
	}
	layerGz, err := deterministicGzip(layerTar)
	if err != nil {
		return nil, err
	}
	cfg := imageConfig{
		Created:      created.Format(time.RFC3339),
		Architecture: platformArch,
		OS:           platformOS,
		RootFS:       rootFS{Type: "layers", DiffIDs: []string{digestOf(layerTar).String()}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	layer := blob{data: layerGz, mediaType: types.OCILayer}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        descriptorOf(cfgJSON, types.OCIConfigJSON, nil),
		Layers:        []v1.Descriptor{descriptorOf(layerGz, types.OCILayer, nil)},
		Annotations:   map[string]string{VariantAnnotation: string(Compat)},
	}
	return newImage(m, cfgJSON, layer)
}

func buildArtifact(module []byte, rootIDs []string) (v1.Image, error) {
	cfgJSON, err := json.Marshal(runtimeConfig{
		Type:        "envoy_proxy",
		ABIVersions: []string{"v0.2.1"},
		Config:      runtimeConfigBody{RootIDs: rootIDs},
	})
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        descriptorOf(cfgJSON, WasmConfigMediaType, nil),
		Layers: []v1.Descriptor{
			descriptorOf(cfgJSON, WasmConfigMediaType, map[string]string{TitleAnnotation: RuntimeConfigFile}),
			descriptorOf(module, WasmContentMediaType, map[string]string{TitleAnnotation: PluginFile}),
		},
	}
	return newImage(m, cfgJSON,
		blob{data: cfgJSON, mediaType: WasmConfigMediaType},
		blob{data: module, mediaType: WasmContentMediaType})
}

// pluginTar is a tar archive with the single entry plugin.wasm: mode 0644,
// owner 0:0, no user or group names, the given modification time, USTAR
// format so no PAX records carry other times.
func pluginTar(module []byte, created time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     PluginFile,
		Mode:     0o644,
		Size:     int64(len(module)),
		ModTime:  created,
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("writing the layer's tar header: %w", err)
	}
	if _, err := tw.Write(module); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// deterministicGzip compresses b with an empty gzip header (no name, no
// modification time): the output depends only on b and the Go release's
// compressor.
func deterministicGzip(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func digestOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func descriptorOf(b []byte, mt types.MediaType, annotations map[string]string) v1.Descriptor {
	return v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: digestOf(b), Annotations: annotations}
}

// blob is one layer's bytes as stored in the registry.
type blob struct {
	data      []byte
	mediaType types.MediaType
}

func (b blob) Digest() (v1.Hash, error)            { return digestOf(b.data), nil }
func (b blob) Compressed() (io.ReadCloser, error)  { return io.NopCloser(bytes.NewReader(b.data)), nil }
func (b blob) Size() (int64, error)                { return int64(len(b.data)), nil }
func (b blob) MediaType() (types.MediaType, error) { return b.mediaType, nil }

// rawImage is an image given by its exact manifest, config and layer bytes.
type rawImage struct {
	manifest []byte
	config   []byte
	layers   map[v1.Hash]blob
}

func newImage(m v1.Manifest, config []byte, layers ...blob) (v1.Image, error) {
	mj, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	r := &rawImage{manifest: mj, config: config, layers: map[v1.Hash]blob{}}
	for _, l := range layers {
		r.layers[digestOf(l.data)] = l
	}
	return partial.CompressedToImage(r)
}

func (r *rawImage) RawConfigFile() ([]byte, error)      { return r.config, nil }
func (r *rawImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (r *rawImage) RawManifest() ([]byte, error)        { return r.manifest, nil }

func (r *rawImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := r.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("image has no blob %s", h)
}

// Extract returns the module an image carries, and the variant it was found
// as, by the rules Istio and Envoy Gateway apply when they pull a WasmPlugin
// or EnvoyExtensionPolicy image:
//
//   - a Docker schema 2 manifest: the last layer must be
//     application/vnd.docker.image.rootfs.diff.tar.gzip and hold plugin.wasm;
//   - otherwise, if the last layer is application/vnd.oci.image.layer.v1.tar+gzip
//     and holds plugin.wasm: compat;
//   - otherwise exactly two layers, one of them
//     application/vnd.module.wasm.content.layer.v1+wasm, whose bytes are
//     the module: the artifact layout.
//
// The result must start like a WebAssembly binary.
func Extract(img v1.Image) ([]byte, Variant, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, "", fmt.Errorf("reading the manifest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, "", fmt.Errorf("reading the layers: %w", err)
	}
	var module []byte
	var variant Variant
	if m.MediaType == types.DockerManifestSchema2 {
		module, err = fromTarLayer(layers, types.DockerLayer)
		variant = Compat
	} else {
		var errCompat, errArtifact error
		if module, errCompat = fromTarLayer(layers, types.OCILayer); errCompat == nil {
			variant = Compat
		} else if module, errArtifact = fromArtifact(layers); errArtifact == nil {
			variant = Artifact
		} else {
			err = fmt.Errorf("not a Wasm image Istio or Envoy Gateway can load: as compat: %v; as the Wasm artifact layout: %v", errCompat, errArtifact)
		}
	}
	if err != nil {
		return nil, "", err
	}
	if len(module) < 8 || !bytes.Equal(module[:4], wasmMagic) {
		return nil, "", fmt.Errorf("the %s image holds a file that is not a WebAssembly binary", variant)
	}
	return module, variant, nil
}

func fromTarLayer(layers []v1.Layer, want types.MediaType) ([]byte, error) {
	if len(layers) == 0 {
		return nil, errors.New("the image has no layers")
	}
	last := layers[len(layers)-1]
	mt, err := last.MediaType()
	if err != nil {
		return nil, err
	}
	if mt != want {
		return nil, fmt.Errorf("last layer is %s, want %s", mt, want)
	}
	rc, err := last.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return nil, fmt.Errorf("last layer is not gzip: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("no %s in the last layer", PluginFile)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the last layer's tar: %w", err)
		}
		if path.Base(h.Name) == PluginFile {
			return io.ReadAll(tr)
		}
	}
}

func fromArtifact(layers []v1.Layer) ([]byte, error) {
	if len(layers) != 2 {
		return nil, fmt.Errorf("%d layers, want exactly 2", len(layers))
	}
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, err
		}
		if mt != WasmContentMediaType {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	return nil, fmt.Errorf("no layer of media type %s", WasmContentMediaType)
}

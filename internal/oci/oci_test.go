package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fakeModule is a WebAssembly header followed by n random bytes: enough for
// every format check, which never runs the module.
func fakeModule(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, 8+n)
	copy(b, "\x00asm\x01\x00\x00\x00")
	if _, err := rand.Read(b[8:]); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustBuild(t testing.TB, module []byte, opts Options) v1.Image {
	t.Helper()
	img, err := Build(module, opts)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digest(t testing.TB, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testRegistry serves the registry protocol on loopback over HTTP.
func testRegistry(t *testing.T) (host string) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func anonymous() Remote {
	return Remote{Keychain: authn.NewMultiKeychain()} // resolves everything to anonymous
}

func TestCompatImageFormat(t *testing.T) {
	module := fakeModule(t, 100_000)
	img := mustBuild(t, module, Options{})

	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 2 || m.MediaType != types.OCIManifestSchema1 {
		t.Errorf("manifest: schemaVersion %d mediaType %q, want 2 %q", m.SchemaVersion, m.MediaType, types.OCIManifestSchema1)
	}
	if m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("config media type %q, want %q", m.Config.MediaType, types.OCIConfigJSON)
	}
	if got := m.Annotations[VariantAnnotation]; got != "compat" || len(m.Annotations) != 1 {
		t.Errorf("manifest annotations %v, want only %s=compat", m.Annotations, VariantAnnotation)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Fatalf("layers %+v, want one %s", m.Layers, types.OCILayer)
	}

	// The layer: gzip with an empty header around a tar with exactly one
	// entry, plugin.wasm, owned by root, 0644, at the epoch.
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header name %q mtime %v, want empty", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	var entries []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, h.Name)
		if h.Name != PluginFile || h.Typeflag != tar.TypeReg || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("tar entry %+v, want a plain 0644 file %s owned by 0:0 at the epoch", h, PluginFile)
		}
		got, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, module) {
			t.Error("plugin.wasm in the layer differs from the module")
		}
	}
	if len(entries) != 1 {
		t.Errorf("tar entries %v, want exactly [%s]", entries, PluginFile)
	}

	// The config: an OCI image config whose diff_id is the uncompressed tar.
	var cfg struct {
		Architecture, OS, Created string
		RootFS                    struct {
			Type    string
			DiffIDs []string `json:"diff_ids"`
		}
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	diffID, err := layers[0].DiffID()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "wasm" || cfg.OS != "wasip1" || cfg.Created != "1970-01-01T00:00:00Z" ||
		cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != diffID.String() {
		t.Errorf("config %s: want wasip1/wasm, created at the epoch, diff_ids [%s]", raw, diffID)
	}

	got, variant, err := Extract(img)
	if err != nil || variant != Compat || !bytes.Equal(got, module) {
		t.Errorf("Extract: variant %q, equal %v, err %v", variant, bytes.Equal(got, module), err)
	}
}

func TestArtifactImageFormat(t *testing.T) {
	module := fakeModule(t, 50_000)
	img := mustBuild(t, module, Options{Variant: Artifact})

	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %q", m.MediaType)
	}
	if m.Config.MediaType != WasmConfigMediaType {
		t.Errorf("config media type %q, want %q", m.Config.MediaType, WasmConfigMediaType)
	}
	if len(m.Annotations) != 0 {
		t.Errorf("artifact manifest annotations %v, want none (the compat annotation would be a lie)", m.Annotations)
	}
	if len(m.Layers) != 2 {
		t.Fatalf("%d layers: Istio and Envoy Gateway require exactly 2", len(m.Layers))
	}
	if m.Layers[0].MediaType != WasmConfigMediaType || m.Layers[0].Digest != m.Config.Digest || m.Layers[0].Annotations[TitleAnnotation] != RuntimeConfigFile {
		t.Errorf("layer 0 %+v, want the runtime config", m.Layers[0])
	}
	if m.Layers[1].MediaType != WasmContentMediaType || m.Layers[1].Size != int64(len(module)) || m.Layers[1].Annotations[TitleAnnotation] != PluginFile {
		t.Errorf("layer 1 %+v, want the raw module", m.Layers[1])
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var rc struct {
		Type   string
		Config struct {
			RootIDs []string `json:"root_ids"`
		}
	}
	if err := json.Unmarshal(raw, &rc); err != nil || rc.Type != "envoy_proxy" || len(rc.Config.RootIDs) != 1 || rc.Config.RootIDs[0] != "ipveil" {
		t.Errorf("runtime config %s (%v): want type envoy_proxy, root_ids [ipveil]", raw, err)
	}
	got, variant, err := Extract(img)
	if err != nil || variant != Artifact || !bytes.Equal(got, module) {
		t.Errorf("Extract: variant %q, equal %v, err %v", variant, bytes.Equal(got, module), err)
	}
}

func TestReproducible(t *testing.T) {
	module := fakeModule(t, 200_000)
	for _, v := range []Variant{Compat, Artifact} {
		t.Run(string(v), func(t *testing.T) {
			a := mustBuild(t, module, Options{Variant: v})
			b := mustBuild(t, bytes.Clone(module), Options{Variant: v})
			if digest(t, a) != digest(t, b) {
				t.Fatalf("two builds of one module: %s and %s", digest(t, a), digest(t, b))
			}

			// Layouts and archives written twice are byte-identical.
			dir := t.TempDir()
			var archives [][]byte
			for i, img := range []v1.Image{a, b} {
				l := filepath.Join(dir, "layout")
				tarFile := filepath.Join(dir, "archive.tar")
				if err := WriteLayout(l, img, "latest"); err != nil {
					t.Fatal(err)
				}
				if err := WriteArchive(tarFile, l, time.Time{}); err != nil {
					t.Fatal(err)
				}
				arch, err := os.ReadFile(tarFile)
				if err != nil {
					t.Fatal(err)
				}
				archives = append(archives, arch)
				back, err := ReadLayout(l)
				if err != nil {
					t.Fatal(err)
				}
				if digest(t, back) != digest(t, a) {
					t.Errorf("build %d: layout holds %s, want %s", i, digest(t, back), digest(t, a))
				}
			}
			if !bytes.Equal(archives[0], archives[1]) {
				t.Error("two archives of the same image differ")
			}

			other := fakeModule(t, 200_000)
			if digest(t, mustBuild(t, other, Options{Variant: v})) == digest(t, a) {
				t.Error("a different module gave the same digest")
			}
			if digest(t, mustBuild(t, module, Options{Variant: v, Created: time.Unix(1700000000, 0)})) == digest(t, a) && v == Compat {
				t.Error("a different creation time gave the same compat digest")
			}
		})
	}
	if digest(t, mustBuild(t, module, Options{Variant: Compat})) == digest(t, mustBuild(t, module, Options{Variant: Artifact})) {
		t.Error("compat and artifact images share a digest")
	}
}

func TestArchiveHoldsTheLayout(t *testing.T) {
	module := fakeModule(t, 1000)
	img := mustBuild(t, module, Options{})
	dir := t.TempDir()
	l := filepath.Join(dir, "oci")
	if err := WriteLayout(l, img, "v1"); err != nil {
		t.Fatal(err)
	}
	tarFile := filepath.Join(dir, "oci.tar")
	if err := WriteArchive(tarFile, l, time.Time{}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(tarFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	files := map[string][]byte{}
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("entry %s: owner %d:%d mtime %v, want 0:0 at the epoch", h.Name, h.Uid, h.Gid, h.ModTime)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = b
		}
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("entries not sorted: %v", names)
	}
	d := digest(t, img)
	if _, ok := files["oci-layout"]; !ok {
		t.Errorf("no oci-layout in %v", names)
	}
	if !strings.Contains(string(files["index.json"]), d.String()) || !strings.Contains(string(files["index.json"]), `"v1"`) {
		t.Errorf("index.json %s does not name %s as v1", files["index.json"], d)
	}
	if _, ok := files["blobs/sha256/"+d.Hex]; !ok {
		t.Errorf("manifest blob missing from %v", names)
	}
}

func TestRegistryRoundTrip(t *testing.T) {
	host := testRegistry(t)
	ctx := context.Background()
	r := anonymous()
	for _, v := range []Variant{Compat, Artifact} {
		t.Run(string(v), func(t *testing.T) {
			module := fakeModule(t, 300_000)
			img := mustBuild(t, module, Options{Variant: v})
			want := digest(t, img)
			tagRef := host + "/ipveil/" + string(v) + ":v1"

			pinned, err := r.Push(ctx, img, tagRef)
			if err != nil {
				t.Fatal(err)
			}
			if pinned.String() != host+"/ipveil/"+string(v)+"@"+want.String() {
				t.Errorf("Push returned %s, want the repository pinned at %s", pinned, want)
			}

			for _, ref := range []string{tagRef, pinned.String(), "oci://" + pinned.String()} {
				// The raw manifest as the registry serves it.
				nref, err := name.ParseReference(strings.TrimPrefix(ref, "oci://"))
				if err != nil {
					t.Fatal(err)
				}
				desc, err := remote.Get(nref)
				if err != nil {
					t.Fatal(err)
				}
				if desc.MediaType != types.OCIManifestSchema1 || desc.Digest != want {
					t.Errorf("%s: served %s %s, want %s %s", ref, desc.MediaType, desc.Digest, types.OCIManifestSchema1, want)
				}
				var m v1.Manifest
				if err := json.Unmarshal(desc.Manifest, &m); err != nil {
					t.Fatal(err)
				}
				checkManifest(t, v, &m)

				pulled, err := r.Pull(ctx, ref)
				if err != nil {
					t.Fatal(err)
				}
				got, gotVariant, err := Extract(pulled)
				if err != nil {
					t.Fatalf("%s: %v", ref, err)
				}
				if gotVariant != v || !bytes.Equal(got, module) {
					t.Errorf("%s: extracted %s module, identical %v", ref, gotVariant, bytes.Equal(got, module))
				}
			}
		})
	}
}

func checkManifest(t *testing.T, v Variant, m *v1.Manifest) {
	t.Helper()
	switch v {
	case Compat:
		if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer || m.Config.MediaType != types.OCIConfigJSON || m.Annotations[VariantAnnotation] != "compat" {
			t.Errorf("compat manifest from the registry: %+v", m)
		}
	case Artifact:
		if len(m.Layers) != 2 || m.Layers[0].MediaType != WasmConfigMediaType || m.Layers[1].MediaType != WasmContentMediaType || m.Config.MediaType != WasmConfigMediaType {
			t.Errorf("artifact manifest from the registry: %+v", m)
		}
	}
}

func TestPushRefusesAnotherDigest(t *testing.T) {
	host := testRegistry(t)
	img := mustBuild(t, fakeModule(t, 10), Options{})
	other := digest(t, mustBuild(t, fakeModule(t, 10), Options{}))
	_, err := anonymous().Push(context.Background(), img, host+"/ipveil@"+other.String())
	if err == nil || !strings.Contains(err.Error(), "push by tag") {
		t.Errorf("err = %v, want a refusal that says to push by tag", err)
	}
}

func TestPullMissingSaysWhat(t *testing.T) {
	host := testRegistry(t)
	_, err := anonymous().Pull(context.Background(), host+"/nothing:here")
	if err == nil || !strings.Contains(err.Error(), "check the name and tag") {
		t.Errorf("err = %v", err)
	}
}

func TestBuildRefusesNonWasm(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("\x00asm"), []byte("#!/bin/sh\necho not wasm\n")} {
		if _, err := Build(b, Options{}); err == nil || !strings.Contains(err.Error(), "make wasm") {
			t.Errorf("Build(%q) err = %v, want a refusal that says how to build the module", b, err)
		}
	}
	if _, err := Build(fakeModule(t, 1), Options{Variant: "docker"}); err == nil {
		t.Error("unknown variant accepted")
	}
}

func TestExtractRejects(t *testing.T) {
	module := fakeModule(t, 10)
	// One raw Wasm layer, as `oras push` without a second layer makes: both
	// Istio and Envoy Gateway refuse it, and so does Extract.
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        descriptorOf([]byte("{}"), WasmConfigMediaType, nil),
		Layers:        []v1.Descriptor{descriptorOf(module, WasmContentMediaType, nil)},
	}
	img, err := newImage(m, []byte("{}"), blob{data: module, mediaType: WasmContentMediaType})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Extract(img); err == nil || !strings.Contains(err.Error(), "want exactly 2") {
		t.Errorf("one-layer artifact: err = %v", err)
	}
}

func TestWriteLayoutKeepsForeignDirectories(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteLayout(dir, mustBuild(t, fakeModule(t, 1), Options{}), "")
	if err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a file in a foreign directory was removed: %v", err)
	}
}

func TestParseVariant(t *testing.T) {
	for in, want := range map[string]Variant{"": Compat, "compat": Compat, "oci": Artifact} {
		if got, err := ParseVariant(in); err != nil || got != want {
			t.Errorf("ParseVariant(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseVariant("wasm"); err == nil || !strings.Contains(err.Error(), `"compat"`) {
		t.Errorf("err = %v", err)
	}
}

func TestPushRefusedSaysLogIn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	_, err := anonymous().Push(context.Background(), mustBuild(t, fakeModule(t, 10), Options{}), host+"/acme/ipveil:v1")
	if err == nil || !strings.Contains(err.Error(), "docker login "+host) {
		t.Errorf("err = %v, want advice to log in to %s", err, host)
	}
}

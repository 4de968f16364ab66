package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/ipveil/ipveil/internal/oci"
)

var (
	moduleOnce sync.Once
	modulePath string
	workDir    string
	moduleErr  error
)

// realModule builds the filter with the same command as `make wasm`, into
// a directory of its own so that it never races other packages' builds of
// build/ipveil.wasm.
func realModule(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the Wasm module; skipped in -short mode")
	}
	moduleOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "ipveil-oci-test-")
		if err != nil {
			moduleErr = err
			return
		}
		modulePath = filepath.Join(dir, "ipveil.wasm")
		// wasmbuild's work directory must be inside the repository (its
		// generated go.mod points at the SDK copy by a relative path).
		if err := os.MkdirAll(filepath.Join(root, "build"), 0o755); err != nil {
			moduleErr = err
			return
		}
		work, err := os.MkdirTemp(filepath.Join(root, "build"), "ipveil-oci-test-work-")
		if err != nil {
			moduleErr = err
			return
		}
		workDir = work
		cmd := exec.Command("go", "run", "./internal/wasmbuild", "-o", modulePath, "-work", work, ".")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			moduleErr = err
			t.Logf("%s", out)
		}
	})
	if moduleErr != nil {
		t.Fatalf("building the module: %v", moduleErr)
	}
	return modulePath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if modulePath != "" {
		os.RemoveAll(filepath.Dir(modulePath))
	}
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	os.Exit(code)
}

func testRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// anonymous never reads the developer's docker credentials.
var anonymous = oci.Remote{Keychain: authn.NewMultiKeychain()}

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, anonymous)
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"help"},
		{"frobnicate"},
		{"build"},
		{"build", "-variant", "docker", "x.wasm"},
		{"push"},
		{"verify"},
	} {
		if code, _, stderr := runCmd(t, args...); code != 2 || !strings.Contains(stderr, "usage") && !strings.Contains(stderr, "variant") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a usage line", args, code, stderr)
		}
	}
}

// TestRealModule packages the filter itself, both variants, pushes it to a
// registry over HTTP on loopback and reads it back by tag and by digest.
func TestRealModule(t *testing.T) {
	module := realModule(t)
	want, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	host := testRegistry(t)
	for _, variant := range []string{"compat", "oci"} {
		t.Run(variant, func(t *testing.T) {
			dir := t.TempDir()
			var digests []string
			for i := range 2 {
				layout := filepath.Join(dir, "oci")
				code, stdout, stderr := runCmd(t, "build", "-variant", variant, "-layout", layout, "-tar", filepath.Join(dir, "oci.tar"), module)
				if code != 0 {
					t.Fatalf("build %d: exit %d: %s", i, code, stderr)
				}
				d := strings.TrimSpace(stdout)
				if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
					t.Fatalf("build printed %q, want the digest", stdout)
				}
				digests = append(digests, d)
			}
			if digests[0] != digests[1] {
				t.Fatalf("two builds of one module: %s and %s", digests[0], digests[1])
			}

			repo := host + "/acme/ipveil-" + variant
			code, stdout, stderr := runCmd(t, "push", "-layout", filepath.Join(dir, "oci"), repo+":v1")
			if code != 0 {
				t.Fatalf("push: exit %d: %s", code, stderr)
			}
			pinned := strings.TrimSpace(stdout)
			if pinned != repo+"@"+digests[0] {
				t.Errorf("push printed %q, want %s@%s", pinned, repo, digests[0])
			}
			if !strings.Contains(stderr, "url: oci://"+pinned) || !strings.Contains(stderr, "sha256: "+strings.TrimPrefix(digests[0], "sha256:")) {
				t.Errorf("push did not show the WasmPlugin url and sha256 to use:\n%s", stderr)
			}

			for _, ref := range []string{repo + ":v1", pinned} {
				code, stdout, stderr := runCmd(t, "verify", "-wasm", module, ref)
				if code != 0 {
					t.Fatalf("verify %s: exit %d: %s", ref, code, stderr)
				}
				if !strings.Contains(stdout, variant+" image "+digests[0]) || !strings.Contains(stdout, "identical to") {
					t.Errorf("verify %s: %q", ref, stdout)
				}
				img, err := anonymous.Pull(context.Background(), ref)
				if err != nil {
					t.Fatal(err)
				}
				got, gotVariant, err := oci.Extract(img)
				if err != nil || string(gotVariant) != variant || !bytes.Equal(got, want) {
					t.Errorf("%s: extracted variant %q, identical %v, err %v", ref, gotVariant, bytes.Equal(got, want), err)
				}
			}
		})
	}
}

func TestVerifyDetectsAnotherModule(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.wasm")
	b := filepath.Join(dir, "b.wasm")
	if err := os.WriteFile(a, []byte("\x00asm\x01\x00\x00\x00module a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("\x00asm\x01\x00\x00\x00module b"), 0o644); err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(dir, "oci")
	if code, _, stderr := runCmd(t, "build", "-layout", layout, "-tar", "", a); code != 0 {
		t.Fatal(stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "ipveil-oci.tar")); err == nil {
		t.Error("-tar \"\" still wrote an archive")
	}
	ref := testRegistry(t) + "/ipveil:test"
	if code, _, stderr := runCmd(t, "push", "-layout", layout, ref); code != 0 {
		t.Fatal(stderr)
	}
	code, _, stderr := runCmd(t, "verify", "-wasm", b, ref)
	if code != 1 || !strings.Contains(stderr, "push the current build again") {
		t.Errorf("exit %d, stderr %q; want 1 and what to do", code, stderr)
	}
}

func TestBuildErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCmd(t, "build", "-layout", filepath.Join(dir, "oci"), filepath.Join(dir, "missing.wasm"))
	if code != 1 || !strings.Contains(stderr, "make wasm") {
		t.Errorf("missing module: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCmd(t, "push", "-layout", filepath.Join(dir, "nothing"), "localhost:1/x:y")
	if code != 1 || !strings.Contains(stderr, "make oci") {
		t.Errorf("missing layout: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCmd(t, "push", "-layout", filepath.Join(dir, "nothing"), "Not A Reference")
	if code != 1 {
		t.Errorf("bad reference: exit %d, %q", code, stderr)
	}
}

func TestSourceDateEpoch(t *testing.T) {
	dir := t.TempDir()
	module := filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(module, []byte("\x00asm\x01\x00\x00\x00body"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func() (int, string, string) {
		return runCmd(t, "build", "-layout", filepath.Join(dir, "oci"), "-tar", filepath.Join(dir, "oci.tar"), module)
	}
	_, epoch, _ := build()
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	_, later, _ := build()
	_, again, _ := build()
	if epoch == later || later != again {
		t.Errorf("digests: epoch %q, SOURCE_DATE_EPOCH %q then %q; want a different but stable digest", epoch, later, again)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if code, _, stderr := build(); code != 1 || !strings.Contains(stderr, "SOURCE_DATE_EPOCH") {
		t.Errorf("exit %d, %q", code, stderr)
	}
}

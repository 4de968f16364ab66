// Command wasmbuild compiles a Go package that uses the Proxy-Wasm Go SDK
// into a Proxy-Wasm module with the standard Go toolchain:
//
//	go run ./internal/wasmbuild -o build/ipveil.wasm .
//
// The SDK (github.com/tetratelabs/proxy-wasm-go-sdk v0.24.0) only exports
// its ABI under TinyGo. wasmbuild supplies a small bridge (the files in
// _overlay: //go:wasmimport host calls and //go:wasmexport callbacks) for
// the SDK's internal package. cmd/go refuses overlays of files in the module
// cache, so wasmbuild copies the SDK under build/wasmbridge/, points a
// generated go.mod (used only through -modfile) at the copy, writes an
// overlay.json with absolute paths, and runs
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath
//
// Native builds and tests never see any of this. When the SDK's successor
// (github.com/proxy-wasm/proxy-wasm-go-sdk, native Go ≥ 1.24) can be used,
// this directory is deleted and the module built with plain go build.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const sdkModule = "github.com/tetratelabs/proxy-wasm-go-sdk"

func main() {
	out := flag.String("o", "build/ipveil.wasm", "output module path")
	work := flag.String("work", "build/wasmbridge", "directory for the generated SDK copy, go.mod and overlay")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: wasmbuild [-o out.wasm] [-work dir] [package]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	pkg := "."
	if flag.NArg() > 1 {
		flag.Usage()
		os.Exit(2)
	}
	if flag.NArg() == 1 {
		pkg = flag.Arg(0)
	}
	if err := build(*out, *work, pkg); err != nil {
		fmt.Fprintln(os.Stderr, "wasmbuild:", err)
		os.Exit(1)
	}
}

func build(out, work, pkg string) error {
	root, err := goOutput("", "list", "-m", "-f", "{{.Dir}}")
	if err != nil {
		return fmt.Errorf("finding the main module (run wasmbuild from the repository): %w", err)
	}
	work, err = filepath.Abs(work)
	if err != nil {
		return err
	}
	bridge := filepath.Join(root, "internal", "wasmbuild", "_overlay")

	if _, err := goOutput(root, "mod", "download", sdkModule); err != nil {
		return fmt.Errorf("downloading %s (is the Go module proxy reachable?): %w", sdkModule, err)
	}
	sdkDir, err := goOutput(root, "list", "-m", "-f", "{{.Dir}}", sdkModule)
	if err != nil || sdkDir == "" {
		return fmt.Errorf("locating %s in the module cache: %v", sdkModule, err)
	}

	copyDir := filepath.Join(work, "sdk")
	if err := os.RemoveAll(copyDir); err != nil {
		return err
	}
	if err := copyTree(sdkDir, copyDir); err != nil {
		return fmt.Errorf("copying the SDK: %w", err)
	}

	// A go.mod for the Wasm build only: the project's, plus a replace.
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return err
	}
	// The replacement is relative to the module root, so the path of the
	// checkout is not recorded in the module's build information: the same
	// commit builds the same bytes wherever it is cloned.
	rel, err := filepath.Rel(root, copyDir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("the work directory %s must be inside the repository %s", copyDir, root)
	}
	mod = append(mod, []byte(fmt.Sprintf("\nreplace %s => ./%s\n", sdkModule, filepath.ToSlash(rel)))...)
	modFile := filepath.Join(work, "go.mod")
	if err := os.WriteFile(modFile, mod, 0o644); err != nil {
		return err
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "go.sum"), sum, 0o644); err != nil {
		return err
	}

	internal := filepath.Join(copyDir, "proxywasm", "internal")
	overlay := map[string]map[string]string{"Replace": {
		filepath.Join(internal, "abi_hostcalls_mock.go"):   filepath.Join(bridge, "hostcalls.go"),
		filepath.Join(internal, "zz_ipveil_exports.go"):    filepath.Join(bridge, "exports.go"),
		filepath.Join(internal, "abi_callback_alloc.go"):   "",
		filepath.Join(internal, "abi_callback_version.go"): "",
	}}
	ov, _ := json.MarshalIndent(overlay, "", "  ")
	overlayFile := filepath.Join(work, "overlay.json")
	if err := os.WriteFile(overlayFile, ov, 0o644); err != nil {
		return err
	}

	if dir := filepath.Dir(out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	cmd := exec.Command("go", "build",
		"-modfile="+modFile, "-overlay="+overlayFile,
		"-buildmode=c-shared", "-trimpath", "-buildvcs=false",
		"-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for wasip1/wasm failed (see the compiler output above): %w", err)
	}
	return nil
}

func goOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(b)), nil
}

// copyTree copies the Go sources and go.mod of the SDK, writable, so that
// cmd/go accepts overlays on them. Examples and tests are left out.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if rel == "examples" || rel == "e2e" || rel == ".github" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !(strings.HasSuffix(rel, ".go") || rel == "go.mod" || rel == "go.sum" || rel == "LICENSE") {
			return nil
		}
		if strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		o, err := os.OpenFile(filepath.Join(dst, rel), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(o, in); err != nil {
			o.Close()
			return err
		}
		return o.Close()
	})
}

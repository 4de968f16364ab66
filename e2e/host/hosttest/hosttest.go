// Package hosttest builds the test guest module (e2e/host/testdata/guest)
// for tests of the e2e host and devproxy, once per test process.
package hosttest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	once   sync.Once
	module []byte
	err    error
)

// CacheDir is a wazero compilation cache directory shared by test
// processes, so that each compiles a given module once.
func CacheDir() string { return filepath.Join(os.TempDir(), "ipveil-wazero-cache") }

// Guest returns the compiled test guest, building it with
// internal/wasmbuild on first use. It fails the test if the build fails.
func Guest(tb testing.TB) []byte {
	tb.Helper()
	once.Do(func() { module, err = build("./e2e/host/testdata/guest") })
	if err != nil {
		tb.Fatalf("building the test guest: %v", err)
	}
	return module
}

// Build compiles a package main of this repository (a path such as
// "./e2e/nullmodule") to a Proxy-Wasm module and returns its bytes.
func Build(pkg string) ([]byte, error) { return build(pkg) }

func build(pkg string) ([]byte, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	// wasmbuild wants its work directory inside the repository (it records
	// the SDK copy by a relative path); build/ is git-ignored.
	if err := os.MkdirAll(filepath.Join(root, "build"), 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Join(root, "build"), "hosttest-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "guest.wasm")
	cmd := exec.Command("go", "run", "./internal/wasmbuild", "-o", out, "-work", filepath.Join(dir, "bridge"), pkg)
	cmd.Dir = root
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go run ./internal/wasmbuild %s: %v\n%s", pkg, err, b.String())
	}
	return os.ReadFile(out)
}

func moduleRoot() (string, error) {
	cmd := exec.Command("go", "env", "GOMOD")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the ipveil module")
	}
	return filepath.Dir(mod), nil
}

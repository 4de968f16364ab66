// Package wasmtest builds the project's Proxy-Wasm modules for tests and
// benchmarks, so that `go test ./...` always runs the current code.
//
// Builds go through internal/wasmbuild (the same path as `make wasm`), are
// serialised across test processes with a file lock, and are cheap when
// nothing changed (the Go build cache does the work).
package wasmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
)

// Module names the modules this package can build.
type Module string

// Modules.
const (
	// Ipveil is build/ipveil.wasm, the filter.
	Ipveil Module = "ipveil"
	// Null is build/null.wasm, a module that does nothing (benchmark floor).
	Null Module = "null"
)

var pkgs = map[Module]string{Ipveil: ".", Null: "./e2e/nullmodule"}

var (
	mu    sync.Mutex
	built = map[Module]string{}
)

// Root returns the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// CacheDir is the wazero compilation cache shared by tests, benchmarks and
// the local stack.
func CacheDir() string { return filepath.Join(Root(), "build", "wazero-cache") }

// Path builds m if needed (once per process) and returns its path.
func Path(m Module) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[m]; ok {
		return p, nil
	}
	pkg, ok := pkgs[m]
	if !ok {
		return "", fmt.Errorf("unknown module %q", m)
	}
	root := Root()
	out := filepath.Join(root, "build", string(m)+".wasm")
	if err := os.MkdirAll(filepath.Join(root, "build"), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(root, "build", ".wasmbuild.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	cmd := exec.Command("go", "run", "./internal/wasmbuild", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", out, err, b)
	}
	built[m] = out
	return out, nil
}

// Bytes builds m if needed and returns its contents.
func Bytes(m Module) ([]byte, error) {
	p, err := Path(m)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

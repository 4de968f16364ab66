// Package host runs Proxy-Wasm HTTP filter modules the way Envoy (≥ 1.39)
// does, on the wazero runtime, so that the compiled ipveil module can be
// exercised without an Envoy binary.
//
// It implements the Proxy-Wasm ABI 0.2.0/0.2.1 imports that Envoy provides
// (env.proxy_*) and Envoy's WASI preview1 subset (wasi_snapshot_preview1 and
// wasi_unstable), with Envoy's semantics where the specification leaves room:
// header maps readable only in the phases Envoy allows, local replies and
// stream continuation deferred until the module's callback returns, HTTP
// calls owned by the plugin (root) context, shared data with CAS shared by
// every VM of a Store, metrics under the "wasmcustom." prefix, a crashed VM
// failing its streams with 503 "wasm_fail_stream" and being replaced.
//
// Bodies go through proxy_on_request_body and proxy_on_response_body as in
// Envoy's filter manager and Wasm context: a filter that pauses in a body
// callback (StopIterationAndBuffer) buffers, and the next chunk is appended
// to what it reads; buffering past Config.BufferLimit answers 413; a pause
// in a headers callback stops the whole stream (no body callback until the
// filter continues) unless Plugin.AllowOnHeadersStopIteration is set, as in
// Envoy.
//
// A Host owns N workers, each with its own VM (one module instance) driven
// by one goroutine, like an Envoy worker thread: every callback of that VM —
// request and response headers, HTTP call responses, ticks, queue
// notifications — runs on it in order. Streams (one per HTTP request) are
// bound to a worker.
//
//	h, err := host.New(ctx, host.Config{Module: wasm, Plugin: host.Plugin{RootID: "ipveil"}, Callout: call})
//	s := h.NewStream(host.Props{SourceAddress: netip.MustParseAddrPort("192.0.2.1:0")})
//	res, err := s.RequestHeaders(ctx, headers, true) // blocks across pauses and callouts
//	// with a body: RequestHeaders(ctx, headers, false), then
//	// res, err = s.RequestBody(ctx, chunk, endOfStream) for each chunk
//	...
//	s.Close() // proxy_on_log, proxy_on_done, proxy_on_delete
//
// This is a development and test host, not a production runtime.
package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// DefaultBufferLimit is Envoy's default per_connection_buffer_limit_bytes:
// 1 MiB.
const DefaultBufferLimit = 1 << 20

// Errors returned by the host.
var (
	// ErrUnknownCluster is what Config.Clusters' absence of a name means,
	// and what a Callout may return for a cluster that vanished.
	ErrUnknownCluster = errors.New("host: unknown cluster")
	// ErrConnectFailure, wrapped by a Callout error, says no connection to
	// the cluster could be made: the module sees a 503 response, as Envoy's
	// async client delivers it.
	ErrConnectFailure = errors.New("host: upstream connect failure")
	// ErrCalloutReset, wrapped by a Callout error, says the call was reset
	// after the response started: the module sees zero headers and no body.
	ErrCalloutReset = errors.New("host: upstream reset")
	// ErrClosed is returned by calls on a closed Host.
	ErrClosed = errors.New("host: closed")
	// ErrStreamClosed is returned by calls on a closed Stream.
	ErrStreamClosed = errors.New("host: stream closed")
)

// Plugin is the configuration Envoy gives a Wasm HTTP filter
// (envoy.extensions.wasm.v3.PluginConfig and its vm_config).
type Plugin struct {
	Name            string            // plugin name (property plugin_name)
	RootID          string            // root_id (property plugin_root_id)
	VMID            string            // vm_config.vm_id: shared data and queues are keyed by it
	Configuration   []byte            // plugin configuration (proxy_on_configure)
	VMConfiguration []byte            // vm_config.configuration (proxy_on_vm_start)
	Env             map[string]string // vm_config.environment_variables, seen through WASI environ_get
	// FailOpen lets requests through, unfiltered, when the VM has failed,
	// instead of answering them 503 (Envoy's fail_open / FAIL_OPEN).
	FailOpen bool
	// AllowOnHeadersStopIteration is Envoy's
	// allow_on_headers_stop_iteration (PluginConfig, Envoy ≥ 1.35; false by
	// default, and Istio's WasmPlugin cannot set it). When false, a filter
	// that pauses in a headers callback (StopIteration, the SDKs' Pause)
	// stops the whole stream: it receives no body until it continues. When
	// true, it holds only the headers and keeps receiving the body, so it
	// can read a body before any header goes upstream.
	AllowOnHeadersStopIteration bool
}

// CalloutRequest is an HTTP call a module dispatched with proxy_http_call.
type CalloutRequest struct {
	Cluster  string
	Headers  [][2]string // includes :method, :path, :authority
	Body     []byte
	Trailers [][2]string
	// Timeout is the module's timeout; 0 means none. The context given to
	// the Callout already carries it.
	Timeout time.Duration
}

// CalloutResponse is what the cluster answered.
type CalloutResponse struct {
	Headers  [][2]string // must include ":status"
	Body     []byte
	Trailers [][2]string
}

// CalloutFunc performs an HTTP call. It runs on its own goroutine and may
// block. Its result is mapped as Envoy's async client maps it: a context
// deadline becomes a 504 "upstream request timeout" response, an error
// wrapping ErrConnectFailure (or ErrUnknownCluster) a 503 response, and any
// other error (ErrCalloutReset) a reset: zero headers and no body.
type CalloutFunc func(ctx context.Context, req *CalloutRequest) (*CalloutResponse, error)

// Config configures a Host.
type Config struct {
	// Module is the compiled Wasm binary.
	Module []byte
	// CacheDir, when set, holds wazero's compilation cache so that other
	// processes skip compiling the same module. Without it, a process-wide
	// in-memory cache still shares compilation between Hosts.
	CacheDir string
	Plugin   Plugin
	// Workers is the number of VMs (Envoy --concurrency). Default 2.
	Workers int
	// Clusters reports, synchronously, whether a cluster exists, as Envoy's
	// cluster manager does when proxy_http_call is made: an unknown cluster
	// fails the call with BadArgument and no callback. Nil accepts every
	// cluster.
	Clusters func(name string) bool
	// Callout performs HTTP calls. Nil fails every call like an unreachable
	// cluster (503).
	Callout CalloutFunc
	// Logger receives the host's and the modules' log lines. Nil means
	// os.Stderr.
	Logger io.Writer
	// LogLevel is the host's log level (proxy_get_log_level); module log
	// lines below it are dropped. Default Info.
	LogLevel LogLevel
	// Store is the process-wide shared state. Nil gives the Host its own.
	Store *Store
	// BufferLimit is the most body a filter may hold per stream, in bytes:
	// Envoy's per_connection_buffer_limit_bytes of the listener. A filter
	// that buffers more (StopIterationAndBuffer) gets its request answered
	// 413 request_payload_too_large (a response: 500
	// response_payload_too_large). 0 means DefaultBufferLimit.
	BufferLimit int
	// OnCall, when set, is called on the worker goroutine after every
	// top-level callback into a module with the callback's export name and
	// how long the module ran. Benchmarks use it to time the guest alone.
	// It must return quickly and must not call the Host or its Streams
	// (they would wait for the very goroutine running OnCall).
	OnCall func(worker int, callback string, d time.Duration)
}

// LogLevel is a log level. Its zero value means "unset" (Info in a
// Config); the ABI value of a level is one less than its LogLevel.
type LogLevel int

// Log levels, in the order of the Proxy-Wasm ABI.
const (
	LogTrace LogLevel = iota + 1
	LogDebug
	LogInfo
	LogWarn
	LogError
	LogCritical
)

var levelNames = [...]string{"unset", "trace", "debug", "info", "warning", "error", "critical"}

func (l LogLevel) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// ParseLogLevel parses trace, debug, info, warn(ing), error or critical.
func ParseLogLevel(s string) (LogLevel, error) {
	switch strings.ToLower(s) {
	case "trace":
		return LogTrace, nil
	case "debug":
		return LogDebug, nil
	case "info", "":
		return LogInfo, nil
	case "warn", "warning":
		return LogWarn, nil
	case "error", "err":
		return LogError, nil
	case "critical":
		return LogCritical, nil
	}
	return LogInfo, fmt.Errorf("unknown log level %q: use trace, debug, info, warn, error or critical", s)
}

// Host runs one Proxy-Wasm plugin on a set of workers.
type Host struct {
	cfg      Config
	store    *Store
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	abi      string
	workers  []*worker
	next     atomic.Uint64
	logMu    sync.Mutex
	logger   io.Writer
	closed   atomic.Bool
	baseCtx  context.Context
	cancel   context.CancelFunc
	start    time.Time

	trapCount    atomic.Int64
	reloadCount  atomic.Int64
	violationsMu sync.Mutex
	violations   []string
}

var (
	cacheMu     sync.Mutex
	memCache    wazero.CompilationCache
	dirCaches   = map[string]wazero.CompilationCache{}
	errNoModule = errors.New("host: Config.Module is empty: give the bytes of a compiled Proxy-Wasm module (for example build/ipveil.wasm, made by make wasm)")
)

func compilationCache(dir string) (wazero.CompilationCache, error) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if dir == "" {
		if memCache == nil {
			memCache = wazero.NewCompilationCache()
		}
		return memCache, nil
	}
	if c, ok := dirCaches[dir]; ok {
		return c, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("host: creating the compilation cache directory: %w", err)
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, fmt.Errorf("host: opening the compilation cache in %s (is it writable?): %w", dir, err)
	}
	dirCaches[dir] = c
	return c, nil
}

// New compiles the module (or loads it from the compilation cache), starts
// Config.Workers VMs and runs proxy_on_vm_start and proxy_on_configure on
// each. If the plugin refuses to start, New returns an error that carries
// the module's log lines, as Envoy does when it rejects a listener.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if len(cfg.Module) == 0 {
		return nil, errNoModule
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.LogLevel <= 0 || cfg.LogLevel > LogCritical {
		cfg.LogLevel = LogInfo
	}
	h := &Host{cfg: cfg, store: cfg.Store, logger: cfg.Logger, start: time.Now()}
	if h.store == nil {
		h.store = NewStore()
	}
	if h.logger == nil {
		h.logger = os.Stderr
	}
	cache, err := compilationCache(cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	h.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	if err := registerHostModules(ctx, h.rt); err != nil {
		h.rt.Close(ctx)
		return nil, err
	}
	h.compiled, err = h.rt.CompileModule(ctx, cfg.Module)
	if err != nil {
		h.rt.Close(ctx)
		return nil, fmt.Errorf("host: compiling the module (is it a Wasm binary?): %w", err)
	}
	h.abi, err = checkModule(h.compiled)
	if err != nil {
		h.rt.Close(ctx)
		return nil, err
	}
	h.baseCtx, h.cancel = context.WithCancel(context.Background())
	for i := 0; i < cfg.Workers; i++ {
		w := newWorker(h, i)
		h.workers = append(h.workers, w)
	}
	var startErr error
	for _, w := range h.workers {
		if err := w.startSync(); err != nil && startErr == nil {
			startErr = err
		}
	}
	if startErr != nil {
		h.Close()
		return nil, startErr
	}
	return h, nil
}

func (h *Host) bufferLimit() int {
	if h.cfg.BufferLimit > 0 {
		return h.cfg.BufferLimit
	}
	return DefaultBufferLimit
}

// ABIVersion is the Proxy-Wasm ABI the module declares ("0.2.1" or "0.2.0").
func (h *Host) ABIVersion() string { return h.abi }

// Workers returns the number of workers.
func (h *Host) Workers() int { return len(h.workers) }

// Store returns the process-wide state the Host uses.
func (h *Host) Store() *Store { return h.store }

// Metrics returns a snapshot of the module-defined metrics of the Host's
// Store, named as Envoy's /stats names them (wasmcustom.<name>).
func (h *Host) Metrics() []Metric { return h.store.Metrics() }

// SharedDataStats reports the keys and bytes held in shared data.
func (h *Host) SharedDataStats() (keys int, bytes int64) { return h.store.SharedDataStats() }

// Traps returns how many times a VM of this Host crashed.
func (h *Host) Traps() int64 { return h.trapCount.Load() }

// Violations lists what Envoy would treat as misuse by the module, for
// tests to assert on: a stream answered twice (two local replies, or a
// local reply and a continue), a continue after the stream was answered.
// The host keeps the first answer, as the client sees it.
func (h *Host) Violations() []string {
	h.violationsMu.Lock()
	defer h.violationsMu.Unlock()
	return append([]string(nil), h.violations...)
}

func (h *Host) violation(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.violationsMu.Lock()
	h.violations = append(h.violations, msg)
	h.violationsMu.Unlock()
	h.logf(-1, LogError, "host", "%s", msg)
}

// VMMemoryBytes returns the size of the linear memory of worker's VM, or
// 0 if there is no such worker or its VM is down.
func (h *Host) VMMemoryBytes(worker int) uint64 {
	if worker < 0 || worker >= len(h.workers) {
		return 0
	}
	var n uint64
	h.workers[worker].runSync(func() {
		if v := h.workers[worker].vm; v != nil && !v.dead {
			n = uint64(v.mod.Memory().Size())
		}
	})
	return n
}

// NewStream opens a stream (an HTTP request) on the next worker, round
// robin.
func (h *Host) NewStream(props Props) *Stream {
	w := int(h.next.Add(1)-1) % len(h.workers)
	return h.NewStreamOn(w, props)
}

// NewStreamOn opens a stream on the given worker (taken modulo the number
// of workers).
func (h *Host) NewStreamOn(worker int, props Props) *Stream {
	if worker < 0 {
		worker = -worker
	}
	w := h.workers[worker%len(h.workers)]
	return newStream(h, w, props)
}

// Tick runs proxy_on_tick once on every worker whose plugin set a tick
// period, without waiting for the timer, and returns when they are done.
func (h *Host) Tick() {
	for _, w := range h.workers {
		w.runSync(func() { w.tick() })
	}
}

// Close shuts the plugin down on every worker (proxy_on_done and
// proxy_on_delete of the root context), cancels outstanding HTTP calls,
// answers streams still waiting with ErrClosed and releases the runtime.
func (h *Host) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	if h.cancel != nil {
		h.cancel()
	}
	for _, w := range h.workers {
		w.shutdown()
	}
	return h.rt.Close(context.Background())
}

// logf writes one log line. worker < 0 is the host itself.
func (h *Host) logf(worker int, level LogLevel, tag, format string, args ...any) {
	if level < h.cfg.LogLevel {
		return
	}
	var b strings.Builder
	b.WriteString(time.Now().Format("[2006-01-02 15:04:05.000]"))
	if worker >= 0 {
		fmt.Fprintf(&b, "[worker %d]", worker)
	} else {
		b.WriteString("[main]")
	}
	fmt.Fprintf(&b, "[%s][%s] ", tag, level)
	fmt.Fprintf(&b, format, args...)
	s := b.String()
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	h.logMu.Lock()
	io.WriteString(h.logger, s)
	h.logMu.Unlock()
}

// checkModule verifies the module declares a supported ABI and imports
// nothing Envoy does not provide for it, and returns the ABI version.
func checkModule(c wazero.CompiledModule) (string, error) {
	exports := c.ExportedFunctions()
	abi := ""
	switch {
	case exports["proxy_abi_version_0_2_1"] != nil:
		abi = "0.2.1"
	case exports["proxy_abi_version_0_2_0"] != nil:
		abi = "0.2.0"
	case exports["proxy_abi_version_0_1_0"] != nil:
		return "", errors.New("host: the module declares Proxy-Wasm ABI 0.1.0, which this host does not run: build it against ABI 0.2.1")
	default:
		return "", errors.New("host: the module exports no proxy_abi_version_0_2_1 (or 0_2_0): it is not a Proxy-Wasm module, or it was built without the SDK's exports")
	}
	if exports["proxy_on_memory_allocate"] == nil && exports["malloc"] == nil {
		return "", errors.New("host: the module exports neither proxy_on_memory_allocate nor malloc, so the host cannot hand it data (Envoy refuses it too)")
	}
	var missing []string
	for _, f := range c.ImportedFunctions() {
		mod, name, _ := f.Import()
		if !Provides(abi, mod, name) {
			missing = append(missing, mod+"."+name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", fmt.Errorf("host: the module imports functions Envoy does not provide for ABI %s: %s (in Go, importing package net pulls WASI calls Envoy lacks: use net/netip)", abi, strings.Join(missing, ", "))
	}
	return abi, nil
}

// Provides reports whether Envoy (and this host) provides the import
// module.name to a module of the given ABI version ("0.2.0" or "0.2.1").
// Tests use it to check a module's import list.
func Provides(abi, module, name string) bool {
	switch module {
	case "env":
		if _, ok := envFuncs[name]; ok {
			if name == "proxy_get_log_level" {
				return abi == "0.2.1"
			}
			return true
		}
		return false
	case "wasi_snapshot_preview1", "wasi_unstable":
		_, ok := wasiFuncs[name]
		return ok
	}
	return false
}

// ImportNames lists every import the host provides for an ABI version, as
// "module.name", sorted.
func ImportNames(abi string) []string {
	var out []string
	for n := range envFuncs {
		if Provides(abi, "env", n) {
			out = append(out, "env."+n)
		}
	}
	for n := range wasiFuncs {
		out = append(out, "wasi_snapshot_preview1."+n, "wasi_unstable."+n)
	}
	sort.Strings(out)
	return out
}

// hostFunc is a host function: its Wasm signature and implementation.
type hostFunc struct {
	params, results []api.ValueType
	fn              func(v *vm, stack []uint64)
}

func registerHostModules(ctx context.Context, rt wazero.Runtime) error {
	build := func(module string, funcs map[string]hostFunc) error {
		b := rt.NewHostModuleBuilder(module)
		names := make([]string, 0, len(funcs))
		for n := range funcs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			f := funcs[n]
			impl := f.fn
			b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
				v, _ := ctx.Value(vmKey{}).(*vm)
				if v == nil {
					// Called outside a host-driven call: nothing to attribute it to.
					if len(stack) > 0 {
						stack[0] = uint64(statusInternalFailure)
					}
					return
				}
				impl(v, stack)
			}), f.params, f.results).Export(n)
		}
		_, err := b.Instantiate(ctx)
		if err != nil {
			return fmt.Errorf("host: registering %s: %w", module, err)
		}
		return nil
	}
	if err := build("env", envFuncs); err != nil {
		return err
	}
	if err := build("wasi_snapshot_preview1", wasiFuncs); err != nil {
		return err
	}
	return build("wasi_unstable", wasiFuncs)
}

type vmKey struct{}

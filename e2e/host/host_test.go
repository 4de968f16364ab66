package host_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipveil/ipveil/e2e/host"
	"github.com/ipveil/ipveil/e2e/host/hosttest"
)

// hangGuard bounds every blocking call: it only stops a hung test, it does
// not measure anything.
const hangGuard = 60 * time.Second

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHost(t *testing.T, mut func(*host.Config)) (*host.Host, *syncBuf) {
	t.Helper()
	logs := &syncBuf{}
	cfg := host.Config{
		Module:   hosttest.Guest(t),
		CacheDir: hosttest.CacheDir(),
		Plugin:   host.Plugin{Name: "test", RootID: "test_root", VMID: "test_vm", Env: map[string]string{"TEST_ENV": "env-value"}},
		Workers:  2,
		Clusters: func(name string) bool { return name == "mock" },
		Callout: func(ctx context.Context, req *host.CalloutRequest) (*host.CalloutResponse, error) {
			return &host.CalloutResponse{Headers: [][2]string{{":status", "200"}}, Body: []byte("ok:" + req.Cluster)}, nil
		},
		Logger: logs,
	}
	if mut != nil {
		mut(&cfg)
	}
	h, err := host.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("host.New: %v\nlogs:\n%s", err, logs)
	}
	t.Cleanup(func() { h.Close() })
	return h, logs
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

func req(path string, extra ...[2]string) [][2]string {
	h := [][2]string{{":method", "GET"}, {":path", path}, {":authority", "example.test"}, {":scheme", "http"}, {"x-request-id", "rid-1"}}
	return append(h, extra...)
}

func get(h [][2]string, k string) string {
	for _, p := range h {
		if p[0] == k {
			return p[1]
		}
	}
	return ""
}

func has(h [][2]string, k string) bool {
	for _, p := range h {
		if p[0] == k {
			return true
		}
	}
	return false
}

func props() host.Props {
	return host.Props{
		SourceAddress:      netip.MustParseAddrPort("203.0.113.7:0"),
		DestinationAddress: netip.MustParseAddrPort("127.0.0.1:10000"),
		ConnectionID:       7,
	}
}

func TestPassThroughEditsHeadersAndRunsLifecycle(t *testing.T) {
	h, logs := newHost(t, nil)
	ctx := ctxT(t)
	s := h.NewStream(props())
	res, err := s.RequestHeaders(ctx, req("/", [2]string{"x-remove-me", "1"}, [2]string{"X-Mixed", "v"}), true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != host.Continue {
		t.Fatalf("action = %v, want continue", res.Action)
	}
	if get(res.Headers, "x-guest-seen") != "1" || has(res.Headers, "x-remove-me") || get(res.Headers, "x-mixed") != "v" {
		t.Fatalf("edited headers wrong: %v", res.Headers)
	}
	rr, err := s.ResponseHeaders(ctx, [][2]string{{":status", "200"}}, false)
	if err != nil || rr.Action != host.Continue {
		t.Fatalf("response: %v %v", rr, err)
	}
	if get(rr.Headers, "x-guest-response") != "200" {
		t.Fatalf("response headers: %v", rr.Headers)
	}
	// Envoy no longer lets a filter read request headers once it continued.
	if has(rr.Headers, "x-request-headers-readable") {
		t.Fatalf("request headers were readable in the response phase: %v", rr.Headers)
	}
	s.Close()
	if v, ok := s.FilterState("wasm.guest_log"); !ok || v != "status=200" {
		t.Fatalf("filter state from proxy_on_log = %q, %v", v, ok)
	}
	if v, _ := s.FilterState("wasm.guest_path"); v != "/" {
		t.Fatalf("filter state guest_path = %q", v)
	}
	s.Close() // idempotent
	if !strings.Contains(logs.String(), "done: 200") {
		t.Fatalf("proxy_on_log did not run:\n%s", logs)
	}
	if v := h.Violations(); len(v) != 0 {
		t.Fatalf("violations: %v", v)
	}
}

func TestLocalReplyFromRequestHeaders(t *testing.T) {
	h, _ := newHost(t, nil)
	s := h.NewStream(props())
	defer s.Close()
	res, err := s.RequestHeaders(ctxT(t), req("/local"), true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != host.LocalReply || res.Local.Status != 403 || string(res.Local.Body) != "denied by guest" {
		t.Fatalf("got %+v", res)
	}
	hdrs := res.Local.ResponseHeaders()
	if get(hdrs, ":status") != "403" || get(hdrs, "x-guest") != "local" || get(hdrs, "content-type") != "text/plain" || get(hdrs, "content-length") != "15" {
		t.Fatalf("local reply headers: %v", hdrs)
	}
	// Envoy runs encoder filters on local replies too.
	rr, err := s.ResponseHeaders(ctxT(t), hdrs, false)
	if err != nil || rr.Action != host.Continue || get(rr.Headers, "x-guest-response") != "403" {
		t.Fatalf("response phase of the local reply: %+v %v", rr, err)
	}
}

func TestSecondAnswerIsAViolation(t *testing.T) {
	h, _ := newHost(t, nil)
	s := h.NewStream(props())
	res, err := s.RequestHeaders(ctxT(t), req("/double"), true)
	if err != nil || res.Action != host.LocalReply || res.Local.Status != 403 {
		t.Fatalf("got %+v %v", res, err)
	}
	s.Close() // runs on the worker after the callback's deferred actions
	if v := h.Violations(); len(v) != 1 || !strings.Contains(v[0], "second answer") {
		t.Fatalf("violations = %v", v)
	}
}

func TestCalloutPausesAndResumes(t *testing.T) {
	var got *host.CalloutRequest
	h, _ := newHost(t, func(c *host.Config) {
		c.Callout = func(ctx context.Context, r *host.CalloutRequest) (*host.CalloutResponse, error) {
			got = r
			return &host.CalloutResponse{Headers: [][2]string{{":status", "200"}, {"x-a", "b"}}, Body: []byte(`{"score":5}`)}, nil
		}
	})
	s := h.NewStream(props())
	defer s.Close()
	res, err := s.RequestHeaders(ctxT(t), req("/callout"), true)
	if err != nil || res.Action != host.Continue {
		t.Fatalf("got %+v %v", res, err)
	}
	if get(res.Headers, "x-callout-status") != "200" || get(res.Headers, "x-callout-body") != `{"score":5}` {
		t.Fatalf("resumed headers: %v", res.Headers)
	}
	if got == nil || got.Cluster != "mock" || got.Timeout != 5*time.Second || get(got.Headers, ":path") != "/lookup?from=guest" {
		t.Fatalf("callout request: %+v", got)
	}
}

func TestCalloutLocalReplyFromCallback(t *testing.T) {
	h, _ := newHost(t, nil)
	s := h.NewStream(props())
	defer s.Close()
	res, err := s.RequestHeaders(ctxT(t), req("/callout-local"), true)
	if err != nil || res.Action != host.LocalReply || res.Local.Status != 429 || string(res.Local.Body) != "ok:mock" {
		t.Fatalf("got %+v %v", res, err)
	}
}

func TestCalloutFailuresAsEnvoyDeliversThem(t *testing.T) {
	cases := []struct {
		name   string
		call   host.CalloutFunc
		status string
		body   string
	}{
		{"timeout", func(ctx context.Context, r *host.CalloutRequest) (*host.CalloutResponse, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, "504", "upstream request timeout"},
		{"connect failure", func(ctx context.Context, r *host.CalloutRequest) (*host.CalloutResponse, error) {
			return nil, fmt.Errorf("dial: %w", host.ErrConnectFailure)
		}, "503", "upstream connect error or disconnect/reset before headers. reset reason: connection failure"},
		{"reset", func(ctx context.Context, r *host.CalloutRequest) (*host.CalloutResponse, error) {
			return nil, fmt.Errorf("body: %w", host.ErrCalloutReset)
		}, "reset", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newHost(t, func(c *host.Config) { c.Callout = tc.call })
			s := h.NewStream(props())
			defer s.Close()
			res, err := s.RequestHeaders(ctxT(t), req("/callout", [2]string{"x-timeout-ms", "50"}), true)
			if err != nil || res.Action != host.Continue {
				t.Fatalf("got %+v %v", res, err)
			}
			if get(res.Headers, "x-callout-status") != tc.status || get(res.Headers, "x-callout-body") != tc.body {
				t.Fatalf("guest saw status %q body %q", get(res.Headers, "x-callout-status"), get(res.Headers, "x-callout-body"))
			}
		})
	}
}

func TestHTTPCallArgumentsRefusedSynchronously(t *testing.T) {
	h, logs := newHost(t, nil)
	for _, path := range []string{"/unknown-cluster", "/bad-call"} {
		s := h.NewStream(props())
		res, err := s.RequestHeaders(ctxT(t), req(path), true)
		s.Close()
		if err != nil || res.Action != host.Continue {
			t.Fatalf("%s: %+v %v", path, res, err)
		}
		if e := get(res.Headers, "x-dispatch-error"); !strings.Contains(e, "bad argument") {
			t.Fatalf("%s: dispatch error = %q, want bad argument", path, e)
		}
	}
	if strings.Contains(logs.String(), "must never run") {
		t.Fatalf("a callback ran for a refused call:\n%s", logs)
	}
}

func TestProperties(t *testing.T) {
	h, _ := newHost(t, nil)
	s := h.NewStream(props())
	defer s.Close()
	res, err := s.RequestHeaders(ctxT(t), req("/props", [2]string{"x-test", "hdr"}), true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"x-prop-source-address":         "203.0.113.7:0",
		"x-prop-source-port":            "0",
		"x-prop-destination-address":    "127.0.0.1:10000",
		"x-prop-destination-port":       "10000",
		"x-prop-request-path":           "/props",
		"x-prop-request-method":         "GET",
		"x-prop-request-id":             "rid-1",
		"x-prop-request-protocol":       "HTTP/1.1",
		"x-prop-request-headers-x-test": "hdr",
		"x-prop-plugin_name":            "test",
		"x-prop-plugin_root_id":         "test_root",
		"x-prop-plugin_vm_id":           "test_vm",
		"x-prop-no-such-property":       "error: error status returned by host: not found",
		"x-prop-guest_path":             "/props",
		"x-env":                         "env-value",
	}
	for k, v := range want {
		if got := get(res.Headers, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestIPv6SourceAddressIsBracketed(t *testing.T) {
	h, _ := newHost(t, nil)
	p := props()
	p.SourceAddress = netip.MustParseAddrPort("[2001:db8::1]:0")
	s := h.NewStream(p)
	defer s.Close()
	res, err := s.RequestHeaders(ctxT(t), req("/props"), true)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(res.Headers, "x-prop-source-address"); got != "[2001:db8::1]:0" {
		t.Fatalf("source.address = %q", got)
	}
}

func TestSharedDataCASAcrossWorkers(t *testing.T) {
	h, _ := newHost(t, func(c *host.Config) { c.Workers = 2 })
	const n = 40
	seen := make(chan string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := h.NewStreamOn(i%2, props())
			defer s.Close()
			res, err := s.RequestHeaders(ctxT(t), req("/shared"), true)
			if err != nil {
				t.Error(err)
				return
			}
			seen <- get(res.Headers, "x-shared")
		}(i)
	}
	wg.Wait()
	close(seen)
	uniq := map[string]bool{}
	for v := range seen {
		if uniq[v] {
			t.Fatalf("value %s handed out twice: CAS did not serialize the workers", v)
		}
		uniq[v] = true
	}
	v, ok := h.Store().SharedData("test_vm", "counter")
	if !ok || string(v) != fmt.Sprint(n) {
		t.Fatalf("counter = %q, want %d", v, n)
	}
	if keys, bytes := h.SharedDataStats(); keys != 1 || bytes == 0 {
		t.Fatalf("shared data stats: %d keys, %d bytes", keys, bytes)
	}
}

func TestTrapFailsStreamAndVMIsReplaced(t *testing.T) {
	h, logs := newHost(t, func(c *host.Config) { c.Workers = 1 })
	// A stream paused on the VM that will crash.
	release := make(chan struct{})
	paused := h.NewStreamOn(0, props())
	defer paused.Close()
	_ = release
	pres := make(chan host.Result, 1)
	go func() {
		r, _ := paused.RequestHeaders(ctxT(t), req("/pause"), true)
		pres <- r
	}()
	// Make sure the paused stream reached the VM before the crash.
	waitFor(t, func() bool { return paused.ContextID() != 0 })

	s := h.NewStreamOn(0, props())
	res, err := s.RequestHeaders(ctxT(t), req("/trap"), true)
	s.Close()
	if err != nil || res.Action != host.LocalReply || res.Local.Status != 503 || res.Local.Details != "wasm_fail_stream" {
		t.Fatalf("trapping request: %+v %v", res, err)
	}
	select {
	case r := <-pres:
		if r.Action != host.LocalReply || r.Local.Status != 503 {
			t.Fatalf("paused stream on the crashed VM: %+v", r)
		}
	case <-time.After(hangGuard):
		t.Fatal("the paused stream was never answered")
	}
	if h.Traps() != 1 {
		t.Fatalf("traps = %d", h.Traps())
	}
	l := logs.String()
	if !strings.Contains(l, "crashed in proxy_on_request_headers") || !strings.Contains(l, "deliberate trap") {
		t.Fatalf("crash not logged clearly:\n%s", l)
	}
	// The next request is served by the new VM.
	s2 := h.NewStreamOn(0, props())
	defer s2.Close()
	res, err = s2.RequestHeaders(ctxT(t), req("/"), true)
	if err != nil || res.Action != host.Continue || get(res.Headers, "x-guest-seen") != "1" {
		t.Fatalf("request after the crash: %+v %v", res, err)
	}
}

func TestFailOpenLetsRequestsThrough(t *testing.T) {
	h, _ := newHost(t, func(c *host.Config) { c.Workers = 1; c.Plugin.FailOpen = true })
	s := h.NewStream(props())
	defer s.Close()
	res, err := s.RequestHeaders(ctxT(t), req("/trap"), true)
	if err != nil || res.Action != host.Continue || get(res.Headers, ":path") != "/trap" {
		t.Fatalf("fail-open: %+v %v", res, err)
	}
}

func TestClientGoneWhilePaused(t *testing.T) {
	release := make(chan struct{})
	called := make(chan struct{}, 1)
	h, logs := newHost(t, func(c *host.Config) {
		c.Workers = 1
		c.Callout = func(ctx context.Context, r *host.CalloutRequest) (*host.CalloutResponse, error) {
			called <- struct{}{}
			<-release
			return &host.CalloutResponse{Headers: [][2]string{{":status", "200"}}}, nil
		}
	})
	s := h.NewStream(props())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.RequestHeaders(ctx, req("/callout"), true)
		errc <- err
	}()
	<-called
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	s.Close()
	close(release)
	// The late response finds the stream gone; the VM keeps serving.
	s2 := h.NewStream(props())
	defer s2.Close()
	res, err := s2.RequestHeaders(ctxT(t), req("/"), true)
	if err != nil || res.Action != host.Continue {
		t.Fatalf("next request: %+v %v", res, err)
	}
	h.Tick() // drain the worker queue once more
	if v := h.Violations(); len(v) != 0 {
		t.Fatalf("violations: %v", v)
	}
	if h.Traps() != 0 {
		t.Fatalf("the VM crashed:\n%s", logs)
	}
}

func TestResponsePhaseLocalReply(t *testing.T) {
	h, _ := newHost(t, nil)
	s := h.NewStream(props())
	defer s.Close()
	if _, err := s.RequestHeaders(ctxT(t), req("/resp-local"), true); err != nil {
		t.Fatal(err)
	}
	rr, err := s.ResponseHeaders(ctxT(t), [][2]string{{":status", "200"}}, false)
	if err != nil || rr.Action != host.LocalReply || rr.Local.Status != 418 {
		t.Fatalf("got %+v %v", rr, err)
	}
}

func TestTicksAndMetrics(t *testing.T) {
	h, _ := newHost(t, func(c *host.Config) { c.Plugin.Configuration = []byte("tick_ms=3600000") })
	h.Tick()
	h.Tick()
	for i := 0; i < 3; i++ {
		s := h.NewStream(props())
		s.RequestHeaders(ctxT(t), req("/abc"), true)
		s.Close()
	}
	m := map[string]host.Metric{}
	for _, x := range h.Metrics() {
		m[x.Name] = x
	}
	if got := m["wasmcustom.test_ticks_total"]; got.Type != host.Counter || got.Value != 4 { // 2 ticks × 2 workers
		t.Fatalf("ticks metric: %+v", got)
	}
	if got := m["wasmcustom.test_requests_total"]; got.Value != 3 {
		t.Fatalf("requests metric: %+v", got)
	}
	if got := m["wasmcustom.test_inflight"]; got.Type != host.Gauge || got.Value != 0 {
		t.Fatalf("gauge: %+v", got)
	}
	if got := m["wasmcustom.test_path_length"]; got.Type != host.Histogram || got.Count != 3 || got.Quantile(0.5) != 4 {
		t.Fatalf("histogram: %+v", got)
	}
}

func TestTickTimerFires(t *testing.T) {
	h, _ := newHost(t, func(c *host.Config) { c.Workers = 1; c.Plugin.Configuration = []byte("tick_ms=5") })
	waitFor(t, func() bool {
		for _, m := range h.Metrics() {
			if m.Name == "wasmcustom.test_ticks_total" && m.Value >= 2 {
				return true
			}
		}
		return false
	})
}

func TestConfigureFailureCarriesModuleLogs(t *testing.T) {
	logs := &syncBuf{}
	_, err := host.New(context.Background(), host.Config{
		Module: hosttest.Guest(t), CacheDir: hosttest.CacheDir(), Logger: logs,
		Plugin: host.Plugin{RootID: "r", Configuration: []byte("reject=missing api key")},
	})
	if err == nil || !strings.Contains(err.Error(), "configuration rejected: missing api key") || !strings.Contains(err.Error(), "proxy_on_configure returned false") {
		t.Fatalf("err = %v", err)
	}
	_, err = host.New(context.Background(), host.Config{
		Module: hosttest.Guest(t), CacheDir: hosttest.CacheDir(), Logger: logs,
		Plugin: host.Plugin{VMConfiguration: []byte("refuse-vm")},
	})
	if err == nil || !strings.Contains(err.Error(), "vm configuration refused") {
		t.Fatalf("err = %v", err)
	}
}

func TestBadModules(t *testing.T) {
	if _, err := host.New(context.Background(), host.Config{}); err == nil {
		t.Fatal("empty module accepted")
	}
	if _, err := host.New(context.Background(), host.Config{Module: []byte("not wasm")}); err == nil {
		t.Fatal("garbage accepted")
	}
	// A valid Wasm module that is not a Proxy-Wasm module.
	empty := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	if _, err := host.New(context.Background(), host.Config{Module: empty}); err == nil || !strings.Contains(err.Error(), "proxy_abi_version") {
		t.Fatalf("err = %v", err)
	}
}

func TestImportNames(t *testing.T) {
	names := strings.Join(host.ImportNames("0.2.1"), " ")
	for _, want := range []string{"env.proxy_http_call", "env.proxy_get_log_level", "wasi_snapshot_preview1.poll_oneoff", "wasi_snapshot_preview1.path_filestat_get"} {
		if !strings.Contains(names, want) {
			t.Errorf("missing %s", want)
		}
	}
	if host.Provides("0.2.0", "env", "proxy_get_log_level") {
		t.Error("proxy_get_log_level is 0.2.1 only")
	}
	if host.Provides("0.2.1", "env", "proxy_continue_request") {
		t.Error("proxy_continue_request is ABI 0.1.0 only")
	}
}

func TestVMMemoryAndCallHook(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	h, _ := newHost(t, func(c *host.Config) {
		c.OnCall = func(w int, cb string, d time.Duration) {
			mu.Lock()
			calls[cb]++
			mu.Unlock()
		}
	})
	s := h.NewStream(props())
	s.RequestHeaders(ctxT(t), req("/"), true)
	s.Close()
	if h.VMMemoryBytes(0) == 0 || h.VMMemoryBytes(5) != 0 {
		t.Fatal("VMMemoryBytes")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, cb := range []string{"proxy_on_context_create", "proxy_on_request_headers", "proxy_on_log", "proxy_on_done", "proxy_on_delete"} {
		if calls[cb] == 0 {
			t.Errorf("OnCall never saw %s: %v", cb, calls)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never became true")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

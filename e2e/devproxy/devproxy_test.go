package devproxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipveil/ipveil/e2e/bootstrap"
	"github.com/ipveil/ipveil/e2e/devproxy"
	"github.com/ipveil/ipveil/e2e/host"
	"github.com/ipveil/ipveil/e2e/host/hosttest"
)

// hangGuard only stops a hung test; nothing here measures time.
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

// stack is a devproxy in front of an echo upstream and a mock reputation
// API, all on loopback.
type stack struct {
	p         *devproxy.Proxy
	echoHits  atomic.Int64
	mockHits  atomic.Int64
	accessLog *syncBuf
	logs      *syncBuf
	mockDelay chan struct{} // when non-nil, the mock waits on it
	mockSeen  chan struct{}
}

type echoed struct {
	Method           string
	Path             string
	Headers          map[string][]string
	Body             string // up to 4 KiB
	BodyLen          int
	ContentLength    int64
	TransferEncoding []string
}

func newStack(t *testing.T, mut func(*bootstrap.Config)) *stack {
	t.Helper()
	return newStackWith(t, mut, nil)
}

// newStackWith is newStack with devproxy options adjusted by opts.
func newStackWith(t *testing.T, mut func(*bootstrap.Config), opts func(*devproxy.Options)) *stack {
	t.Helper()
	st := &stack{accessLog: &syncBuf{}, logs: &syncBuf{}}
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.echoHits.Add(1)
		h := map[string][]string{}
		for k, v := range r.Header {
			h[strings.ToLower(k)] = v
		}
		body, _ := io.ReadAll(r.Body)
		e := echoed{Method: r.Method, Path: r.URL.RequestURI(), Headers: h, BodyLen: len(body),
			ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding}
		if len(body) <= 4096 {
			e.Body = string(body)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Server", "echo")
		json.NewEncoder(w).Encode(e)
	}))
	t.Cleanup(echo.Close)
	mock := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.mockHits.Add(1)
		if st.mockSeen != nil {
			select {
			case st.mockSeen <- struct{}{}:
			default:
			}
		}
		if st.mockDelay != nil {
			select {
			case <-st.mockDelay:
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, `{"path":%q}`, r.URL.RequestURI())
	}))
	t.Cleanup(mock.Close)
	format, err := bootstrap.CompileFormat("%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %FILTER_STATE(wasm.guest_path:PLAIN)% %FILTER_STATE(wasm.guest_log:PLAIN)%\n")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &bootstrap.Config{
		Admin: &bootstrap.Admin{Address: "127.0.0.1:0"},
		Listener: bootstrap.Listener{
			Name: "ingress", Address: "127.0.0.1:0", StatPrefix: "ingress_http", UseRemoteAddress: true,
			Routes:     []bootstrap.Route{{Domains: []string{"*"}, Prefix: "/", Cluster: "echo", Timeout: 15 * time.Second}},
			Wasm:       []bootstrap.WasmFilter{{Name: "test", RootID: "test_root", VMID: "test_vm", Configuration: []byte("cluster=mock")}},
			AccessLogs: []*bootstrap.AccessLog{{Path: "/dev/stdout", Format: format}},
		},
		Clusters: map[string]*bootstrap.Cluster{
			"echo": {Name: "echo", Type: "STATIC", Endpoints: []string{echo.Listener.Addr().String()}, ConnectTimeout: time.Second},
			"mock": {Name: "mock", Type: "STATIC", Endpoints: []string{mock.Listener.Addr().String()}, ConnectTimeout: time.Second},
		},
	}
	if mut != nil {
		mut(cfg)
	}
	o := devproxy.Options{
		Workers: 2, CacheDir: hosttest.CacheDir(), Logger: st.logs, AccessLog: st.accessLog, LogLevel: host.LogDebug,
		ListenAddr: "127.0.0.1:0", Modules: map[string][]byte{"test": hosttest.Guest(t)}, DrainTimeout: time.Second,
	}
	if opts != nil {
		opts(&o)
	}
	p, err := devproxy.New(cfg, o)
	if err != nil {
		t.Fatalf("devproxy.New: %v", err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	st.p = p
	return st
}

func (st *stack) do(t *testing.T, method, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, "http://"+st.p.Addr()+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\nproxy log:\n%s", method, path, err, st.logs)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (st *stack) echo(t *testing.T, path string, hdr map[string]string) echoed {
	t.Helper()
	resp, body := st.do(t, "GET", path, hdr)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d body %q\nproxy log:\n%s", path, resp.StatusCode, body, st.logs)
	}
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("upstream body %q: %v", body, err)
	}
	return e
}

func (e echoed) h(k string) string {
	if v := e.Headers[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func TestHeadersReachUpstreamEdited(t *testing.T) {
	st := newStack(t, nil)
	resp, body := st.do(t, "GET", "/hello?x=1", map[string]string{"X-Remove-Me": "1", "X-Keep": "k", "X-Envoy-Retry-On": "5xx", "X-Request-Id": "client-chosen"})
	if resp.StatusCode != 200 || resp.Header.Get("Server") != "envoy" || resp.Header.Get("X-Guest-Response") != "200" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	if resp.Header.Get("X-Envoy-Upstream-Service-Time") == "" {
		t.Errorf("no x-envoy-upstream-service-time")
	}
	var e echoed
	json.Unmarshal([]byte(body), &e)
	if e.Path != "/hello?x=1" || e.h("x-guest-seen") != "1" || e.h("x-keep") != "k" || e.h("x-remove-me") != "" {
		t.Fatalf("upstream saw %+v", e)
	}
	if e.h("x-forwarded-for") != "127.0.0.1" || e.h("x-forwarded-proto") != "http" {
		t.Fatalf("xff/xfp: %+v", e.Headers)
	}
	// Without XFF a request from 127.0.0.1 is internal: x-envoy-* headers
	// and the client's request id are kept.
	if e.h("x-envoy-internal") != "true" || e.h("x-request-id") != "client-chosen" || e.h("x-envoy-external-address") != "" {
		t.Fatalf("internal request headers: %+v", e.Headers)
	}
}

func TestExternalRequestSanitized(t *testing.T) {
	st := newStack(t, nil)
	e := st.echo(t, "/", map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Envoy-Retry-On": "5xx", "X-Request-Id": "client-chosen", "X-Envoy-Internal": "true"})
	if e.h("x-envoy-retry-on") != "" || e.h("x-envoy-internal") != "" || e.h("x-request-id") == "client-chosen" || e.h("x-request-id") == "" {
		t.Fatalf("external request not sanitized: %+v", e.Headers)
	}
	if e.h("x-envoy-external-address") != "127.0.0.1" || e.h("x-forwarded-for") != "203.0.113.7,127.0.0.1" {
		t.Fatalf("edge headers: %+v", e.Headers)
	}
}

func TestSourceAddressFromTrustedHops(t *testing.T) {
	xff := "198.51.100.1, 203.0.113.7"
	for _, tc := range []struct {
		hops uint32
		want string
	}{
		{0, "127.0.0.1:"}, // the peer, with its real port
		{1, "203.0.113.7:0"},
		{2, "198.51.100.1:0"},
		{3, "127.0.0.1:"}, // fewer entries than hops: the peer
	} {
		t.Run(fmt.Sprint(tc.hops), func(t *testing.T) {
			st := newStack(t, func(c *bootstrap.Config) { c.Listener.XFFNumTrustedHops = tc.hops })
			e := st.echo(t, "/props", map[string]string{"X-Forwarded-For": xff})
			got := e.h("x-prop-source-address")
			if !strings.HasPrefix(got, tc.want) || (tc.want == "127.0.0.1:" && strings.HasSuffix(got, ":0")) {
				t.Fatalf("source.address = %q, want %s…", got, tc.want)
			}
			if e.h("x-forwarded-for") != xff+",127.0.0.1" {
				t.Fatalf("xff = %q", e.h("x-forwarded-for"))
			}
			wantExt := strings.TrimSuffix(strings.Split(tc.want, ":")[0], ":")
			if e.h("x-envoy-external-address") != wantExt {
				t.Fatalf("x-envoy-external-address = %q, want %q", e.h("x-envoy-external-address"), wantExt)
			}
		})
	}
}

func TestLocalReplyNeverReachesUpstream(t *testing.T) {
	st := newStack(t, nil)
	resp, body := st.do(t, "GET", "/local", nil)
	if resp.StatusCode != 403 || body != "denied by guest" || resp.Header.Get("X-Guest") != "local" ||
		resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Server") != "envoy" {
		t.Fatalf("status %d body %q headers %v", resp.StatusCode, body, resp.Header)
	}
	if resp.Header.Get("X-Guest-Response") != "403" {
		t.Fatalf("the filter did not see its local reply in the response phase: %v", resp.Header)
	}
	if st.echoHits.Load() != 0 {
		t.Fatal("the upstream was called")
	}
}

func TestPausedRequestResumedAfterCallout(t *testing.T) {
	st := newStack(t, nil)
	e := st.echo(t, "/callout", nil)
	if e.h("x-callout-status") != "200" || e.h("x-callout-body") != `{"path":"/lookup?from=guest"}` {
		t.Fatalf("upstream saw %+v", e.Headers)
	}
	if st.mockHits.Load() != 1 {
		t.Fatalf("mock hits = %d", st.mockHits.Load())
	}
}

func TestCalloutTimeoutReachesGuestAs504(t *testing.T) {
	st := newStack(t, nil)
	st.mockDelay = make(chan struct{})
	defer close(st.mockDelay)
	e := st.echo(t, "/callout", map[string]string{"X-Timeout-Ms": "50"})
	if e.h("x-callout-status") != "504" || e.h("x-callout-body") != "upstream request timeout" {
		t.Fatalf("upstream saw %+v", e.Headers)
	}
}

func TestCalloutToUnknownClusterFailsSynchronously(t *testing.T) {
	st := newStack(t, nil)
	e := st.echo(t, "/unknown-cluster", nil)
	if !strings.Contains(e.h("x-dispatch-error"), "bad argument") {
		t.Fatalf("x-dispatch-error = %q", e.h("x-dispatch-error"))
	}
}

func TestSharedDataCASAcrossWorkers(t *testing.T) {
	st := newStack(t, nil)
	const n = 20
	var wg sync.WaitGroup
	vals := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals <- st.echo(t, "/shared", nil).h("x-shared")
		}()
	}
	wg.Wait()
	close(vals)
	seen := map[string]bool{}
	for v := range vals {
		if seen[v] {
			t.Fatalf("value %s seen twice", v)
		}
		seen[v] = true
	}
	if v, _ := st.p.Store().SharedData("test_vm", "counter"); string(v) != fmt.Sprint(n) {
		t.Fatalf("counter = %q", v)
	}
}

func TestTrapAnswers503AndNextRequestIsServed(t *testing.T) {
	st := newStack(t, nil)
	resp, _ := st.do(t, "GET", "/trap", nil)
	if resp.StatusCode != 503 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for i := 0; i < 4; i++ { // both workers
		if e := st.echo(t, "/", nil); e.h("x-guest-seen") != "1" {
			t.Fatalf("request %d after the crash not filtered: %+v", i, e.Headers)
		}
	}
	if !strings.Contains(st.logs.String(), "deliberate trap") {
		t.Fatalf("crash not logged:\n%s", st.logs)
	}
}

func TestStatsTicksAndMetrics(t *testing.T) {
	st := newStack(t, func(c *bootstrap.Config) { c.Listener.Wasm[0].Configuration = []byte("cluster=mock;tick_ms=5") })
	for i := 0; i < 3; i++ {
		st.echo(t, "/", nil)
	}
	admin := "http://" + st.p.AdminAddr()
	get := func(path string) string {
		resp, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(hangGuard)
	for !strings.Contains(get("/stats"), "wasmcustom.test_ticks_total: ") || strings.Contains(get("/stats"), "wasmcustom.test_ticks_total: 0\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no ticks:\n%s", get("/stats"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Access logging and stats follow the response, as in Envoy: wait for
	// the last request to finish.
	waitFor(t, func() bool { return strings.Contains(get("/stats"), "http.ingress_http.downstream_rq_completed: 3\n") })
	stats := get("/stats")
	for _, want := range []string{"wasmcustom.test_requests_total: 3\n", "http.ingress_http.downstream_rq_2xx: 3\n",
		"cluster.echo.upstream_rq_200: 3\n", "wasmcustom.test_path_length: P0(nan,1)", "server.live: 1\n"} {
		if !strings.Contains(stats, want) {
			t.Errorf("/stats lacks %q:\n%s", want, stats)
		}
	}
	prom := get("/stats/prometheus")
	for _, want := range []string{"# TYPE test_requests_total counter\ntest_requests_total{} 3\n",
		`envoy_http_downstream_rq_xx{envoy_response_code_class="2",envoy_http_conn_manager_prefix="ingress_http"} 3`,
		"test_path_length_count{} 3"} {
		if !strings.Contains(prom, want) {
			t.Errorf("/stats/prometheus lacks %q:\n%s", want, prom)
		}
	}
	if r := get("/ready"); r != "LIVE\n" {
		t.Errorf("/ready = %q", r)
	}
}

func TestAccessLogWithFilterState(t *testing.T) {
	st := newStack(t, nil)
	st.echo(t, "/hello", nil)
	st.do(t, "GET", "/local", nil)
	for _, want := range []string{"GET /hello 200 - /hello status=200\n", "GET /local 403 - /local status=403\n"} {
		waitFor(t, func() bool { return strings.Contains(st.accessLog.String(), want) })
	}
}

func TestRouterLocalReplies(t *testing.T) {
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := closed.Addr().String()
	closed.Close()
	st := newStack(t, func(c *bootstrap.Config) {
		c.Listener.Routes = []bootstrap.Route{
			{Domains: []string{"dead.test"}, Prefix: "/", Cluster: "dead", Timeout: 15 * time.Second},
			{Domains: []string{"example.test"}, Prefix: "/", Cluster: "echo", Timeout: 15 * time.Second},
		}
		c.Clusters["dead"] = &bootstrap.Cluster{Name: "dead", Type: "STATIC", Endpoints: []string{deadAddr}, ConnectTimeout: time.Second}
	})
	req := func(hostname string) (*http.Response, string) {
		r, _ := http.NewRequest("GET", "http://"+st.p.Addr()+"/x", nil)
		r.Host = hostname
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	if resp, _ := req("other.test"); resp.StatusCode != 404 {
		t.Errorf("no route: %d", resp.StatusCode)
	}
	if resp, body := req("dead.test"); resp.StatusCode != 503 || !strings.Contains(body, "upstream connect error") {
		t.Errorf("dead upstream: %d %q", resp.StatusCode, body)
	}
	if resp, _ := req("example.test:80"); resp.StatusCode != 200 {
		t.Errorf("routed: %d", resp.StatusCode)
	}
	for _, want := range []string{"GET /x 404 NR", "GET /x 503 UF"} {
		waitFor(t, func() bool { return strings.Contains(st.accessLog.String(), want) })
	}
}

func TestClientGoneWhilePaused(t *testing.T) {
	st := newStack(t, nil)
	st.mockDelay = make(chan struct{})
	st.mockSeen = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+st.p.Addr()+"/callout", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-st.mockSeen
	cancel()
	<-errc
	waitFor(t, func() bool { return strings.Contains(st.accessLog.String(), "GET /callout 0 DC") })
	close(st.mockDelay) // the late callout response finds the stream gone
	for i := 0; i < 4; i++ {
		st.echo(t, "/", nil)
	}
	for _, h := range st.p.Hosts() {
		if v := h.Violations(); len(v) > 0 || h.Traps() > 0 {
			t.Fatalf("violations %v traps %d\n%s", v, h.Traps(), st.logs)
		}
	}
	if st.echoHits.Load() != 4 {
		t.Fatalf("the abandoned request reached the upstream: %d hits", st.echoHits.Load())
	}
}

func TestPluginThatRefusesItsConfigurationStopsStartup(t *testing.T) {
	format, _ := bootstrap.CompileFormat("%RESPONSE_CODE%\n")
	cfg := &bootstrap.Config{
		Listener: bootstrap.Listener{Address: "127.0.0.1:0", StatPrefix: "x",
			Wasm:       []bootstrap.WasmFilter{{Name: "test", Configuration: []byte("reject=no api key")}},
			AccessLogs: []*bootstrap.AccessLog{{Path: "/dev/stdout", Format: format}}},
		Clusters: map[string]*bootstrap.Cluster{},
	}
	_, err := devproxy.New(cfg, devproxy.Options{Logger: io.Discard, CacheDir: hosttest.CacheDir(), Modules: map[string][]byte{"test": hosttest.Guest(t)}})
	if err == nil || !strings.Contains(err.Error(), "configuration rejected: no api key") {
		t.Fatalf("err = %v", err)
	}
}

func TestQuitQuitQuit(t *testing.T) {
	st := newStack(t, nil)
	admin := "http://" + st.p.AdminAddr()
	resp, err := http.Get(admin + "/quitquitquit")
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /quitquitquit: %v %v", resp, err)
	}
	resp, err = http.Post(admin+"/quitquitquit", "text/plain", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /quitquitquit: %v %v", resp, err)
	}
	select {
	case <-st.p.Done():
	case <-time.After(hangGuard):
		t.Fatal("Done not closed")
	}
}

// waitFor polls cond; the deadline only stops a hung test.
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

func TestCloseWithARequestPausedForever(t *testing.T) {
	st := newStack(t, nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + st.p.Addr() + "/pause")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, func() bool {
		for _, m := range st.p.Store().Metrics() {
			if m.Name == "wasmcustom.test_inflight" && m.Value == 1 {
				return true
			}
		}
		return false
	})
	done := make(chan struct{})
	go func() { st.p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatal("Close hung on a paused request")
	}
	<-errc
}

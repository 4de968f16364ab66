package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipveil/ipveil/e2e/echo"
	"github.com/ipveil/ipveil/e2e/stack"
)

// config builds a plugin configuration like envoy.yaml's, with extra
// top-level sections.
func config(extra ...string) string {
	parts := []string{`"provider": {"preset": "ipasis", "cluster": "reputation", "authority": "api.ipasis.example",
		"headers": {"x-api-key": "${IPVEIL_API_KEY}"}, "timeout_ms": 300}`}
	has := func(k string) bool {
		for _, e := range extra {
			if strings.HasPrefix(strings.TrimSpace(e), `"`+k+`"`) {
				return true
			}
		}
		return false
	}
	if !has("cache") {
		parts = append(parts, `"cache": {"ttl_s": 60, "error_ttl_s": 5}`)
	}
	if !has("lists") {
		parts = append(parts, `"lists": {"bypass_paths": ["/healthz"]}`)
	}
	return "{" + strings.Join(append(parts, extra...), ",\n") + "}"
}

// accessLine waits for the access-log line of the request to path.
func accessLine(t *testing.T, s *stack.Stack, path string) string {
	t.Helper()
	var line string
	stack.WaitFor(10*time.Second, func() bool {
		for _, l := range s.AccessLog.Lines() {
			if strings.Contains(l, " "+path+" ") {
				line = l
				return true
			}
		}
		return false
	})
	if line == "" {
		t.Fatalf("no access-log line for %s:\n%s", path, s.AccessLog.String())
	}
	return line
}

// The demo scenario table, against envoy.yaml exactly as shipped.
func TestDemoScenarios(t *testing.T) {
	s := stack.Start(t, stack.Options{})
	cases := []struct {
		name, ip     string
		status       int
		body         string // substring of the response body
		verdict      string
		reason       string
		masked       string
		upstreamSees string // X-Forwarded-For at the upstream, when it gets the request
	}{
		{"tor exit", "203.0.113.7", 403, "Access denied", "block", "tor", "203.0.113.0/24", ""},
		{"anonymising proxy", "198.51.100.23", 403, "Access denied", "block", "proxy", "198.51.100.0/24", ""},
		{"medium score", "192.0.2.44", 429, "<!doctype html>", "challenge", "score_medium", "192.0.2.0/24", ""},
		{"clean", "192.0.2.10", 200, `"method":"GET"`, "allow", "default", "192.0.2.0/24", "192.0.2.0/24, 127.0.0.0/24"},
		{"ipv6 tor exit", "2001:db8::7", 403, "Access denied", "block", "tor", "2001:db8::/64", ""},
		{"lookup times out, fail open", "192.0.2.99", 200, `"method":"GET"`, "allow", "error:timeout", "192.0.2.0/24", "192.0.2.0/24, 127.0.0.0/24"},
		{"lookup gets 500, fail open", "192.0.2.50", 200, `"method":"GET"`, "allow", "error:http_status", "192.0.2.0/24", "192.0.2.0/24, 127.0.0.0/24"},
		{"unknown address, default fixture", "198.51.100.200", 200, `"method":"GET"`, "allow", "default", "198.51.100.0/24", "198.51.100.0/24, 127.0.0.0/24"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("/demo/%d", i)
			resp, body, err := s.Get(path, "X-Forwarded-For", tc.ip)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if tc.upstreamSees != "" {
				er, err := echo.Decode(strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if got := er.Values("X-Forwarded-For"); strings.Join(got, ",") != tc.upstreamSees {
					t.Errorf("upstream X-Forwarded-For %q, want %q", got, tc.upstreamSees)
				}
				if got, _ := er.Get("X-Envoy-External-Address"); got != "" && got != tc.masked {
					t.Errorf("upstream X-Envoy-External-Address %q", got)
				}
			}
			line := accessLine(t, s, path)
			for _, want := range []string{"client=" + tc.masked, "verdict=" + tc.verdict, "reason=" + tc.reason, fmt.Sprintf("\" %d ", tc.status)} {
				if !strings.Contains(line, want) {
					t.Errorf("access log %q lacks %q", line, want)
				}
			}
			if strings.Contains(line, tc.ip) {
				t.Errorf("access log holds the raw address: %q", line)
			}
		})
	}

	// Within the TTL each address was looked up once, however often asked.
	for _, ip := range []string{"203.0.113.7", "192.0.2.10", "2001:db8::7"} {
		for i := 0; i < 3; i++ {
			if _, _, err := s.Get("/again", "X-Forwarded-For", ip); err != nil {
				t.Fatal(err)
			}
		}
		if n := s.Mock.Calls(ip); n != 1 {
			t.Errorf("%s looked up %d times within the TTL, want 1", ip, n)
		}
	}
	// The failed lookup is remembered for error_ttl_s, not retried at once.
	s.Get("/again", "X-Forwarded-For", "192.0.2.50")
	if n := s.Mock.Calls("192.0.2.50"); n != 1 {
		t.Errorf("failed lookup retried within error_ttl_s: %d calls", n)
	}
	// Bypass paths make no lookup.
	resp, _, err := s.Get("/healthz", "X-Forwarded-For", "203.0.113.99")
	if err != nil || resp.StatusCode != 200 || s.Mock.Calls("203.0.113.99") != 0 {
		t.Errorf("bypass: %v %v calls=%d", resp, err, s.Mock.Calls("203.0.113.99"))
	}
	if line := accessLine(t, s, "/healthz"); !strings.Contains(line, "reason=bypass_path") {
		t.Errorf("bypass access log %q", line)
	}
}

func TestFailClosed(t *testing.T) {
	s := stack.Start(t, stack.Options{Config: config(`"policy": {"on_error": "block"}`)})
	for _, tc := range []struct{ ip, reason string }{{"192.0.2.99", "error:timeout"}, {"192.0.2.50", "error:http_status"}} {
		path := "/closed/" + tc.ip
		resp, _, err := s.Get(path, "X-Forwarded-For", tc.ip)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 403 {
			t.Errorf("%s: %d, want 403 (fail closed)", tc.ip, resp.StatusCode)
		}
		if line := accessLine(t, s, path); !strings.Contains(line, "reason="+tc.reason) {
			t.Errorf("access log %q", line)
		}
	}
}

func TestDryRun(t *testing.T) {
	s := stack.Start(t, stack.Options{Config: config(`"mode": "dry_run"`, `"verdict_header": "x-ipveil-verdict"`)})
	resp, body, err := s.Get("/dry", "X-Forwarded-For", "203.0.113.7", "x-ipveil-verdict", "allow")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("dry run answered %d", resp.StatusCode)
	}
	er, err := echo.Decode(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := er.Values("X-Ipveil-Verdict"); len(got) != 1 || got[0] != "block; reason=tor" {
		t.Errorf("upstream verdict header %q", got)
	}
	if line := accessLine(t, s, "/dry"); !strings.Contains(line, "verdict=block") {
		t.Errorf("access log %q", line)
	}
	if !strings.Contains(s.Log.String(), `"mode":"dry_run"`) {
		t.Errorf("no dry-run decision line in the log")
	}
}

func TestFiftyConcurrentRequestsOneLookup(t *testing.T) {
	s := stack.Start(t, stack.Options{Config: config()})
	// One new address, fifty requests at once; the mock answers slowly so
	// that they all overlap the first lookup.
	s.Mock.SetFixture("203.0.113.77", slowTor(150))
	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, _, err := s.Get(fmt.Sprintf("/c/%d", i), "X-Forwarded-For", "203.0.113.77")
			if err == nil {
				codes[i] = resp.StatusCode
			}
		}(i)
	}
	wg.Wait()
	for i, c := range codes {
		if c != 403 {
			t.Errorf("request %d: %d, want 403", i, c)
		}
	}
	// One lookup in all: each worker coalesces its own misses, and a worker
	// that finds another's claim in shared data waits for its verdict.
	if n := s.Mock.Calls("203.0.113.77"); n != 1 {
		t.Errorf("%d lookups for 50 concurrent requests from one address over 2 workers, want 1", n)
	}
}

func TestOneWorkerOneLookup(t *testing.T) {
	s := stack.Start(t, stack.Options{Config: config(), Workers: 1})
	s.Mock.SetFixture("203.0.113.78", slowTor(150))
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); s.Get("/one", "X-Forwarded-For", "203.0.113.78") }()
	}
	wg.Wait()
	if n := s.Mock.Calls("203.0.113.78"); n != 1 {
		t.Errorf("%d lookups for 50 concurrent requests on one worker, want 1", n)
	}
}

func TestTTLExpiryAndErrorTTL(t *testing.T) {
	s := stack.Start(t, stack.Options{Config: config(`"cache": {"ttl_s": 1, "error_ttl_s": 1}`)})
	s.Get("/t", "X-Forwarded-For", "192.0.2.10")
	s.Get("/t", "X-Forwarded-For", "192.0.2.10")
	s.Get("/t", "X-Forwarded-For", "192.0.2.50")
	s.Get("/t", "X-Forwarded-For", "192.0.2.50")
	if a, b := s.Mock.Calls("192.0.2.10"), s.Mock.Calls("192.0.2.50"); a != 1 || b != 1 {
		t.Fatalf("within the TTLs: %d and %d lookups, want 1 and 1", a, b)
	}
	time.Sleep(1100 * time.Millisecond) // let both TTLs pass
	s.Get("/t", "X-Forwarded-For", "192.0.2.10")
	s.Get("/t", "X-Forwarded-For", "192.0.2.50")
	if a, b := s.Mock.Calls("192.0.2.10"), s.Mock.Calls("192.0.2.50"); a != 2 || b != 2 {
		t.Fatalf("after the TTLs: %d and %d lookups, want 2 and 2", a, b)
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	s := stack.Start(t, stack.Options{Workers: 1, Config: config(`"breaker": {"failures": 3, "cooldown_s": 1}`,
		`"policy": {"on_error": "block"}`, `"cache": {"ttl_s": 60, "error_ttl_s": 1}`)})
	for i := 0; i < 3; i++ {
		ip := fmt.Sprintf("198.51.100.%d", 100+i)
		s.Mock.SetFixture(ip, fail500())
		if resp, _, _ := s.Get("/b", "X-Forwarded-For", ip); resp == nil || resp.StatusCode != 403 {
			t.Fatalf("failure %d not answered with on_error", i)
		}
	}
	// Open: a new address is answered at once, without a lookup.
	resp, _, _ := s.Get("/open", "X-Forwarded-For", "198.51.100.150")
	if resp == nil || resp.StatusCode != 403 || s.Mock.Calls("198.51.100.150") != 0 {
		t.Fatalf("breaker open: status %v, %d lookups", resp, s.Mock.Calls("198.51.100.150"))
	}
	if line := accessLine(t, s, "/open"); !strings.Contains(line, "reason=error:breaker_open") {
		t.Errorf("access log %q", line)
	}
	time.Sleep(1100 * time.Millisecond) // the cool-down
	resp, _, _ = s.Get("/probe", "X-Forwarded-For", "192.0.2.10")
	if resp == nil || resp.StatusCode != 200 || s.Mock.Calls("192.0.2.10") != 1 {
		t.Fatalf("probe after the cool-down: %v, %d lookups", resp, s.Mock.Calls("192.0.2.10"))
	}
	resp, _, _ = s.Get("/after", "X-Forwarded-For", "192.0.2.11")
	if resp == nil || resp.StatusCode != 200 || s.Mock.Calls("192.0.2.11") != 1 {
		t.Fatalf("lookups did not resume: %v", resp)
	}
	waitStats(t, s, "wasmcustom.ipveil.breaker.opened: 1", "wasmcustom.ipveil.breaker.rejected: 1")
}

func TestSharedDataStaysBoundedUnderAFlood(t *testing.T) {
	const slots = 64
	s := stack.Start(t, stack.Options{Config: config(fmt.Sprintf(`"cache": {"ttl_s": 60, "slots": %d, "local_entries": 16}`, slots))})
	for i := 0; i < 600; i++ {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255+1)
		if resp, _, err := s.Get("/f", "X-Forwarded-For", ip); err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %v %v", i, resp, err)
		}
	}
	keys, bytes := s.Proxy.Store().SharedDataStats()
	t.Logf("after 600 distinct addresses: %d shared-data keys, %d bytes", keys, bytes)
	if keys > slots+1 { // the slots and the hashing secret
		t.Errorf("%d shared-data keys, want at most %d", keys, slots+1)
	}
}

func TestMetricsInAdminStats(t *testing.T) {
	s := stack.Start(t, stack.Options{})
	s.Get("/m", "X-Forwarded-For", "203.0.113.7")
	s.Get("/m", "X-Forwarded-For", "203.0.113.7")
	waitStats(t, s,
		"wasmcustom.ipveil.requests.verdict.block.reason.tor: 2",
		"wasmcustom.ipveil.cache.miss: 1",
		"wasmcustom.ipveil.callouts.sent: 1",
		"wasmcustom.ipveil.lookup.latency_ms")
	prom := adminGet(t, s, "/stats/prometheus")
	if !strings.Contains(prom, "ipveil") {
		t.Errorf("/stats/prometheus has no ipveil metric:\n%s", prom)
	}
}

// waitStats waits for /stats to show every line (counters reach the host on
// the filter's next tick).
func waitStats(t *testing.T, s *stack.Stack, want ...string) {
	t.Helper()
	var stats string
	stack.WaitFor(10*time.Second, func() bool {
		stats = adminGet(t, s, "/stats")
		for _, w := range want {
			if !strings.Contains(stats, w) {
				return false
			}
		}
		return true
	})
	for _, w := range want {
		if !strings.Contains(stats, w) {
			t.Errorf("/stats lacks %q", w)
		}
	}
}

func adminGet(t *testing.T, s *stack.Stack, path string) string {
	t.Helper()
	resp, err := http.Get(s.AdminURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func slowTor(delayMs int) (f mockrepFixture) {
	f.Status, f.DelayMS = 200, delayMs
	f.Body = json.RawMessage(`{"ip":"{ip}","privacy":{"Tor":true,"Proxy":false,"VPN":false,"Relay":false,"Hosting":true},"risk":{"score":95}}`)
	return f
}

func fail500() (f mockrepFixture) {
	f.Status, f.Body = 500, json.RawMessage(`{"error":"down"}`)
	return f
}

// A provider.cluster Envoy does not know fails the callout synchronously:
// the request takes on_error at once and says why.
func TestUnknownCluster(t *testing.T) {
	cfg := strings.Replace(config(`"policy": {"on_error": "block"}`), `"cluster": "reputation"`, `"cluster": "no-such-cluster"`, 1)
	s := stack.Start(t, stack.Options{Config: cfg})
	resp, _, err := s.Get("/uc", "X-Forwarded-For", "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 403 {
		t.Errorf("status %d, want 403 (on_error block)", resp.StatusCode)
	}
	if line := accessLine(t, s, "/uc"); !strings.Contains(line, "reason=error:unknown_cluster") {
		t.Errorf("access log %q", line)
	}
	if len(s.Callouts()) != 0 {
		t.Errorf("a callout reached the API")
	}
	waitStats(t, s, "wasmcustom.ipveil.callouts.failed.unknown_cluster: 1")
	if !strings.Contains(s.Log.String(), `cannot call cluster \"no-such-cluster\"`) && !strings.Contains(s.Log.String(), `cannot call cluster "no-such-cluster"`) {
		t.Errorf("no log line names the cluster:\n%s", s.Log.String())
	}
}

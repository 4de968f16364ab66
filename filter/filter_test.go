package filter

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// IPASIS-shaped answers (see policy/testdata/ipasis.json).
const (
	bodyClean  = `{"ip":"%s","privacy":{"VPN":false,"Proxy":false,"Tor":false,"Relay":false,"Hosting":false},"risk":{"score":5},"asn":{"ASN":"AS64500","Type":"isp"}}`
	bodyTor    = `{"ip":"%s","privacy":{"VPN":false,"Proxy":false,"Tor":true,"Relay":false,"Hosting":true},"risk":{"score":95}}`
	bodyProxy  = `{"ip":"%s","privacy":{"VPN":false,"Proxy":true,"Tor":false,"Relay":false,"Hosting":true},"risk":{"score":40}}`
	bodyMedium = `{"ip":"%s","privacy":{"VPN":true,"Proxy":false,"Tor":false,"Relay":false,"Hosting":false},"risk":{"score":65}}`
	bodyDC     = `{"ip":"%s","privacy":{"VPN":false,"Proxy":false,"Tor":false,"Relay":false,"Hosting":true},"risk":{"score":10}}`
)

const baseProvider = `"provider": {"preset": "ipasis", "cluster": "reputation", "authority": "api.ipasis.example",
               "headers": {"x-api-key": "${IPVEIL_TEST_KEY}"}, "timeout_ms": 250}`

// Defaults for the sections a test does not set itself.
var baseSections = map[string]string{
	"cache": `"cache": {"ttl_s": 60, "error_ttl_s": 5}`,
	"lists": `"lists": {"bypass_paths": ["/healthz", "/static/*"], "allow_cidrs": ["10.0.0.0/8"], "deny_cidrs": ["198.18.0.0/15"]}`,
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type env struct {
	t     *testing.T
	host  proxytest.HostEmulator
	clock *clock
	vm    *vmContext
}

// newEnv starts the plugin with baseConfig plus extra top-level keys.
func newEnv(t *testing.T, extra string) *env {
	t.Helper()
	t.Setenv("IPVEIL_TEST_KEY", "k-123")
	parts := []string{baseProvider}
	for _, name := range []string{"cache", "lists"} {
		if !strings.Contains(extra, `"`+name+`"`) {
			parts = append(parts, baseSections[name])
		}
	}
	if extra != "" {
		parts = append(parts, extra)
	}
	return newEnvRaw(t, "{"+strings.Join(parts, ",\n")+"}")
}

func newEnvRaw(t *testing.T, cfg string) *env {
	t.Helper()
	clk := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	vm := &vmContext{now: clk.now}
	opt := proxytest.NewEmulatorOption().
		WithVMContext(vm).
		WithPluginConfiguration([]byte(cfg))
	host, reset := proxytest.NewHostEmulator(opt)
	t.Cleanup(reset)
	if st := host.StartPlugin(); st != types.OnPluginStartStatusOK {
		t.Fatalf("plugin did not start: %v", host.GetCriticalLogs())
	}
	return &env{t: t, host: host, clock: clk, vm: vm}
}

type req struct {
	id      uint32
	action  types.Action
	callout *proxytest.HttpCalloutAttribute
}

// send runs one request's headers through the filter.
func (e *env) send(src, path string, hdrs ...[2]string) *req {
	e.t.Helper()
	if err := e.host.SetProperty([]string{"source", "address"}, []byte(src)); err != nil {
		e.t.Fatal(err)
	}
	id := e.host.InitializeHttpContext()
	headers := [][2]string{{":method", "GET"}, {":path", path}, {":authority", "app.example"}}
	for _, h := range hdrs {
		replaced := false
		for i := range headers {
			if strings.HasPrefix(h[0], ":") && headers[i][0] == h[0] {
				headers[i], replaced = h, true
			}
		}
		if !replaced {
			headers = append(headers, h)
		}
	}
	r := &req{id: id, action: e.host.CallOnRequestHeaders(id, headers, true)}
	if cs := e.host.GetCalloutAttributesFromContext(id); len(cs) > 0 {
		c := cs[len(cs)-1]
		r.callout = &c
	}
	return r
}

// answer delivers the callout's response.
func (e *env) answer(r *req, status int, body string) {
	e.t.Helper()
	if r.callout == nil {
		e.t.Fatal("no callout was dispatched")
	}
	var hs [][2]string
	if status != 0 {
		hs = [][2]string{{":status", fmt.Sprint(status)}, {"content-type", "application/json"}}
	}
	e.host.CallOnHttpCallResponse(r.callout.CalloutID, hs, nil, []byte(body))
}

func (e *env) state(name string) string {
	v, err := e.host.GetProperty([]string{name})
	if err != nil {
		return ""
	}
	return string(v)
}

func (e *env) logs() []string {
	var all []string
	all = append(all, e.host.GetTraceLogs()...)
	all = append(all, e.host.GetDebugLogs()...)
	all = append(all, e.host.GetInfoLogs()...)
	all = append(all, e.host.GetWarnLogs()...)
	all = append(all, e.host.GetErrorLogs()...)
	all = append(all, e.host.GetCriticalLogs()...)
	return all
}

func (e *env) reply(r *req) *proxytest.LocalHttpResponse { return e.host.GetSentLocalResponse(r.id) }

func (e *env) upstreamHeader(r *req, name string) []string {
	var out []string
	for _, h := range e.host.GetCurrentRequestHeaders(r.id) {
		if h[0] == name {
			out = append(out, h[1])
		}
	}
	return out
}

func (e *env) wantContinue(r *req) {
	e.t.Helper()
	if got := e.host.GetCurrentHttpStreamAction(r.id); got != types.ActionContinue {
		e.t.Fatalf("stream action = %v, want continue; logs: %v", got, e.logs())
	}
	if lr := e.reply(r); lr != nil {
		e.t.Fatalf("unexpected local reply %d %q", lr.StatusCode, lr.Data)
	}
}

func (e *env) wantReply(r *req, status uint32) *proxytest.LocalHttpResponse {
	e.t.Helper()
	lr := e.reply(r)
	if lr == nil {
		e.t.Fatalf("no local reply, want %d; logs: %v", status, e.logs())
	}
	if lr.StatusCode != status {
		e.t.Fatalf("local reply %d, want %d", lr.StatusCode, status)
	}
	if got := e.host.GetCurrentHttpStreamAction(r.id); got != types.ActionPause {
		e.t.Fatalf("after a local reply the stream must stay paused, got %v", got)
	}
	return lr
}

// wantNoRawIP fails when any log line, filter-state value, upstream header
// or local reply holds one of the raw addresses.
func (e *env) wantNoRawIP(rs []*req, ips ...string) {
	e.t.Helper()
	var emitted []string
	emitted = append(emitted, e.logs()...)
	for _, n := range []string{StateClient, StateVerdict, StateReason, StateSource} {
		emitted = append(emitted, e.state(n))
	}
	for _, r := range rs {
		for _, h := range e.host.GetCurrentRequestHeaders(r.id) {
			if strings.HasPrefix(h[0], ":") {
				continue
			}
			emitted = append(emitted, h[0]+": "+h[1])
		}
		if lr := e.reply(r); lr != nil {
			emitted = append(emitted, string(lr.Data))
			for _, h := range lr.Headers {
				emitted = append(emitted, h[0]+": "+h[1])
			}
		}
	}
	for _, line := range emitted {
		for _, ip := range ips {
			if strings.Contains(line, ip) {
				e.t.Errorf("raw client address %s written: %q", ip, line)
			}
		}
	}
}

func TestAllowCleanClient(t *testing.T) {
	e := newEnv(t, "")
	r := e.send("192.0.2.10:0", "/", [2]string{"x-forwarded-for", "192.0.2.10"})
	if r.action != types.ActionPause {
		t.Fatalf("a miss must pause the request, got %v", r.action)
	}
	c := r.callout
	if c.Upstream != "reputation" {
		t.Errorf("callout cluster %q", c.Upstream)
	}
	want := map[string]string{":method": "GET", ":path": "/v1/lookup?ip=192.0.2.10", ":authority": "api.ipasis.example", "x-api-key": "k-123"}
	for k, v := range want {
		if got := headerValue(c.Headers, k); got != v {
			t.Errorf("callout header %s = %q, want %q", k, got, v)
		}
	}
	e.answer(r, 200, fmt.Sprintf(bodyClean, "192.0.2.10"))
	e.wantContinue(r)
	if got := e.state(StateClient); got != "192.0.2.0/24" {
		t.Errorf("client state %q", got)
	}
	if got := e.state(StateVerdict); got != "allow" {
		t.Errorf("verdict state %q", got)
	}
	if got := e.upstreamHeader(r, "x-forwarded-for"); len(got) != 1 || got[0] != "192.0.2.0/24" {
		t.Errorf("upstream x-forwarded-for %q", got)
	}
	if n := len(e.host.GetInfoLogs()) - 1; n > 0 { // the start line
		t.Errorf("an allow decision should not be logged by default: %v", e.host.GetInfoLogs())
	}
	e.wantNoRawIP([]*req{r}, "192.0.2.10")
}

func TestBlockTorAndProxy(t *testing.T) {
	for _, tc := range []struct{ ip, body, reason string }{
		{"203.0.113.7", bodyTor, "tor"},
		{"198.51.100.23", bodyProxy, "proxy"},
		{"2001:db8::7", bodyTor, "tor"},
	} {
		t.Run(tc.reason+"/"+tc.ip, func(t *testing.T) {
			e := newEnv(t, "")
			src := tc.ip + ":0"
			if strings.Contains(tc.ip, ":") {
				src = "[" + tc.ip + "]:0"
			}
			r := e.send(src, "/login")
			e.answer(r, 200, fmt.Sprintf(tc.body, tc.ip))
			lr := e.wantReply(r, 403)
			if string(lr.Data) != defaultBlockBody {
				t.Errorf("body %q", lr.Data)
			}
			if e.state(StateVerdict) != "block" || e.state(StateReason) != tc.reason {
				t.Errorf("state verdict=%q reason=%q", e.state(StateVerdict), e.state(StateReason))
			}
			logs := e.host.GetInfoLogs()
			found := false
			for _, l := range logs {
				if strings.Contains(l, `"verdict":"block"`) && strings.Contains(l, `"reason":"`+tc.reason+`"`) && strings.Contains(l, `"source":"lookup"`) {
					found = true
				}
			}
			if !found {
				t.Errorf("no decision line for the block: %v", logs)
			}
			e.wantNoRawIP([]*req{r}, tc.ip)
		})
	}
}

func TestDatacenterAloneIsNotBlocked(t *testing.T) {
	e := newEnv(t, "")
	r := e.send("192.0.2.60:0", "/")
	e.answer(r, 200, fmt.Sprintf(bodyDC, "192.0.2.60"))
	e.wantContinue(r)
}

func TestChallengePage(t *testing.T) {
	e := newEnv(t, "")
	r := e.send("192.0.2.44:0", "/account")
	e.answer(r, 200, fmt.Sprintf(bodyMedium, "192.0.2.44"))
	lr := e.wantReply(r, 429)
	if !strings.Contains(string(lr.Data), "<!doctype html>") {
		t.Errorf("challenge page body %q", lr.Data)
	}
	if headerValue(lr.Headers, "cache-control") != "no-store" {
		t.Errorf("challenge must not be cached: %v", lr.Headers)
	}
	if e.state(StateVerdict) != "challenge" {
		t.Errorf("verdict %q", e.state(StateVerdict))
	}
	e.wantNoRawIP([]*req{r}, "192.0.2.44")
}

func TestChallengeRedirectCarriesPathNotIP(t *testing.T) {
	e := newEnv(t, `"challenge": {"kind": "redirect", "url": "/.ipveil/challenge?return={path}"}`)
	r := e.send("192.0.2.44:0", "/cart?item=1&ip=x")
	e.answer(r, 200, fmt.Sprintf(bodyMedium, "192.0.2.44"))
	lr := e.wantReply(r, 302)
	loc := headerValue(lr.Headers, "location")
	if loc != "/.ipveil/challenge?return=%2Fcart%3Fitem%3D1%26ip%3Dx" {
		t.Errorf("location %q", loc)
	}
	e.wantNoRawIP([]*req{r}, "192.0.2.44")
}

func TestDryRunAllowsAndTellsUpstream(t *testing.T) {
	e := newEnv(t, `"mode": "dry_run", "verdict_header": "x-ipveil-verdict"`)
	r := e.send("203.0.113.7:0", "/", [2]string{"x-ipveil-verdict", "allow; reason=forged"})
	e.answer(r, 200, fmt.Sprintf(bodyTor, "203.0.113.7"))
	e.wantContinue(r)
	if got := e.upstreamHeader(r, "x-ipveil-verdict"); len(got) != 1 || got[0] != "block; reason=tor" {
		t.Errorf("verdict header upstream %q", got)
	}
	if e.state(StateVerdict) != "block" {
		t.Errorf("dry run records the verdict it would enforce, got %q", e.state(StateVerdict))
	}
	found := false
	for _, l := range e.host.GetInfoLogs() {
		found = found || strings.Contains(l, `"mode":"dry_run"`) && strings.Contains(l, `"verdict":"block"`)
	}
	if !found {
		t.Errorf("dry run must still log the decision: %v", e.host.GetInfoLogs())
	}
}

func TestClientCannotForgeVerdictHeader(t *testing.T) {
	e := newEnv(t, `"verdict_header": "x-ipveil-verdict"`)
	r := e.send("10.1.2.3:0", "/", [2]string{"x-ipveil-verdict", "allow"})
	e.wantContinue(r)
	if got := e.upstreamHeader(r, "x-ipveil-verdict"); len(got) != 0 {
		t.Errorf("client-supplied verdict header reached the upstream: %q", got)
	}
}

// Every failure kind takes on_error: fail open (allow) and fail closed
// (block), and each says why in the decision line.
func TestLookupFailures(t *testing.T) {
	big := `{"pad":"` + strings.Repeat("x", 70000) + `"}`
	cases := []struct {
		name   string
		status int
		body   string
		kind   string
	}{
		{"timeout", 504, "upstream request timeout", "timeout"},
		{"server error", 500, `{"error":"boom"}`, "http_status"},
		{"no healthy upstream", 503, "no healthy upstream", "http_status"},
		{"rate limited", 429, `{"error":"rate limit"}`, "quota"},
		{"quota in a 200 body", 200, `{"error":{"code":"quota_exceeded","message":"Monthly quota exceeded"}}`, "quota"},
		{"unparsable", 200, `<html>oops</html>`, "unparsable"},
		{"empty body", 200, ``, "empty_body"},
		{"not an object", 200, `[1,2,3]`, "unparsable"},
		{"too large", 200, big, "too_large"},
		{"reset", 0, "", "reset"},
	}
	for _, tc := range cases {
		for _, mode := range []struct{ onError, verdict string }{{"allow", "allow"}, {"block", "block"}} {
			t.Run(tc.name+"/on_error="+mode.onError, func(t *testing.T) {
				e := newEnv(t, `"policy": {"on_error": "`+mode.onError+`"}`)
				r := e.send("192.0.2.99:0", "/")
				e.answer(r, tc.status, tc.body)
				if mode.verdict == "allow" {
					e.wantContinue(r)
				} else {
					e.wantReply(r, 403)
				}
				if got := e.state(StateReason); got != "error:"+tc.kind {
					t.Errorf("reason %q, want error:%s", got, tc.kind)
				}
				found := false
				for _, l := range e.host.GetWarnLogs() {
					found = found || strings.Contains(l, `"error":"`+tc.kind+`"`)
				}
				if !found {
					t.Errorf("no decision line with the error kind: %v", e.logs())
				}
				e.wantNoRawIP([]*req{r}, "192.0.2.99")
			})
		}
	}
}

func TestErrorsAreCachedForTheErrorTTLOnly(t *testing.T) {
	e := newEnv(t, "")
	r1 := e.send("192.0.2.50:0", "/")
	e.answer(r1, 500, "{}")
	e.wantContinue(r1)

	r2 := e.send("192.0.2.50:0", "/")
	if r2.callout != nil {
		t.Fatal("a failed lookup must not be retried within error_ttl_s")
	}
	e.wantContinue(r2)
	if e.state(StateSource) != "error" {
		t.Errorf("source %q", e.state(StateSource))
	}

	e.clock.t = e.clock.t.Add(6 * time.Second)
	r3 := e.send("192.0.2.50:0", "/")
	if r3.callout == nil {
		t.Fatal("after error_ttl_s the lookup must be retried")
	}
}

func TestCacheHitAndExpiry(t *testing.T) {
	e := newEnv(t, "")
	r1 := e.send("203.0.113.7:0", "/")
	e.answer(r1, 200, fmt.Sprintf(bodyTor, "203.0.113.7"))
	e.wantReply(r1, 403)

	r2 := e.send("203.0.113.7:1234", "/other")
	if r2.callout != nil {
		t.Fatal("second request within the TTL made a callout")
	}
	e.wantReply(r2, 403)
	if e.state(StateSource) != "cache" {
		t.Errorf("source %q", e.state(StateSource))
	}

	// Another address in the same /24 is a different client.
	r3 := e.send("203.0.113.8:0", "/")
	if r3.callout == nil {
		t.Fatal("a different address must be looked up")
	}

	e.clock.t = e.clock.t.Add(61 * time.Second)
	r4 := e.send("203.0.113.7:0", "/")
	if r4.callout == nil {
		t.Fatal("after ttl_s the verdict must be looked up again")
	}
	// No shared-data key or value holds the address.
	e.wantNoRawIP([]*req{r1, r2, r3, r4}, "203.0.113.7", "203.0.113.8")
}

func TestListsAndBypassSkipTheLookup(t *testing.T) {
	e := newEnv(t, "")
	cases := []struct {
		name, src, path string
		status          uint32
		reason          string
	}{
		{"bypass exact", "203.0.113.7:0", "/healthz", 0, "bypass_path"},
		{"bypass exact with query", "203.0.113.7:0", "/healthz?full=1", 0, "bypass_path"},
		{"bypass prefix", "203.0.113.7:0", "/static/app.js", 0, "bypass_path"},
		{"allow list", "10.20.30.40:0", "/", 0, "allow_list"},
		{"deny list", "198.18.0.9:0", "/", 403, "deny_list"},
		{"deny list mapped", "[::ffff:198.18.0.9]:0", "/", 403, "deny_list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(tc.src, tc.path, [2]string{"x-forwarded-for", "203.0.113.7"})
			if r.callout != nil {
				t.Fatal("made a callout")
			}
			if tc.status == 0 {
				e.wantContinue(r)
			} else {
				e.wantReply(r, tc.status)
			}
			if e.state(StateReason) != tc.reason {
				t.Errorf("reason %q", e.state(StateReason))
			}
			if got := e.upstreamHeader(r, "x-forwarded-for"); tc.status == 0 && (len(got) != 1 || got[0] != "203.0.113.0/24") {
				t.Errorf("headers must be masked on every path, got %q", got)
			}
		})
	}
}

func TestUnresolvedClientTakesTheFailureAction(t *testing.T) {
	for _, tc := range []struct {
		name, onUnresolved string
		status             uint32
	}{{"fail open", "allow", 0}, {"fail closed", "block", 403}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, `"client_ip": {"source": "x_forwarded_for", "trusted_hops": 1, "on_unresolved": "`+tc.onUnresolved+`"}`)
			r := e.send("127.0.0.1:5555", "/", [2]string{"x-forwarded-for", "not-an-ip, 127.0.0.1"})
			if r.callout != nil {
				t.Fatal("no lookup may happen without a safely resolved client")
			}
			if tc.status == 0 {
				e.wantContinue(r)
			} else {
				e.wantReply(r, tc.status)
			}
			if e.state(StateClient) != unresolvedClient || e.state(StateReason) != "client_ip:malformed_header" {
				t.Errorf("client=%q reason=%q", e.state(StateClient), e.state(StateReason))
			}
			e.wantNoRawIP([]*req{r}, "not-an-ip")
		})
	}
}

func TestXFFHopsFromConfig(t *testing.T) {
	e := newEnv(t, `"client_ip": {"source": "x_forwarded_for", "trusted_hops": 1}`)
	r := e.send("127.0.0.1:5555", "/", [2]string{"x-forwarded-for", "203.0.113.7, 127.0.0.1"})
	if r.callout == nil || headerValue(r.callout.Headers, ":path") != "/v1/lookup?ip=203.0.113.7" {
		t.Fatalf("looked up the wrong client: %+v", r.callout)
	}
	if got := e.upstreamHeader(r, "x-forwarded-for"); len(got) != 1 || got[0] != "203.0.113.0/24, 127.0.0.0/24" {
		t.Errorf("upstream xff %q", got)
	}
}

func TestUpstreamHeaderActions(t *testing.T) {
	e := newEnv(t, `"privacy": {"upstream_headers": {"x-real-ip": "strip", "true-client-ip": "keep", "x-client-addr": "mask"}}`)
	r := e.send("10.1.1.1:0", "/",
		[2]string{"x-forwarded-for", "203.0.113.7, [2001:db8::7]:443"},
		[2]string{"x-forwarded-for", "198.51.100.23"},
		[2]string{"x-real-ip", "203.0.113.7"},
		[2]string{"true-client-ip", "203.0.113.9"},
		[2]string{"forwarded", `for=203.0.113.7;proto=https, for="[2001:db8::7]:80"`},
		[2]string{"cf-connecting-ip", "::ffff:203.0.113.7"},
		[2]string{"x-client-addr", "198.51.100.23:8080"},
	)
	e.wantContinue(r)
	check := func(name string, want ...string) {
		t.Helper()
		got := e.upstreamHeader(r, name)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("x-forwarded-for", "203.0.113.0/24, 2001:db8::/64, 198.51.100.0/24")
	check("x-real-ip")
	check("true-client-ip", "203.0.113.9")
	check("cf-connecting-ip", "203.0.113.0/24")
	check("x-client-addr", "198.51.100.0/24")
	fw := e.upstreamHeader(r, "forwarded")
	if len(fw) != 1 || strings.Contains(fw[0], "203.0.113.7") || !strings.Contains(fw[0], "203.0.113.0/24") || !strings.Contains(fw[0], "proto=https") {
		t.Errorf("forwarded = %q", fw)
	}
}

func TestClientGoneWhilePaused(t *testing.T) {
	e := newEnv(t, "")
	r := e.send("203.0.113.7:0", "/")
	if r.action != types.ActionPause {
		t.Fatal("not paused")
	}
	e.host.CompleteHttpContext(r.id) // the client went away: on_log, on_delete
	e.answer(r, 200, fmt.Sprintf(bodyTor, "203.0.113.7"))
	if lr := e.reply(r); lr != nil {
		t.Fatalf("answered a stream that was gone: %d", lr.StatusCode)
	}
	if got := e.host.GetCurrentHttpStreamAction(r.id); got != types.ActionPause {
		t.Fatalf("resumed a stream that was gone: %v", got)
	}
	// The next request from the client is served normally.
	r2 := e.send("203.0.113.7:0", "/")
	if r2.callout != nil {
		e.answer(r2, 200, fmt.Sprintf(bodyTor, "203.0.113.7"))
	}
	e.wantReply(r2, 403)
}

func TestPluginRefusesBadConfig(t *testing.T) {
	opt := proxytest.NewEmulatorOption().
		WithVMContext(NewVMContext()).
		WithPluginConfiguration([]byte(`{"mode": "enforced", "cache": {"ttl_s": -1}, "lists": {"allow_cidrs": ["10.0.0.0/33"]}, "provider": {"cluster": ""}}`))
	host, reset := proxytest.NewHostEmulator(opt)
	defer reset()
	if st := host.StartPlugin(); st != types.OnPluginStartStatusFailed {
		t.Fatal("a broken configuration must refuse the plugin start")
	}
	logs := strings.Join(host.GetCriticalLogs(), "\n")
	for _, want := range []string{"mode:", "cache.ttl_s:", "lists.allow_cidrs[0]:", "provider.cluster:"} {
		if !strings.Contains(logs, want) {
			t.Errorf("critical logs do not name %s:\n%s", want, logs)
		}
	}
}

func TestCustomPostProvider(t *testing.T) {
	e := newEnvRaw(t, `{"provider": {"preset": "custom", "cluster": "rep", "authority": "rep.example", "method": "POST",
		"path": "/check", "body": "{\"ip\":\"{ip}\"}", "fields": {"tor": "tor", "score": "risk"}}}`)
	r := e.send("[2001:db8::9]:0", "/")
	if r.callout == nil {
		t.Fatal("no callout")
	}
	if got := string(r.callout.Body); got != `{"ip":"2001:db8::9"}` {
		t.Errorf("body %q", got)
	}
	if headerValue(r.callout.Headers, ":method") != "POST" || headerValue(r.callout.Headers, "content-type") != "application/json" {
		t.Errorf("headers %q", r.callout.Headers)
	}
	e.answer(r, 200, `{"tor": "true", "risk": "12"}`)
	e.wantReply(r, 403)
}

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipveil/ipveil/anonymize"
	"github.com/ipveil/ipveil/e2e/host"
	"github.com/ipveil/ipveil/e2e/mockrep"
	"github.com/ipveil/ipveil/e2e/stack"
)

// The leak scanner: every scenario runs with client addresses of its own,
// and every byte the system emits is searched for every textual form of
// each of them. The only place a raw address may appear is the :path of the
// callout to the reputation API.

// leakForms returns the textual forms of a that must never be emitted, in
// lower case: dotted, ::ffff: (dotted and hex), compressed, expanded and
// uncompressed IPv6. Forms with a port or brackets contain these.
func leakForms(a netip.Addr) []string {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return []string{
			a.String(),
			fmt.Sprintf("::ffff:%x:%x", uint16(b[0])<<8|uint16(b[1]), uint16(b[2])<<8|uint16(b[3])),
			fmt.Sprintf("0:0:0:0:0:ffff:%x:%x", uint16(b[0])<<8|uint16(b[1]), uint16(b[2])<<8|uint16(b[3])),
		}
	}
	b := a.As16()
	var groups []string
	for i := 0; i < 16; i += 2 {
		groups = append(groups, fmt.Sprintf("%x", uint16(b[i])<<8|uint16(b[i+1])))
	}
	return []string{a.String(), strings.ToLower(a.StringExpanded()), strings.Join(groups, ":")}
}

// finding is one raw address found in one output.
type finding struct{ where, form, context string }

type scanner struct {
	forms map[string]netip.Addr
}

func newScanner(addrs []netip.Addr) *scanner {
	s := &scanner{forms: map[string]netip.Addr{}}
	for _, a := range addrs {
		for _, f := range leakForms(a) {
			s.forms[f] = a
		}
	}
	return s
}

// scan reports every form found in data; where names the output.
func (s *scanner) scan(where string, data string) []finding {
	low := strings.ToLower(data)
	var out []finding
	for f := range s.forms {
		for i := 0; ; {
			j := strings.Index(low[i:], f)
			if j < 0 {
				break
			}
			j += i
			// A longer address that merely starts with this one
			// (203.0.113.7 inside 203.0.113.77) is not this one.
			end := j + len(f)
			if end < len(low) && isAddrChar(low[end]) || j > 0 && isAddrChar(low[j-1]) && low[j-1] != ':' {
				i = end
				continue
			}
			lo, hi := max(0, j-40), min(len(data), end+40)
			out = append(out, finding{where, f, data[lo:hi]})
			i = end
		}
	}
	return out
}

func isAddrChar(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == '.' }

// outputs collects everything one stack emitted, by name.
type outputs struct {
	mu sync.Mutex
	m  map[string]*strings.Builder
}

func (o *outputs) add(where, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]*strings.Builder{}
	}
	if o.m[where] == nil {
		o.m[where] = &strings.Builder{}
	}
	o.m[where].WriteString(text)
	o.m[where].WriteByte('\n')
}

// client sends a request and records the response the client got (status,
// headers including Location, body); for allowed requests the body is the
// echo upstream's account of what reached the application.
func client(t *testing.T, s *stack.Stack, out *outputs, path string, hdr ...string) *http.Response {
	t.Helper()
	resp, body, err := s.Get(path, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d\n", path, resp.StatusCode)
	for k, vs := range resp.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString(body)
	if resp.StatusCode == 200 && strings.Contains(body, `"headers"`) {
		out.add("upstream request (as the echo upstream saw it)", body)
	} else {
		out.add("response to the client", b.String())
	}
	return resp
}

// collect gathers every output of s after its scenario ran.
func collect(t *testing.T, s *stack.Stack, out *outputs) {
	t.Helper()
	time.Sleep(500 * time.Millisecond) // a few ticks: the filter hands its counters to the host on each
	out.add("proxy and module log (trace level)", s.Log.String())
	out.add("access log", s.AccessLog.String())
	for _, p := range []string{"/stats", "/stats/prometheus"} {
		resp, err := http.Get(s.AdminURL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out.add("metrics "+p, string(b))
	}
	for _, c := range s.Callouts() {
		h, _ := json.Marshal(c.Header)
		out.add("callout headers and body (the :path alone may hold the address)", c.Method+" "+string(h)+" "+string(c.Body))
	}
	s.Proxy.Store().EachSharedData(func(vm, key string, value []byte) {
		out.add("shared data", vm+" "+key+" "+string(value))
	})
}

const leakFormat = `[%START_TIME%] "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%" %RESPONSE_CODE% client=%FILTER_STATE(wasm.ipveil.client:PLAIN)% verdict=%FILTER_STATE(wasm.ipveil.verdict:PLAIN)% reason=%FILTER_STATE(wasm.ipveil.reason:PLAIN)% source=%FILTER_STATE(wasm.ipveil.source:PLAIN)% pseudonym=%FILTER_STATE(wasm.ipveil.pseudonym:PLAIN)% sealed=%FILTER_STATE(wasm.ipveil.sealed:PLAIN)% b64=%FILTER_STATE(wasm.ipveil.client)% ua=%REQ(USER-AGENT)%` + "\n"

type leakRun struct {
	name     string
	config   []string // top-level sections
	privacy  string   // the inside of the privacy section
	env      map[string]string
	scenario func(t *testing.T, s *stack.Stack, out *outputs)
	addrs    []string
}

func fixture(body string, status, delay int) mockrep.Fixture {
	return mockrep.Fixture{Status: status, DelayMS: delay, Body: json.RawMessage(body)}
}

const (
	torBody    = `{"ip":"{ip}","privacy":{"Tor":true,"Proxy":false,"VPN":false,"Relay":false,"Hosting":true},"risk":{"score":95}}`
	mediumBody = `{"ip":"{ip}","privacy":{"Tor":false,"Proxy":false,"VPN":true,"Relay":false,"Hosting":false},"risk":{"score":65}}`
	cleanBody  = `{"ip":"{ip}","privacy":{"Tor":false,"Proxy":false,"VPN":false,"Relay":false,"Hosting":false},"risk":{"score":1}}`
)

func leakRuns(sealPub string) []leakRun {
	xff := func(ip string) []string { return []string{"X-Forwarded-For", ip} }
	return []leakRun{
		{
			name:   "default configuration, every verdict and failure",
			config: []string{`"lists": {"bypass_paths": ["/healthz"], "allow_cidrs": ["10.77.0.0/16"], "deny_cidrs": ["198.18.0.0/15"]}`, `"client_ip": {"source": "source_address"}`},
			addrs: []string{"192.0.2.77", "203.0.113.77", "2001:db8:77::1:77", "198.51.100.77", "192.0.2.177", "192.0.2.178",
				"203.0.113.79", "10.77.0.77", "198.18.0.77", "203.0.113.80", "203.0.113.81", "2001:db8:77::2:81", "198.51.100.82", "198.51.100.83", "203.0.113.84"},
			scenario: func(t *testing.T, s *stack.Stack, out *outputs) {
				s.Mock.SetFixture("203.0.113.77", fixture(torBody, 200, 0))
				s.Mock.SetFixture("2001:db8:77::1:77", fixture(torBody, 200, 0))
				s.Mock.SetFixture("198.51.100.77", fixture(mediumBody, 200, 0))
				s.Mock.SetFixture("192.0.2.177", fixture(cleanBody, 200, 2000)) // times out
				s.Mock.SetFixture("192.0.2.178", fixture(`{"error":"boom"}`, 500, 0))
				s.Mock.SetFixture("203.0.113.84", fixture(torBody, 200, 150))
				client(t, s, out, "/allow", xff("192.0.2.77")...)
				client(t, s, out, "/tor", xff("203.0.113.77")...)
				client(t, s, out, "/tor6", xff("2001:db8:77::1:77")...)
				client(t, s, out, "/challenge", xff("198.51.100.77")...)
				client(t, s, out, "/timeout", xff("192.0.2.177")...)
				client(t, s, out, "/err500", xff("192.0.2.178")...)
				client(t, s, out, "/healthz", xff("203.0.113.79")...)
				client(t, s, out, "/allowlist", xff("10.77.0.77")...)
				client(t, s, out, "/denylist", xff("198.18.0.77")...)
				client(t, s, out, "/mapped", xff("::ffff:203.0.113.80")...)
				// Client-address headers of every kind, with ports and brackets.
				client(t, s, out, "/headers", "X-Forwarded-For", "203.0.113.81:4711, 192.0.2.77",
					"Forwarded", `for="[2001:db8:77::2:81]:4711";proto=https, for=198.51.100.82`,
					"X-Real-IP", "198.51.100.83", "True-Client-IP", "[2001:db8:77::2:81]:80",
					"CF-Connecting-IP", "::ffff:198.51.100.82",
					"X-Client-IP", "198.51.100.83", "X-Cluster-Client-IP", "203.0.113.81",
					"Fastly-Client-IP", "2001:db8:77::2:81", "X-Original-Forwarded-For", "203.0.113.81, 198.51.100.82",
					"X-Forwarded", "for=198.51.100.83")
				// 50 concurrent requests from one new address.
				var wg sync.WaitGroup
				for i := 0; i < 50; i++ {
					wg.Add(1)
					go func() { defer wg.Done(); client(t, s, out, "/burst", xff("203.0.113.84")...) }()
				}
				wg.Wait()
			},
		},
		{
			name:    "challenge redirect, dry run, pseudonyms and sealed audit values",
			config:  []string{`"challenge": {"kind": "redirect", "url": "/.ipveil/challenge?return={path}"}`},
			privacy: `"pseudonym": {}, "seal": {"key_id": "audit-1", "public_key": "` + sealPub + `", "when": "all"}`,
			env:     map[string]string{"IPVEIL_PSEUDONYM_KEYS": "k1:2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a"},
			addrs:   []string{"198.51.100.90", "203.0.113.91", "2001:db8:77::3:92"},
			scenario: func(t *testing.T, s *stack.Stack, out *outputs) {
				s.Mock.SetFixture("198.51.100.90", fixture(mediumBody, 200, 0))
				s.Mock.SetFixture("203.0.113.91", fixture(torBody, 200, 0))
				client(t, s, out, "/cart?item=1", xff("198.51.100.90")...)
				client(t, s, out, "/tor", xff("203.0.113.91")...)
				client(t, s, out, "/v6", xff("2001:db8:77::3:92")...)
			},
		},
		{
			name:   "dry run with a verdict header, client from X-Forwarded-For, breaker",
			config: []string{`"mode": "dry_run"`, `"verdict_header": "x-ipveil-verdict"`, `"client_ip": {"source": "x_forwarded_for", "trusted_hops": 1}`, `"breaker": {"failures": 1, "cooldown_s": 60}`},
			addrs:  []string{"203.0.113.95", "198.51.100.96", "192.0.2.197", "192.0.2.198"},
			scenario: func(t *testing.T, s *stack.Stack, out *outputs) {
				s.Mock.SetFixture("203.0.113.95", fixture(torBody, 200, 0))
				s.Mock.SetFixture("192.0.2.197", fixture(`{}`, 503, 0))
				client(t, s, out, "/dry", xff("203.0.113.95")...)
				client(t, s, out, "/unresolved", xff("bad-198.51.100.96")...) // malformed: never echoed
				client(t, s, out, "/fail", xff("192.0.2.197")...)             // opens the breaker
				client(t, s, out, "/open", xff("192.0.2.198")...)             // answered without a lookup
			},
		},
	}
}

// runLeakScan runs every leak scenario and returns the findings and which
// outputs were scanned.
func runLeakScan(t *testing.T, extraPrivacy string) ([]finding, []string) {
	pub, _, err := anonymize.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	var all []finding
	scanned := map[string]bool{}
	for _, run := range leakRuns(pub) {
		privacy := run.privacy
		if extraPrivacy != "" && privacy != "" {
			privacy += ", " + extraPrivacy
		} else if extraPrivacy != "" {
			privacy = extraPrivacy
		}
		sections := run.config
		if privacy != "" {
			sections = append(sections[:len(sections):len(sections)], `"privacy": {`+privacy+`}`)
		}
		s := stack.Start(t, stack.Options{Config: config(sections...), Env: run.env, AccessLogFormat: leakFormat, LogLevel: host.LogTrace})
		out := &outputs{}
		run.scenario(t, s, out)
		collect(t, s, out)
		var addrs []netip.Addr
		for _, a := range run.addrs {
			addrs = append(addrs, netip.MustParseAddr(a))
		}
		sc := newScanner(addrs)
		for where, b := range out.m {
			scanned[where] = true
			for _, f := range sc.scan(where, b.String()) {
				f.where = run.name + ": " + f.where
				all = append(all, f)
			}
		}
		// The callouts did carry the addresses, in their :path only.
		for _, c := range s.Callouts() {
			if !strings.Contains(c.Path, "ip=") {
				t.Errorf("callout without the address in its path: %s", c.Path)
			}
		}
		s.Close()
	}
	var names []string
	for n := range scanned {
		names = append(names, n)
	}
	sort.Strings(names)
	return all, names
}

func TestNoRawAddressLeavesTheSystem(t *testing.T) {
	findings, scanned := runLeakScan(t, "")
	t.Logf("scanned outputs: %s", strings.Join(scanned, "; "))
	for _, f := range findings {
		t.Errorf("raw address %q in %s: …%s…", f.form, f.where, f.context)
	}
	for _, want := range []string{"access log", "proxy and module log (trace level)", "response to the client",
		"upstream request (as the echo upstream saw it)", "metrics /stats", "metrics /stats/prometheus", "shared data",
		"callout headers and body (the :path alone may hold the address)"} {
		found := false
		for _, n := range scanned {
			found = found || n == want
		}
		if !found {
			t.Errorf("the scan never saw output %q", want)
		}
	}
}

// The scanner itself is tested: a configuration that keeps the client's
// X-Forwarded-For on its way upstream leaks, and the scan must say so.
func TestLeakScannerCatchesAPlantedLeak(t *testing.T) {
	findings, _ := runLeakScan(t, `"upstream_headers": {"x-forwarded-for": "keep", "x-real-ip": "keep"}`)
	upstream := 0
	for _, f := range findings {
		if strings.Contains(f.where, "upstream request") {
			upstream++
		}
	}
	if upstream == 0 {
		t.Fatalf("the planted leak went unnoticed; findings: %v", findings)
	}
	t.Logf("the planted leak was found %d times in what the upstream saw", upstream)
}

func TestLeakFormsAndScanner(t *testing.T) {
	sc := newScanner([]netip.Addr{netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7")})
	for _, leaky := range []string{"client 203.0.113.7", "x=203.0.113.7:80", "::ffff:203.0.113.7", "::FFFF:CB00:7107",
		"[2001:db8::7]:443", "2001:0DB8:0000:0000:0000:0000:0000:0007", "2001:db8:0:0:0:0:0:7"} {
		if len(sc.scan("t", leaky)) == 0 {
			t.Errorf("missed %q", leaky)
		}
	}
	for _, clean := range []string{"203.0.113.0/24", "203.0.113.77", "1203.0.113.7", "2001:db8::/64", "2001:db8::77", "2001:db8::7a"} {
		if f := sc.scan("t", clean); len(f) != 0 {
			t.Errorf("false alarm on %q: %v", clean, f)
		}
	}
}

package mockrep

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func demoFixtures(t *testing.T) map[string]Fixture {
	t.Helper()
	fx, err := LoadFixtures("../testdata/fixtures.json")
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

func get(t *testing.T, h http.Handler, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestDemoFixtures(t *testing.T) {
	s := New(demoFixtures(t), Options{})
	type answer struct {
		IP      string          `json:"ip"`
		Privacy map[string]bool `json:"privacy"`
		Risk    struct {
			Score int `json:"score"`
		} `json:"risk"`
	}
	tests := []struct {
		ip     string
		status int
		flag   string // privacy flag that must be true, "" for none
		score  int
	}{
		{"203.0.113.7", 200, "Tor", 95},
		{"198.51.100.23", 200, "Proxy", 90},
		{"192.0.2.44", 200, "VPN", 65},
		{"192.0.2.10", 200, "", 3},
		{"2001:db8::7", 200, "Tor", 97},
		{"198.51.100.200", 200, "", 0}, // the "*" default
	}
	for _, tc := range tests {
		rec := get(t, s, "/v1/lookup?ip="+tc.ip)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.ip, rec.Code, tc.status)
			continue
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", tc.ip, ct)
		}
		var a answer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("%s: %v in %s", tc.ip, err, rec.Body)
		}
		if a.IP != tc.ip || a.Risk.Score != tc.score {
			t.Errorf("%s: answer %+v", tc.ip, a)
		}
		for name, v := range a.Privacy {
			if v != (name == tc.flag || (name == "Hosting" && (tc.flag == "Tor" || tc.flag == "Proxy"))) {
				t.Errorf("%s: privacy.%s = %v", tc.ip, name, v)
			}
		}
	}
	if rec := get(t, s, "/v1/lookup?ip=192.0.2.50"); rec.Code != 500 || !strings.Contains(rec.Body.String(), "error") {
		t.Errorf("192.0.2.50: %d %s", rec.Code, rec.Body)
	}
	if f := demoFixtures(t)["192.0.2.99"]; f.DelayMS != 5000 {
		t.Errorf("192.0.2.99 delay_ms = %d, want 5000 (longer than the 300 ms callout timeout)", f.DelayMS)
	}
}

func TestIPFromQueryOrPath(t *testing.T) {
	s := New(map[string]Fixture{
		"192.0.2.10":  {Body: json.RawMessage(`{"who":"{ip}"}`)},
		"2001:db8::7": {Body: json.RawMessage(`{"who":"{ip}"}`)},
	}, Options{})
	for target, want := range map[string]string{
		"/v1/lookup?ip=192.0.2.10":               `{"who":"192.0.2.10"}`,
		"/192.0.2.10":                            `{"who":"192.0.2.10"}`,
		"/api/json/ip/KEY/192.0.2.10":            `{"who":"192.0.2.10"}`,
		"/192.0.2.10/privacy?ip=2001:db8::7":     `{"who":"2001:db8::7"}`,
		"/v1/lookup?ip=2001:0db8:0:0:0:0:0:0007": `{"who":"2001:db8::7"}`,
		"/lookup/2001:db8::7":                    `{"who":"2001:db8::7"}`,
	} {
		if rec := get(t, s, target); rec.Code != 200 || rec.Body.String() != want {
			t.Errorf("%s: %d %q, want %q", target, rec.Code, rec.Body, want)
		}
	}
	if got := s.Calls("2001:db8::7"); got != 3 {
		t.Errorf("Calls(2001:db8::7) = %d, want 3 (canonical forms count together)", got)
	}
	if got := s.Calls("192.0.2.10"); got != 3 {
		t.Errorf("Calls(192.0.2.10) = %d, want 3", got)
	}
	if rec := get(t, s, "/"); rec.Code != 400 || !strings.Contains(rec.Body.String(), "pass ?ip=") {
		t.Errorf("no IP: %d %s", rec.Code, rec.Body)
	}
	// No fixture and no default.
	if rec := get(t, s, "/v1/lookup?ip=192.0.2.11"); rec.Code != 404 || !strings.Contains(rec.Body.String(), "no fixture for this IP") {
		t.Errorf("unknown IP: %d %s", rec.Code, rec.Body)
	}
	// A mapped address is a different lookup from its IPv4 form.
	if rec := get(t, s, "/v1/lookup?ip=::ffff:192.0.2.10"); rec.Code != 404 {
		t.Errorf("mapped address: %d %s", rec.Code, rec.Body)
	}
}

func TestBodiesStatusesHeaders(t *testing.T) {
	s := New(nil, Options{})
	s.SetFixture("192.0.2.1", Fixture{Status: 429, Body: json.RawMessage(`"slow down {ip}"`), Headers: map[string]string{"Retry-After": "30"}})
	s.SetFixture("192.0.2.2", Fixture{Body: json.RawMessage(`"{not json"`)})
	s.SetFixture("192.0.2.3", Fixture{Status: 204})
	s.SetFixture(Default, Fixture{Body: json.RawMessage(`[1,2]`)})

	rec := get(t, s, "/?ip=192.0.2.1")
	if rec.Code != 429 || rec.Body.String() != "slow down 192.0.2.1" || rec.Header().Get("Retry-After") != "30" ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("429 fixture: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if rec := get(t, s, "/?ip=192.0.2.2"); rec.Code != 200 || rec.Body.String() != "{not json" {
		t.Errorf("malformed body: %d %q", rec.Code, rec.Body)
	}
	if rec := get(t, s, "/?ip=192.0.2.3"); rec.Code != 204 || rec.Body.Len() != 0 {
		t.Errorf("empty body: %d %q", rec.Code, rec.Body)
	}
	if rec := get(t, s, "/?ip=192.0.2.4"); rec.Code != 200 || rec.Body.String() != "[1,2]" {
		t.Errorf("default: %d %q", rec.Code, rec.Body)
	}
	// Replacing a fixture takes effect at once.
	s.SetFixture("192.0.2.4", Fixture{Status: 503})
	if rec := get(t, s, "/?ip=192.0.2.4"); rec.Code != 503 {
		t.Errorf("replaced fixture: %d", rec.Code)
	}
}

func TestAPIKey(t *testing.T) {
	s := New(map[string]Fixture{Default: {Body: json.RawMessage(`{}`)}}, Options{APIKeyHeader: "x-api-key", APIKey: "demo-key"})
	if rec := get(t, s, "/?ip=192.0.2.1"); rec.Code != 401 || !strings.Contains(rec.Body.String(), "x-api-key") {
		t.Errorf("no key: %d %s", rec.Code, rec.Body)
	}
	if rec := get(t, s, "/?ip=192.0.2.1", "X-Api-Key", "wrong"); rec.Code != 401 {
		t.Errorf("wrong key: %d", rec.Code)
	}
	if rec := get(t, s, "/?ip=192.0.2.1", "X-Api-Key", "demo-key"); rec.Code != 200 {
		t.Errorf("right key: %d %s", rec.Code, rec.Body)
	}
	if got := s.Calls("192.0.2.1"); got != 3 {
		t.Errorf("Calls = %d, want 3 (refused lookups count)", got)
	}
	if rec := get(t, s, "/_calls"); rec.Code != 200 {
		t.Errorf("/_calls needs no key: %d", rec.Code)
	}
}

func TestControlEndpoints(t *testing.T) {
	s := New(map[string]Fixture{Default: {}}, Options{})
	get(t, s, "/?ip=192.0.2.1")
	get(t, s, "/?ip=192.0.2.1")
	get(t, s, "/?ip=2001:db8::1")

	rec := get(t, s, "/_calls")
	var calls map[string]int
	if err := json.Unmarshal(rec.Body.Bytes(), &calls); err != nil || rec.Code != 200 {
		t.Fatalf("/_calls: %d %s %v", rec.Code, rec.Body, err)
	}
	if len(calls) != 2 || calls["192.0.2.1"] != 2 || calls["2001:db8::1"] != 1 {
		t.Errorf("/_calls = %v", calls)
	}
	if rec := get(t, s, "/_reset"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /_reset: %d", rec.Code)
	}
	req := httptest.NewRequest(http.MethodPost, "/_calls", nil)
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /_calls: %d", rec.Code)
	}
	req = httptest.NewRequest(http.MethodPost, "/_reset", nil)
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent || s.Calls("192.0.2.1") != 0 || len(s.AllCalls()) != 0 {
		t.Errorf("after reset: %d %v", rec.Code, s.AllCalls())
	}
}

func TestDelayAndCallerGivingUp(t *testing.T) {
	s := New(map[string]Fixture{
		"192.0.2.98": {DelayMS: 30, Body: json.RawMessage(`{"late":true}`)},
		"192.0.2.99": {DelayMS: 5000, Body: json.RawMessage(`{}`)},
	}, Options{})
	srv := httptest.NewServer(s)
	defer srv.Close()

	start := time.Now()
	resp, err := http.Get(srv.URL + "/?ip=192.0.2.98")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"late":true}` || time.Since(start) < 30*time.Millisecond {
		t.Errorf("delayed answer %q after %v", body, time.Since(start))
	}

	// A caller with a 100 ms timeout gives up; the server stops waiting too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/?ip=192.0.2.99", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the 5 s fixture answered before the caller's timeout")
	}
	if got := s.Calls("192.0.2.99"); got != 1 {
		t.Errorf("Calls = %d, want 1", got)
	}
}

func TestLoggingIsOffByDefault(t *testing.T) {
	var buf bytes.Buffer
	quiet := New(map[string]Fixture{Default: {}}, Options{})
	get(t, quiet, "/?ip=192.0.2.7")
	loud := New(map[string]Fixture{Default: {}}, Options{Log: &buf})
	get(t, loud, "/?ip=192.0.2.7")
	if !strings.Contains(buf.String(), "mockrep: GET /?ip=192.0.2.7 -> 200 192.0.2.7") {
		t.Errorf("log = %q", buf.String())
	}
}

func TestParseFixturesErrors(t *testing.T) {
	tests := []struct{ doc, want string }{
		{`[]`, "must be a JSON object from IP address"},
		{`{"192.0.2.x": {}}`, `key "192.0.2.x" is neither an IP address nor "*"`},
		{`{"192.0.2.1": {"stauts": 200}}`, `"192.0.2.1": json: unknown field "stauts" (fields: status, body, delay_ms, headers)`},
		{`{"192.0.2.1": {"status": 99}}`, `"192.0.2.1": status 99 is not an HTTP status`},
		{`{"*": {"delay_ms": -1}}`, `"*": delay_ms -1 is negative`},
		{`{"*": {"status": "200"}}`, `"*": json: cannot unmarshal string`},
	}
	for _, tc := range tests {
		_, err := ParseFixtures([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFixtures(%s) = %v, want %q", tc.doc, err, tc.want)
		}
	}
	if _, err := LoadFixtures(filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.Contains(err.Error(), "read fixtures") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"x": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFixtures(bad); err == nil || !strings.HasPrefix(err.Error(), bad+": ") {
		t.Errorf("bad file: %v", err)
	}
}

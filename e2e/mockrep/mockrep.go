// Package mockrep is a stand-in IP-reputation API for ipveil's local stack
// and tests. It answers lookups from fixtures (per IP, plus a "*" default),
// can delay or fail on purpose, and counts the lookups it gets per IP, so a
// test can tell whether the filter called out or answered from its cache.
//
// A lookup names its IP in the "ip" query parameter (GET /v1/lookup?ip=…, as
// IPASIS does) or, failing that, as the last path segment (GET /…/203.0.113.7,
// as ipinfo-style APIs do). Two control endpoints serve tests:
//
//	GET  /_calls   {"<ip>": n, ...}: lookups per IP since start or reset
//	POST /_reset   zero the counts
//
// mockrep plays the provider, which is the one party that legitimately sees a
// client IP. It still writes nothing unless Options.Log is set, so the stack
// leaves no client IPs behind by default.
package mockrep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Default is the fixture key for IPs without a fixture of their own.
const Default = "*"

// Fixture is the canned answer for one IP.
type Fixture struct {
	// Status is the HTTP status to answer with; 0 means 200.
	Status int `json:"status,omitempty"`
	// Body is the answer's body. A JSON string is sent as its text (to
	// send malformed or non-JSON answers); any other JSON value is sent as
	// compact JSON. Every "{ip}" in it is replaced by the IP looked up.
	Body json.RawMessage `json:"body,omitempty"`
	// DelayMS delays the answer by this many milliseconds, to make callouts
	// time out. A caller that gives up ends the wait.
	DelayMS int `json:"delay_ms,omitempty"`
	// Headers are extra response headers, e.g. {"retry-after": "30"}.
	Headers map[string]string `json:"headers,omitempty"`
}

// Options configures a Server.
type Options struct {
	// APIKeyHeader, when set, is the request header that must carry APIKey;
	// lookups without it get 401. Control endpoints need no key.
	APIKeyHeader string
	// APIKey is the key APIKeyHeader must hold.
	APIKey string
	// Log, when not nil, receives one line per request, including the IP
	// looked up. Leave it nil unless you are debugging the stack.
	Log io.Writer
}

// Server is the mock API. It is an http.Handler and safe for concurrent use.
type Server struct {
	opts Options

	mu       sync.Mutex
	fixtures map[string]Fixture
	calls    map[string]int
}

// New returns a Server answering from fixtures, keyed by IP address or
// Default. Keys are matched in canonical form, so "2001:0db8::7" finds the
// fixture for "2001:db8::7"; an IPv4-mapped IPv6 address is not the IPv4
// address (a caller sending one gets the default answer).
func New(fixtures map[string]Fixture, opts Options) *Server {
	s := &Server{opts: opts, fixtures: map[string]Fixture{}, calls: map[string]int{}}
	for k, f := range fixtures {
		s.fixtures[canonical(k)] = f
	}
	return s
}

// SetFixture sets (or replaces) the answer for ip, which may be Default.
func (s *Server) SetFixture(ip string, f Fixture) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fixtures[canonical(ip)] = f
}

// Calls returns how many lookups for ip the server got since it started or
// was last reset. Lookups refused for a wrong API key count too: the caller
// did call out.
func (s *Server) Calls(ip string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[canonical(ip)]
}

// AllCalls returns a copy of the lookup counts per IP.
func (s *Server) AllCalls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Reset zeroes every lookup count.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
}

// ServeHTTP answers a lookup or a control request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_calls":
		if r.Method != http.MethodGet {
			s.plain(w, r, http.StatusMethodNotAllowed, "use GET /_calls")
			return
		}
		s.json(w, r, http.StatusOK, s.AllCalls())
		return
	case "/_reset":
		if r.Method != http.MethodPost {
			s.plain(w, r, http.StatusMethodNotAllowed, "use POST /_reset")
			return
		}
		s.Reset()
		s.logf(r, http.StatusNoContent, "")
		w.WriteHeader(http.StatusNoContent)
		return
	}

	ip := lookupIP(r)
	if ip == "" {
		s.json(w, r, http.StatusBadRequest, map[string]string{"error": "no IP in the request: pass ?ip=ADDRESS or end the path with the address"})
		return
	}
	s.mu.Lock()
	s.calls[ip]++
	f, ok := s.fixtures[ip]
	if !ok {
		f, ok = s.fixtures[Default]
	}
	s.mu.Unlock()

	if h := s.opts.APIKeyHeader; h != "" && r.Header.Get(h) != s.opts.APIKey {
		s.json(w, r, http.StatusUnauthorized, map[string]string{"error": "missing or wrong API key in " + strings.ToLower(h)})
		return
	}
	if !ok {
		s.json(w, r, http.StatusNotFound, map[string]string{"error": `no fixture for this IP and no "*" default`})
		return
	}
	if f.DelayMS > 0 {
		t := time.NewTimer(time.Duration(f.DelayMS) * time.Millisecond)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.logf(r, 0, ip+" (caller gave up)")
			return
		}
	}
	body, contentType := renderBody(f.Body, ip)
	for k, v := range f.Headers {
		w.Header().Set(k, v)
	}
	if contentType != "" && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", contentType)
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	s.logf(r, status, ip)
}

// lookupIP returns the IP a lookup asks about, in canonical form.
func lookupIP(r *http.Request) string {
	if ip := r.URL.Query().Get("ip"); ip != "" {
		return canonical(ip)
	}
	last := path.Base(r.URL.Path)
	if last == "/" || last == "." {
		return ""
	}
	return canonical(last)
}

// canonical returns an IP's canonical text form, or s when it is not an IP.
func canonical(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return s
}

// renderBody turns a fixture body into bytes and a content type.
func renderBody(raw json.RawMessage, ip string) ([]byte, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, ""
	}
	escaped, _ := json.Marshal(ip)
	inJSON := string(escaped[1 : len(escaped)-1])
	if raw[0] == '"' {
		var text string
		if err := json.Unmarshal(raw, &text); err == nil {
			return []byte(strings.ReplaceAll(text, "{ip}", inJSON)), "text/plain; charset=utf-8"
		}
	}
	var compact bytes.Buffer
	if json.Compact(&compact, raw) == nil {
		raw = compact.Bytes()
	}
	return bytes.ReplaceAll(raw, []byte("{ip}"), []byte(inJSON)), "application/json"
}

func (s *Server) json(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	s.logf(r, status, "")
}

func (s *Server) plain(w http.ResponseWriter, r *http.Request, status int, msg string) {
	http.Error(w, msg, status)
	s.logf(r, status, "")
}

func (s *Server) logf(r *http.Request, status int, note string) {
	if s.opts.Log == nil {
		return
	}
	line := fmt.Sprintf("mockrep: %s %s -> %d", r.Method, r.URL.RequestURI(), status)
	if note != "" {
		line += " " + note
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintln(s.opts.Log, line)
}

// LoadFixtures reads a fixture file: a JSON object from IP address (or "*")
// to Fixture, e.g.
//
//	{"203.0.113.7": {"status": 200, "body": {"privacy": {"Tor": true}}},
//	 "192.0.2.99":  {"delay_ms": 5000, "body": {}},
//	 "*":           {"body": {"privacy": {"Tor": false}}}}
//
// Unknown fields, keys that are not IP addresses, statuses outside 100–599
// and negative delays are errors that name the key.
func LoadFixtures(path string) (map[string]Fixture, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read fixtures: %w", err)
	}
	fixtures, err := ParseFixtures(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return fixtures, nil
}

// ParseFixtures is LoadFixtures for a document already in memory.
func ParseFixtures(data []byte) (map[string]Fixture, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("fixtures must be a JSON object from IP address (or \"*\") to fixture: %w", err)
	}
	out := make(map[string]Fixture, len(raw))
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != Default {
			if _, err := netip.ParseAddr(k); err != nil {
				return nil, fmt.Errorf("key %q is neither an IP address nor %q", k, Default)
			}
		}
		dec := json.NewDecoder(bytes.NewReader(raw[k]))
		dec.DisallowUnknownFields()
		var f Fixture
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("%q: %v (fields: status, body, delay_ms, headers)", k, err)
		}
		if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
			return nil, fmt.Errorf("%q: status %d is not an HTTP status (100-599, or leave it out for 200)", k, f.Status)
		}
		if f.DelayMS < 0 {
			return nil, fmt.Errorf("%q: delay_ms %d is negative", k, f.DelayMS)
		}
		out[k] = f
	}
	return out, nil
}

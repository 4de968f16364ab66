package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ipveil/ipveil/challenge"
	"github.com/ipveil/ipveil/e2e/echo"
	"github.com/ipveil/ipveil/e2e/stack"
)

var (
	pageToken      = regexp.MustCompile(`name="token" value="([A-Za-z0-9_.-]+)"`)
	pageDifficulty = regexp.MustCompile(`data-difficulty="(\d+)"`)
)

// solvePage reads the puzzle from a challenge page and solves it in Go with
// the documented algorithm: the smallest decimal nonce for which
// SHA-256(token ":" nonce) has the page's number of leading zero bits.
func solvePage(t *testing.T, page string) (token, nonce string) {
	t.Helper()
	m := pageToken.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no puzzle in the page:\n%s", page)
	}
	d := 16
	if dm := pageDifficulty.FindStringSubmatch(page); dm != nil {
		d, _ = strconv.Atoi(dm[1])
	}
	return m[1], challenge.Solve(m[1], d)
}

// postForm posts a verify form through the proxy as a browser would.
func postForm(t *testing.T, s *stack.Stack, path string, form url.Values, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func passCookie(t *testing.T, resp *http.Response) string {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == challenge.DefaultCookieName {
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("pass cookie attributes: %+v", c)
			}
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no pass cookie in %v", resp.Header)
	return ""
}

// Challenge → solve (in Go) → pass → allowed, on the shipped envoy.yaml.
func TestChallengeSolvedInGo(t *testing.T) {
	s := stack.Start(t, stack.Options{Config: "", LogLevel: 0})
	resp, page, err := s.Get("/account?tab=2", "X-Forwarded-For", "192.0.2.44")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 429 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("challenge: %d %v", resp.StatusCode, resp.Header)
	}
	token, nonce := solvePage(t, page)
	v := postForm(t, s, "/.ipveil/verify", url.Values{"token": {token}, "nonce": {nonce}}, "X-Forwarded-For", "192.0.2.44")
	if v.StatusCode != 303 || v.Header.Get("Location") != "/account?tab=2" {
		t.Fatalf("verify: %d %v", v.StatusCode, v.Header)
	}
	cookie := passCookie(t, v)

	resp, body, err := s.Get("/account?tab=2", "X-Forwarded-For", "192.0.2.44", "Cookie", cookie+"; theme=dark")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("with the pass: %v %v", resp, err)
	}
	er, err := echo.Decode(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := er.Values("Cookie"); len(got) != 1 || got[0] != "theme=dark" {
		t.Errorf("the upstream got cookies %q: the pass must not reach it", got)
	}
	if line := accessLine(t, s, "/account?tab=2"); !strings.Contains(line, "reason=") {
		t.Errorf("access log %q", line)
	}
	// The verify request never reached the application.
	for _, l := range s.AccessLog.Lines() {
		if strings.Contains(l, "/.ipveil/verify") && !strings.Contains(l, "\" 303 ") {
			t.Errorf("verify access-log line %q", l)
		}
	}
	// Forged and expired-looking passes are refused: the challenge again.
	for _, bad := range []string{"ipveil_pass=AAAA.BBBB", cookie[:len(cookie)-3] + "AAA"} {
		resp, _, _ := s.Get("/account", "X-Forwarded-For", "192.0.2.44", "Cookie", bad)
		if resp.StatusCode != 429 {
			t.Errorf("forged pass %q let through: %d", bad, resp.StatusCode)
		}
	}
	// A pass never overrides a block.
	resp, _, _ = s.Get("/", "X-Forwarded-For", "203.0.113.7", "Cookie", cookie)
	if resp.StatusCode != 403 {
		t.Errorf("block with a pass: %d", resp.StatusCode)
	}
}

// A pass issued by one worker is accepted by the other: it is verified with
// the shared key, not remembered by anyone.
func TestPassWorksOnEveryWorker(t *testing.T) {
	s := stack.Start(t, stack.Options{Config: config(`"challenge": {"kind": "pow", "difficulty": 8}`, `"log": {"decisions": "all"}`), Workers: 2})
	_, page, _ := s.Get("/w", "X-Forwarded-For", "192.0.2.44")
	if !strings.Contains(page, `method="get"`) {
		t.Fatalf("the default page answers with GET:\n%s", page)
	}
	token, nonce := solvePage(t, page)
	// The default page sends the answer in the query string.
	v, _, err := s.Get("/.ipveil/verify?"+url.Values{"token": {token}, "nonce": {nonce}}.Encode(), "X-Forwarded-For", "192.0.2.44")
	if err != nil || v.StatusCode != 303 || v.Header.Get("Location") != "/w" {
		t.Fatalf("verify by GET: %v %v", v, err)
	}
	cookie := passCookie(t, v)
	for i := 0; i < 8; i++ {
		resp, _, _ := s.Get(fmt.Sprintf("/w/%d", i), "X-Forwarded-For", "192.0.2.44", "Cookie", cookie)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d with the pass: %d", i, resp.StatusCode)
		}
	}
	logs := s.Log.String()
	for _, w := range []string{"[worker 0]", "[worker 1]"} {
		found := false
		for _, l := range strings.Split(logs, "\n") {
			found = found || strings.Contains(l, w) && strings.Contains(l, `"reason":"challenge_passed"`)
		}
		if !found {
			t.Errorf("no request with the pass was served by %s", w)
		}
	}
}

// The same flow with a CAPTCHA, against a mock siteverify.
func TestCaptchaWithMockSiteverify(t *testing.T) {
	var mu sync.Mutex
	var seen []url.Values
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		seen = append(seen, r.PostForm)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		ok := r.PostForm.Get("secret") == "turnstile-secret" && r.PostForm.Get("response") == "good-token"
		json.NewEncoder(w).Encode(map[string]any{"success": ok, "hostname": strings.Split(r.Host, ":")[0], "error-codes": []string{}})
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	s := stack.Start(t, stack.Options{
		Config:   config(`"challenge": {"kind": "turnstile", "captcha": {"site_key": "1x00000000000000000000AA", "secret_env": "TURNSTILE_SECRET", "cluster": "turnstile", "authority": "127.0.0.1"}, "verify_method": "post"}`),
		Env:      map[string]string{"TURNSTILE_SECRET": "turnstile-secret"},
		Clusters: map[string]string{"turnstile": l.Addr().String()},
	})
	resp, page, _ := s.Get("/c", "X-Forwarded-For", "192.0.2.44")
	if resp.StatusCode != 429 || !strings.Contains(page, "1x00000000000000000000AA") {
		t.Fatalf("captcha page: %d\n%s", resp.StatusCode, page)
	}
	ticket := pageToken.FindStringSubmatch(page)[1]
	bad := postForm(t, s, "/.ipveil/verify", url.Values{"token": {ticket}, "cf-turnstile-response": {"bad-token"}}, "X-Forwarded-For", "192.0.2.44")
	if bad.StatusCode != 403 {
		t.Errorf("a failed CAPTCHA: %d", bad.StatusCode)
	}
	_, page, _ = s.Get("/c", "X-Forwarded-For", "192.0.2.44")
	ticket = pageToken.FindStringSubmatch(page)[1]
	good := postForm(t, s, "/.ipveil/verify", url.Values{"token": {ticket}, "cf-turnstile-response": {"good-token"}}, "X-Forwarded-For", "192.0.2.44")
	if good.StatusCode != 303 {
		t.Fatalf("a solved CAPTCHA: %d %v", good.StatusCode, good.Header)
	}
	cookie := passCookie(t, good)
	if resp, _, _ := s.Get("/c", "X-Forwarded-For", "192.0.2.44", "Cookie", cookie); resp.StatusCode != 200 {
		t.Errorf("with the pass: %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, f := range seen {
		if f.Has("remoteip") || strings.Contains(f.Encode(), "192.0.2.44") {
			t.Errorf("the CAPTCHA provider was given the client address: %v", f)
		}
	}
}

func TestVerifyPathBadInput(t *testing.T) {
	s := stack.Start(t, stack.Options{})
	cases := []struct {
		name   string
		method string
		body   string
		want   int
	}{
		{"PUT", "PUT", "", 405},
		{"GET where the page posts", "GET", "", 405},
		{"no body", "POST", "", 400},
		{"missing nonce", "POST", "token=abc", 400},
		{"oversized", "POST", "token=" + strings.Repeat("a", 40000), 413},
		{"forged token", "POST", "token=AAAA.BBBB&nonce=1", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.URL+"/.ipveil/verify", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", "192.0.2.44")
			resp, err := s.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	// None of them reached the application: the upstream would answer 200.
	for _, l := range s.AccessLog.Lines() {
		if strings.Contains(l, "/.ipveil/verify") && strings.Contains(l, "\" 200 ") {
			t.Errorf("a verify request reached the upstream: %s", l)
		}
	}
}

package echo

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// startServer runs a Server on a loopback port and returns its address.
func startServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return l.Addr().String()
}

// roundTrip writes raw bytes on one connection and reads one response per
// method given (the method tells the reader whether a body follows).
func roundTrip(t *testing.T, addr, raw string, methods ...string) []*http.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for i, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		out = append(out, resp)
	}
	return out
}

func decode(t *testing.T, resp *http.Response) *Request {
	t.Helper()
	r, err := Decode(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestServerReportsWireOrder(t *testing.T) {
	addr := startServer(t)
	raw := "GET /a/b?c=d HTTP/1.1\r\n" +
		"Host: app.example\r\n" +
		"X-Forwarded-For: 203.0.113.0\r\n" +
		"x-ipveil-verdict: allow\r\n" +
		"Accept: */*\r\n" +
		"X-Forwarded-For: 198.51.100.0\r\n" +
		"Empty:\r\n" +
		"\r\n"
	resp := roundTrip(t, addr, raw, "GET")[0]
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	r := decode(t, resp)
	if r.RequestLine() != "GET /a/b?c=d HTTP/1.1" {
		t.Errorf("request line %q", r.RequestLine())
	}
	want := []Header{
		{"Host", "app.example"},
		{"X-Forwarded-For", "203.0.113.0"},
		{"x-ipveil-verdict", "allow"},
		{"Accept", "*/*"},
		{"X-Forwarded-For", "198.51.100.0"},
		{"Empty", ""},
	}
	if !reflect.DeepEqual(r.Headers, want) {
		t.Errorf("headers\n got %v\nwant %v", r.Headers, want)
	}
	if got := r.Values("x-forwarded-for"); !reflect.DeepEqual(got, []string{"203.0.113.0", "198.51.100.0"}) {
		t.Errorf("Values = %v", got)
	}
	if v, ok := r.Get("X-IPVEIL-VERDICT"); !ok || v != "allow" {
		t.Errorf("Get = %q %v", v, ok)
	}
	if _, ok := r.Get("missing"); ok {
		t.Error("Get(missing) found a value")
	}
	if r.BodyBytes != 0 || r.Body != "" {
		t.Errorf("body %d %q", r.BodyBytes, r.Body)
	}
}

func TestServerBodiesAndKeepAlive(t *testing.T) {
	addr := startServer(t)
	raw := "POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"PUT /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n" +
		"POST /expect HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok" +
		"HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /status HTTP/1.1\r\nHost: a\r\nX-Echo-Status: 503\r\nConnection: close\r\n\r\n"
	resps := roundTrip(t, addr, raw, "POST", "PUT", "POST", "POST", "HEAD", "GET")

	if r := decode(t, resps[0]); r.Target != "/cl" || r.Body != "hello" || r.BodyBytes != 5 {
		t.Errorf("content-length body: %+v", r)
	}
	r := decode(t, resps[1])
	if r.Body != "abcde" || r.BodyBytes != 5 || !reflect.DeepEqual(r.Trailers, []Header{{"X-Sum", "5"}}) {
		t.Errorf("chunked body: %+v", r)
	}
	if resps[2].StatusCode != 100 {
		t.Errorf("Expect: 100-continue got %d first", resps[2].StatusCode)
	}
	if r := decode(t, resps[3]); r.Body != "ok" {
		t.Errorf("after 100-continue: %+v", r)
	}
	if resps[4].StatusCode != 200 || resps[4].ContentLength <= 0 {
		t.Errorf("HEAD: %d, Content-Length %d", resps[4].StatusCode, resps[4].ContentLength)
	}
	if b, _ := io.ReadAll(resps[4].Body); len(b) != 0 {
		t.Errorf("HEAD sent a body: %q", b)
	}
	if resps[5].StatusCode != 503 || !resps[5].Close {
		t.Errorf("X-Echo-Status: %d close=%v", resps[5].StatusCode, resps[5].Close)
	}
}

func TestServerHTTP10ClosesByDefault(t *testing.T) {
	addr := startServer(t)
	resp := roundTrip(t, addr, "GET / HTTP/1.0\r\n\r\n", "GET")[0]
	if !resp.Close {
		t.Error("HTTP/1.0 without keep-alive did not close")
	}
	resp = roundTrip(t, addr, "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n", "GET", "GET")[1]
	if r := decode(t, resp); r.Target != "/2" {
		t.Errorf("second request: %+v", r)
	}
}

func TestServerRejectsMalformedRequests(t *testing.T) {
	addr := startServer(t)
	for raw, want := range map[string]string{
		"NONSENSE\r\n\r\n":                                                           "malformed request line",
		"GET / HTTP/1.1\r\nNo colon here\r\n\r\n":                                    "malformed header line",
		"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n":                                  "folded header lines",
		"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n":                               "bad Content-Length",
		"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n":          "bad Content-Length",
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n":                         "must end in chunked",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n": "must end in chunked",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n":                "reading the body",
	} {
		resp := roundTrip(t, addr, raw, "GET")[0]
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || !strings.Contains(string(body), want) || !resp.Close {
			t.Errorf("%q: %d %q close=%v, want 400 with %q", raw, resp.StatusCode, body, resp.Close, want)
		}
	}
}

func TestServerWithNetHTTPClient(t *testing.T) {
	addr := startServer(t)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/x", strings.NewReader(strings.Repeat("z", 3000)))
	req.Header.Add("X-Multi", "1")
	req.Header.Add("X-Multi", "2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := decode(t, resp)
	if r.BodyBytes != 3000 || len(r.Body) != 3000 || !reflect.DeepEqual(r.Values("x-multi"), []string{"1", "2"}) {
		t.Errorf("answer: bytes=%d multi=%v", r.BodyBytes, r.Values("x-multi"))
	}
	if h, _ := r.Get("Host"); h != addr {
		t.Errorf("Host = %q", h)
	}
}

func TestServerLargeBodyIsCountedNotRepeated(t *testing.T) {
	addr := startServer(t)
	n := maxBody + 10
	resp := roundTrip(t, addr, fmt.Sprintf("POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s", n, strings.Repeat("a", n)), "POST")[0]
	if r := decode(t, resp); r.BodyBytes != int64(n) || r.Body != "" {
		t.Errorf("bytes=%d body len=%d", r.BodyBytes, len(r.Body))
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/p?q=1", strings.NewReader("body"))
	req.Header.Add("Zeta", "z")
	req.Header.Add("Alpha", "a1")
	req.Header.Add("Alpha", "a2")
	req.Header.Set(StatusHeader, "418")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 418 {
		t.Errorf("status %d", resp.StatusCode)
	}
	r := decode(t, resp)
	if r.RequestLine() != "PUT /p?q=1 HTTP/1.1" || r.Body != "body" || r.BodyBytes != 4 {
		t.Errorf("answer %+v", r)
	}
	// Host first, then names sorted, values in order.
	var names []string
	for _, h := range r.Headers {
		names = append(names, h.Name)
	}
	if names[0] != "Host" || !reflect.DeepEqual(r.Values("alpha"), []string{"a1", "a2"}) {
		t.Errorf("headers %v", r.Headers)
	}
	for i := 2; i < len(names); i++ {
		if names[i-1] > names[i] {
			t.Errorf("names not sorted after Host: %v", names)
		}
	}
}

func TestStatusHeaderIgnoresNonsense(t *testing.T) {
	for _, v := range []string{"abc", "99", "600", "100"} {
		st, _ := answer(&Request{Headers: []Header{{StatusHeader, v}}})
		if st != 200 {
			t.Errorf("%s=%q gave %d, want 200", StatusHeader, v, st)
		}
	}
}

package devproxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ipveil/ipveil/e2e/bootstrap"
	"github.com/ipveil/ipveil/e2e/devproxy"
)

// bodyLog is an access-log format that shows where a request went, how
// much of its body devproxy read, and what the guest saw of the body.
const bodyLog = "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% up=%UPSTREAM_HOST% in=%BYTES_RECEIVED% body=%FILTER_STATE(wasm.guest_body:PLAIN)%\n"

func withBodyLog(t *testing.T) func(*bootstrap.Config) {
	return func(c *bootstrap.Config) {
		f, err := bootstrap.CompileFormat(bodyLog)
		if err != nil {
			t.Fatal(err)
		}
		c.Listener.AccessLogs = []*bootstrap.AccessLog{{Path: "/dev/stdout", Format: f}}
	}
}

// allowStopIteration runs the test filter as Envoy does with
// allow_on_headers_stop_iteration: true.
func allowStopIteration(o *devproxy.Options) {
	o.AllowOnHeadersStopIteration = map[string]bool{"test": true}
}

// send makes a request with a body through the proxy. A nil length sends
// the body chunked.
func (st *stack) send(t *testing.T, method, path string, body io.Reader, length int64, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, "http://"+st.p.Addr()+path, body)
	req.ContentLength = length
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
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

func (st *stack) post(t *testing.T, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	return st.send(t, "POST", path, strings.NewReader(body), int64(len(body)), hdr)
}

func (st *stack) waitLog(t *testing.T, want string) {
	t.Helper()
	waitFor(t, func() bool { return strings.Contains(st.accessLog.String(), want) })
}

func decodeEcho(t *testing.T, body string) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("upstream body %q: %v", body, err)
	}
	return e
}

// The challenge form case: a filter reads a small url-encoded body and
// answers it locally. By default (Envoy without
// allow_on_headers_stop_iteration) the filter cannot hold the headers while
// it reads the body, so the router has already sent them upstream when it
// answers: the access log names the upstream host.
func TestBodyReadAndAnsweredLocally(t *testing.T) {
	st := newStack(t, withBodyLog(t))
	resp, body := st.post(t, "/echo-body", "answer=42&nonce=abc", nil)
	if resp.StatusCode != 200 || body != `len=19 first="answer=42&nonce="` || resp.Header.Get("Server") != "envoy" {
		t.Fatalf("status %d body %q headers %v", resp.StatusCode, body, resp.Header)
	}
	if resp.Header.Get("X-Guest-Response") != "200" {
		t.Fatalf("the local reply did not go through the encoder filters: %v", resp.Header)
	}
	st.waitLog(t, "POST /echo-body 200 up=127.0.0.1:")
}

// With allow_on_headers_stop_iteration, a filter that pauses in the
// headers reads the body while it holds them and answers: nothing reaches
// the upstream.
func TestBodyAnsweredWhileHeadersHeldNeverReachesUpstream(t *testing.T) {
	st := newStackWith(t, withBodyLog(t), allowStopIteration)
	resp, body := st.post(t, "/echo-body", "answer=42&nonce=abc", map[string]string{"X-Hold-Headers": "1"})
	if resp.StatusCode != 200 || body != `len=19 first="answer=42&nonce="` {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	st.waitLog(t, "POST /echo-body 200 up=- in=19 ")
	if n := st.echoHits.Load(); n != 0 {
		t.Fatalf("the upstream got %d requests", n)
	}
}

// A filter that lets the body through leaves it as the client sent it, in
// as many frames as it takes, with no size limit (Envoy limits only what a
// filter buffers).
func TestBodyStreamsToUpstream(t *testing.T) {
	st := newStack(t, withBodyLog(t))
	resp, body := st.post(t, "/pass-body", "hello=world", nil)
	e := decodeEcho(t, body)
	if resp.StatusCode != 200 || e.Method != "POST" || e.Body != "hello=world" || e.ContentLength != 11 || e.h("content-type") != "application/x-www-form-urlencoded" {
		t.Fatalf("status %d, upstream saw %+v", resp.StatusCode, e)
	}
	st.waitLog(t, "POST /pass-body 200 up=127.0.0.1:")
	st.waitLog(t, " in=11 body=len=")
	st.waitLog(t, " eos=true calls=")

	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	resp, body = st.send(t, "POST", "/pass-body?big", bytes.NewReader(big), int64(len(big)), nil)
	if e := decodeEcho(t, body); resp.StatusCode != 200 || e.BodyLen != len(big) {
		t.Fatalf("status %d, upstream got %d bytes of %d", resp.StatusCode, e.BodyLen, len(big))
	}
	st.waitLog(t, fmt.Sprintf("POST /pass-body?big 200 up=127.0.0.1:"))
	st.waitLog(t, fmt.Sprintf(" in=%d body=", len(big)))
}

// A body the filter edits reaches the upstream edited; with the filter's
// content-length removed it goes chunked, as Envoy sends it.
func TestEditedBodyReachesUpstream(t *testing.T) {
	st := newStack(t, nil)
	resp, body := st.post(t, "/edit-body", "a=1", nil)
	e := decodeEcho(t, body)
	if resp.StatusCode != 200 || e.Body != "<A=1!" || e.ContentLength != -1 || len(e.TransferEncoding) != 1 || e.TransferEncoding[0] != "chunked" {
		t.Fatalf("status %d, upstream saw %+v", resp.StatusCode, e)
	}
}

// A chunked request body goes through the filters like any other.
func TestChunkedBody(t *testing.T) {
	st := newStack(t, nil)
	r := io.MultiReader(strings.NewReader("answer=42&"), strings.NewReader("nonce=abc"))
	resp, body := st.send(t, "POST", "/echo-body", r, -1, nil)
	if resp.StatusCode != 200 || body != `len=19 first="answer=42&nonce="` {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

// A filter that buffers more than the 1 MiB per-stream limit gets the
// request answered 413, as Envoy does, and devproxy stops reading it.
func TestBufferedBodyOverTheLimit(t *testing.T) {
	st := newStack(t, withBodyLog(t))
	exact := bytes.Repeat([]byte("a"), 1<<20)
	resp, body := st.send(t, "POST", "/echo-body?exact", bytes.NewReader(exact), int64(len(exact)), nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "len=1048576 ") {
		t.Fatalf("exactly the limit: status %d body %q", resp.StatusCode, body)
	}
	over := append(exact, 'b')
	resp, body = st.send(t, "POST", "/echo-body?over", bytes.NewReader(over), int64(len(over)), nil)
	if resp.StatusCode != 413 || body != "Payload Too Large" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("one byte over: status %d body %q", resp.StatusCode, body)
	}
	huge := bytes.Repeat([]byte("a"), 8<<20)
	resp, _ = st.send(t, "POST", "/echo-body?huge", bytes.NewReader(huge), int64(len(huge)), nil)
	if resp.StatusCode != 413 {
		t.Fatalf("8 MiB: status %d", resp.StatusCode)
	}
	// devproxy read a little past the limit, not the whole body.
	var in int64
	waitFor(t, func() bool {
		for _, l := range strings.Split(st.accessLog.String(), "\n") {
			if strings.HasPrefix(l, "POST /echo-body?huge 413 ") {
				fmt.Sscanf(l[strings.Index(l, " in=")+4:], "%d", &in)
				return true
			}
		}
		return false
	})
	if in <= 1<<20 || in > 2<<20 {
		t.Fatalf("devproxy read %d bytes of an 8 MiB body", in)
	}
	admin := "http://" + st.p.AdminAddr()
	waitFor(t, func() bool {
		r, err := http.Get(admin + "/stats")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return strings.Contains(string(b), "http.ingress_http.downstream_rq_too_large: 2\n")
	})
}

// A filter paused in the headers for a callout: by default it gets the
// body only after it resumed, and the upstream gets the headers the
// callout edited and the body.
func TestHeadersPausedForCalloutThenBody(t *testing.T) {
	st := newStack(t, withBodyLog(t))
	resp, body := st.post(t, "/callout-body", "answer=42", nil)
	e := decodeEcho(t, body)
	if resp.StatusCode != 200 || e.h("x-callout-status") != "200" || e.Body != "answer=42" {
		t.Fatalf("status %d, upstream saw %+v", resp.StatusCode, e)
	}
	st.waitLog(t, "body=after-callout len=")
}

// With allow_on_headers_stop_iteration the filter gets the body while the
// callout is pending, holds it, and the resume releases headers and body
// together.
func TestHeadersPausedForCalloutBodyHeldAllowed(t *testing.T) {
	st := newStackWith(t, withBodyLog(t), allowStopIteration)
	st.mockDelay = make(chan struct{})
	go func() {
		// Let the callout answer once the filter has seen the body.
		waitFor(t, func() bool {
			for _, m := range st.p.Store().Metrics() {
				if m.Name == "wasmcustom.test_request_body_chunks_total" && m.Value > 0 {
					return true
				}
			}
			return false
		})
		close(st.mockDelay)
	}()
	resp, body := st.post(t, "/callout-body", "answer=42", nil)
	e := decodeEcho(t, body)
	if resp.StatusCode != 200 || e.h("x-callout-status") != "200" || e.Body != "answer=42" {
		t.Fatalf("status %d, upstream saw %+v", resp.StatusCode, e)
	}
	st.waitLog(t, "body=during-callout len=")
}

// Response bodies go through the filters too: this one buffers the
// response and replaces it.
func TestResponseBodyReplacedByFilter(t *testing.T) {
	st := newStack(t, nil)
	resp, body := st.do(t, "GET", "/resp-body", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "resp-len=") || resp.ContentLength != -1 {
		t.Fatalf("status %d length %d body %q", resp.StatusCode, resp.ContentLength, body)
	}
}

// Requests without a body still end the stream with their headers: the
// filter never gets a body callback.
func TestBodilessRequestHasNoBodyCallback(t *testing.T) {
	st := newStack(t, withBodyLog(t))
	st.echo(t, "/pass-body", nil)
	st.waitLog(t, "GET /pass-body 200 up=127.0.0.1:")
	st.waitLog(t, " in=0 body=-\n")
}

package host_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/ipveil/ipveil/e2e/host"
)

func post(path string, extra ...[2]string) [][2]string {
	h := [][2]string{{":method", "POST"}, {":path", path}, {":authority", "example.test"}, {":scheme", "http"},
		{"content-type", "application/x-www-form-urlencoded"}}
	return append(h, extra...)
}

func noViolations(t *testing.T, h *host.Host) {
	t.Helper()
	if v := h.Violations(); len(v) != 0 {
		t.Fatalf("violations: %v", v)
	}
}

// A filter that buffers (Pause from the body callback) reads everything it
// buffered at the end of the stream and answers from there.
func TestBodyBufferedThenLocalReply(t *testing.T) {
	h, _ := newHost(t, nil)
	ctx := ctxT(t)
	s := h.NewStream(props())
	defer s.Close()
	res, err := s.RequestHeaders(ctx, post("/echo-body"), false)
	if err != nil || res.Action != host.Continue || res.EndOfStream {
		t.Fatalf("headers: %+v %v", res, err)
	}
	res, err = s.RequestBody(ctx, []byte("answer=42&"), false)
	if err != nil || res.Action != host.Stopped || res.Body != nil {
		t.Fatalf("first chunk: %+v %v", res, err)
	}
	res, err = s.RequestBody(ctx, []byte("nonce=abc"), true)
	if err != nil || res.Action != host.LocalReply {
		t.Fatalf("last chunk: %+v %v", res, err)
	}
	if got, want := string(res.Local.Body), `len=19 first="answer=42&nonce="`; got != want || res.Local.Status != 200 {
		t.Fatalf("local reply %d %q, want 200 %q", res.Local.Status, got, want)
	}
	if get(res.Local.Headers, "x-body-calls") != "2" {
		t.Fatalf("body callbacks: %v", res.Local.Headers)
	}
	// The stream is answered: no more body.
	if _, err := s.RequestBody(ctx, []byte("late"), true); err == nil || !strings.Contains(err.Error(), "already answered") {
		t.Fatalf("body after the answer: %v", err)
	}
	noViolations(t, h)
}

// Continue from the body callback lets each chunk through as it comes.
func TestBodyStreamsThrough(t *testing.T) {
	h, _ := newHost(t, nil)
	ctx := ctxT(t)
	s := h.NewStream(props())
	if res, err := s.RequestHeaders(ctx, post("/pass-body"), false); err != nil || res.Action != host.Continue {
		t.Fatalf("headers: %+v %v", res, err)
	}
	res, err := s.RequestBody(ctx, []byte("abc"), false)
	if err != nil || res.Action != host.Continue || string(res.Body) != "abc" || res.EndOfStream || res.Headers != nil {
		t.Fatalf("first chunk: %+v %v", res, err)
	}
	res, err = s.RequestBody(ctx, []byte("defg"), true)
	if err != nil || res.Action != host.Continue || string(res.Body) != "defg" || !res.EndOfStream {
		t.Fatalf("last chunk: %+v %v", res, err)
	}
	if _, err := s.RequestBody(ctx, []byte("x"), true); err == nil || !strings.Contains(err.Error(), "already ended") {
		t.Fatalf("body after the end of stream: %v", err)
	}
	s.Close()
	// Without buffering, the module sees each chunk alone.
	if v, _ := s.FilterState("wasm.guest_body"); v != "len=4 eos=true calls=2" {
		t.Fatalf("guest saw %q", v)
	}
	noViolations(t, h)
}

// proxy_set_buffer_bytes replaces, appends and prepends as Envoy does; the
// edited body is what goes on.
func TestBodyEdited(t *testing.T) {
	h, _ := newHost(t, nil)
	ctx := ctxT(t)
	s := h.NewStream(props())
	defer s.Close()
	res, err := s.RequestHeaders(ctx, post("/edit-body", [2]string{"content-length", "6"}), false)
	if err != nil || res.Action != host.Continue || has(res.Headers, "content-length") {
		t.Fatalf("headers: %+v %v", res, err)
	}
	if res, err = s.RequestBody(ctx, []byte("abc"), false); err != nil || res.Action != host.Stopped {
		t.Fatalf("first chunk: %+v %v", res, err)
	}
	res, err = s.RequestBody(ctx, []byte("def"), true)
	if err != nil || res.Action != host.Continue || string(res.Body) != "<ABCDEF!" || !res.EndOfStream {
		t.Fatalf("edited body: %+v %v", res, err)
	}
	noViolations(t, h)
}

// Buffering stops at Envoy's per-stream buffer limit: exactly the limit is
// fine, one byte more answers 413 without calling the module again.
func TestBodyBufferLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int
		size   int
		chunk  int
		status int
	}{
		{"default limit, exactly 1 MiB", 0, host.DefaultBufferLimit, 64 << 10, 200},
		{"default limit, 1 MiB + 1", 0, host.DefaultBufferLimit + 1, 64 << 10, 413},
		{"configured limit", 100, 101, 60, 413},
		// Envoy counts only what a filter buffers: one chunk, however large,
		// that the filter reads without pausing is not limited.
		{"one chunk is not buffered", 100, 1000, 1000, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newHost(t, func(c *host.Config) { c.BufferLimit = tc.limit })
			ctx := ctxT(t)
			s := h.NewStream(props())
			defer s.Close()
			if _, err := s.RequestHeaders(ctx, post("/echo-body"), false); err != nil {
				t.Fatal(err)
			}
			body := bytes.Repeat([]byte("a"), tc.size)
			var res host.Result
			var err error
			chunk := tc.chunk
			for off := 0; off < len(body); off += chunk {
				end := min(off+chunk, len(body))
				res, err = s.RequestBody(ctx, body[off:end], end == len(body))
				if err != nil {
					t.Fatal(err)
				}
				if res.Action != host.Stopped {
					break
				}
			}
			if res.Action != host.LocalReply || res.Local.Status != tc.status {
				t.Fatalf("got %+v", res)
			}
			if tc.status == 413 {
				if res.Local.Details != "request_payload_too_large" || string(res.Local.Body) != "Payload Too Large" || s.Details() != "request_payload_too_large" {
					t.Fatalf("413 reply: %+v", res.Local)
				}
			} else if !strings.HasPrefix(string(res.Local.Body), "len="+strconv.Itoa(tc.size)+" ") {
				t.Fatalf("reply: %q", res.Local.Body)
			}
			noViolations(t, h)
		})
	}
}

// By default (Envoy without allow_on_headers_stop_iteration) a pause in
// the headers stops the whole stream: the body reaches the module only after
// the filter resumed, and then all at once.
func TestHeadersPauseThenBodyDefault(t *testing.T) {
	h, _ := newHost(t, nil)
	ctx := ctxT(t)
	s := h.NewStream(props())
	res, err := s.RequestHeaders(ctx, post("/callout-body"), false)
	if err != nil || res.Action != host.Continue || get(res.Headers, "x-callout-status") != "200" {
		t.Fatalf("headers after the callout: %+v %v", res, err)
	}
	res, err = s.RequestBody(ctx, []byte("answer=42"), true)
	if err != nil || res.Action != host.Continue || string(res.Body) != "answer=42" || !res.EndOfStream || res.Headers != nil {
		t.Fatalf("body: %+v %v", res, err)
	}
	s.Close()
	if v, _ := s.FilterState("wasm.guest_body"); v != "after-callout len=9 eos=true calls=1" {
		t.Fatalf("guest saw %q", v)
	}
	noViolations(t, h)
}

// With allow_on_headers_stop_iteration, a filter that pauses in the headers
// still receives the body; it holds both until the callout answers, and the
// resume releases the edited headers with the buffered body.
func TestHeadersPauseThenBodyAllowed(t *testing.T) {
	release := make(chan struct{})
	h, _ := newHost(t, func(c *host.Config) {
		c.Plugin.AllowOnHeadersStopIteration = true
		c.Callout = func(ctx context.Context, r *host.CalloutRequest) (*host.CalloutResponse, error) {
			<-release
			return &host.CalloutResponse{Headers: [][2]string{{":status", "200"}}, Body: []byte("verdict")}, nil
		}
	})
	ctx := ctxT(t)
	s := h.NewStream(props())
	defer s.Close()
	res, err := s.RequestHeaders(ctx, post("/callout-body"), false)
	if err != nil || res.Action != host.Stopped || res.Headers != nil {
		t.Fatalf("headers: %+v %v", res, err)
	}
	type out struct {
		res host.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := s.RequestBody(ctx, []byte("answer=42"), true)
		done <- out{r, err}
	}()
	// The module saw the body while the callout was pending, and held it.
	waitFor(t, func() bool { v, _ := s.FilterState("wasm.guest_body"); return v != "" })
	if v, _ := s.FilterState("wasm.guest_body"); v != "during-callout len=9 eos=true calls=1" {
		t.Fatalf("guest saw %q", v)
	}
	close(release)
	o := <-done
	if o.err != nil || o.res.Action != host.Continue || !o.res.EndOfStream {
		t.Fatalf("after the callout: %+v %v", o.res, o.err)
	}
	if get(o.res.Headers, "x-callout-status") != "200" || get(o.res.Headers, ":path") != "/callout-body" || string(o.res.Body) != "answer=42" {
		t.Fatalf("released %v with body %q", o.res.Headers, o.res.Body)
	}
	noViolations(t, h)
}

// With allow_on_headers_stop_iteration, a body callback that returns
// Continue (the SDK's default) while the headers are paused releases the
// request at once, before the callout answered: the hazard of enabling the
// option without a body callback that pauses.
func TestHeadersPauseBodyContinueReleasesEarly(t *testing.T) {
	release := make(chan struct{})
	h, _ := newHost(t, func(c *host.Config) {
		c.Plugin.AllowOnHeadersStopIteration = true
		c.Callout = func(ctx context.Context, r *host.CalloutRequest) (*host.CalloutResponse, error) {
			<-release
			return &host.CalloutResponse{Headers: [][2]string{{":status", "200"}}}, nil
		}
	})
	ctx := ctxT(t)
	s := h.NewStream(props())
	res, err := s.RequestHeaders(ctx, post("/callout-naive-body"), false)
	if err != nil || res.Action != host.Stopped {
		t.Fatalf("headers: %+v %v", res, err)
	}
	res, err = s.RequestBody(ctx, []byte("x"), true)
	if err != nil || res.Action != host.Continue || string(res.Body) != "x" || res.Headers == nil || has(res.Headers, "x-callout-status") {
		t.Fatalf("body: %+v %v", res, err)
	}
	close(release)
	// The callout's answer comes too late: its resume finds nothing held.
	waitFor(t, func() bool { v, _ := s.FilterState("wasm.guest_callout"); return v == "done" })
	s.Close()
	if v, _ := s.FilterState("wasm.guest_body"); v != "callout-done=false len=1 eos=true calls=1" {
		t.Fatalf("guest saw %q", v)
	}
	noViolations(t, h)
}

// A local reply from an HTTP call callback, while the filter holds the
// request and no call waits, is the answer the next body call returns; the
// module does not see that body.
func TestAnswerWhileHeldReachesNextBodyCall(t *testing.T) {
	release := make(chan struct{})
	h, _ := newHost(t, func(c *host.Config) {
		c.Plugin.AllowOnHeadersStopIteration = true
		c.Callout = func(ctx context.Context, r *host.CalloutRequest) (*host.CalloutResponse, error) {
			<-release
			return &host.CalloutResponse{Headers: [][2]string{{":status", "200"}}, Body: []byte("blocked")}, nil
		}
	})
	ctx := ctxT(t)
	s := h.NewStream(props())
	defer s.Close()
	if res, err := s.RequestHeaders(ctx, post("/callout-local"), false); err != nil || res.Action != host.Stopped {
		t.Fatalf("headers: %+v %v", res, err)
	}
	close(release)
	waitFor(t, func() bool { v, _ := s.FilterState("wasm.guest_callout"); return v == "done" })
	res, err := s.RequestBody(ctx, []byte("x"), true)
	if err != nil || res.Action != host.LocalReply || res.Local.Status != 429 || string(res.Local.Body) != "blocked" {
		t.Fatalf("got %+v %v", res, err)
	}
	if v, ok := s.FilterState("wasm.guest_body"); ok {
		t.Fatalf("the module saw a body after answering: %q", v)
	}
	noViolations(t, h)
}

// A crash in a body callback answers 503, as Envoy's failStream does.
func TestBodyCrashAnswers503(t *testing.T) {
	h, _ := newHost(t, func(c *host.Config) { c.Workers = 1 })
	ctx := ctxT(t)
	s := h.NewStream(props())
	defer s.Close()
	if res, err := s.RequestHeaders(ctx, post("/trap-body"), false); err != nil || res.Action != host.Continue {
		t.Fatalf("headers: %+v %v", res, err)
	}
	res, err := s.RequestBody(ctx, []byte("x"), true)
	if err != nil || res.Action != host.LocalReply || res.Local.Status != 503 || res.Local.Details != "wasm_fail_stream" {
		t.Fatalf("got %+v %v", res, err)
	}
	if h.Traps() != 1 {
		t.Fatalf("traps = %d", h.Traps())
	}
}

func TestBodyCallOrder(t *testing.T) {
	h, _ := newHost(t, nil)
	ctx := ctxT(t)
	s := h.NewStream(props())
	defer s.Close()
	if _, err := s.RequestBody(ctx, []byte("x"), true); err == nil || !strings.Contains(err.Error(), "call RequestHeaders first") {
		t.Fatalf("body before headers: %v", err)
	}
	if _, err := s.RequestHeaders(ctx, post("/pass-body"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestHeaders(ctx, post("/pass-body"), false); err == nil || !strings.Contains(err.Error(), "send them once") {
		t.Fatalf("headers twice: %v", err)
	}
}

// Response bodies go through proxy_on_response_body the same way.
func TestResponseBodyBufferedAndReplaced(t *testing.T) {
	h, _ := newHost(t, nil)
	ctx := ctxT(t)
	s := h.NewStream(props())
	defer s.Close()
	if _, err := s.RequestHeaders(ctx, req("/resp-body"), true); err != nil {
		t.Fatal(err)
	}
	rr, err := s.ResponseHeaders(ctx, [][2]string{{":status", "200"}, {"content-length", "5"}}, false)
	if err != nil || rr.Action != host.Continue || has(rr.Headers, "content-length") {
		t.Fatalf("response headers: %+v %v", rr, err)
	}
	if rr, err = s.ResponseBody(ctx, []byte("hel"), false); err != nil || rr.Action != host.Stopped {
		t.Fatalf("first chunk: %+v %v", rr, err)
	}
	rr, err = s.ResponseBody(ctx, []byte("lo"), true)
	if err != nil || rr.Action != host.Continue || string(rr.Body) != "resp-len=5" || !rr.EndOfStream {
		t.Fatalf("last chunk: %+v %v", rr, err)
	}
	noViolations(t, h)
}

// A response a filter buffers past the limit, after its headers went
// downstream, can only be reset.
func TestResponseBodyTooLargeResets(t *testing.T) {
	h, _ := newHost(t, func(c *host.Config) { c.BufferLimit = 8 })
	ctx := ctxT(t)
	s := h.NewStream(props())
	defer s.Close()
	if _, err := s.RequestHeaders(ctx, req("/resp-body"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResponseHeaders(ctx, [][2]string{{":status", "200"}}, false); err != nil {
		t.Fatal(err)
	}
	rr, err := s.ResponseBody(ctx, []byte("0123456789"), false)
	if err != nil || rr.Action != host.Reset || s.Details() != "response_payload_too_large" {
		t.Fatalf("got %+v %v (details %q)", rr, err, s.Details())
	}
}

// Envoy runs encoder filters on a local reply's body too.
func TestLocalReplyBodyThroughResponseBody(t *testing.T) {
	h, _ := newHost(t, nil)
	ctx := ctxT(t)
	s := h.NewStream(props())
	defer s.Close()
	res, err := s.RequestHeaders(ctx, req("/local"), true)
	if err != nil || res.Action != host.LocalReply {
		t.Fatalf("got %+v %v", res, err)
	}
	if rr, err := s.ResponseHeaders(ctx, res.Local.ResponseHeaders(), false); err != nil || rr.Action != host.Continue {
		t.Fatalf("response headers: %+v %v", rr, err)
	}
	rr, err := s.ResponseBody(ctx, res.Local.Body, true)
	if err != nil || rr.Action != host.Continue || string(rr.Body) != "denied by guest" || !rr.EndOfStream {
		t.Fatalf("response body: %+v %v", rr, err)
	}
	noViolations(t, h)
}

// Package echo is the application behind the proxy in ipveil's local stack:
// it answers every request with a JSON description of what reached it — the
// request line, every header in the order received (repeated names kept) and
// the body — so a test can check exactly what the proxy forwarded, such as
// a masked X-Forwarded-For or a header the filter added.
//
// Server speaks HTTP/1.1 itself so that it can report headers in wire order.
// Handler does the same job inside a net/http server (for httptest), where
// the order between different header names is not kept: it reports Host
// first, then the other names sorted, each name's values in received order.
//
// A request may ask for a status with the X-Echo-Status header (e.g. 503),
// to exercise the proxy's handling of upstream errors.
package echo

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// StatusHeader is the request header that picks the response status.
const StatusHeader = "X-Echo-Status"

// maxBody is the most body an answer repeats; BodyBytes counts it all.
const maxBody = 1 << 20

// Request is the JSON the echo service answers with.
type Request struct {
	// Method, Target and Proto are the request line, e.g. "GET",
	// "/a?b=c" and "HTTP/1.1".
	Method string `json:"method"`
	Target string `json:"target"`
	Proto  string `json:"proto"`
	// Headers lists every header field as received.
	Headers []Header `json:"headers"`
	// Trailers lists the trailer fields of a chunked body, if any.
	Trailers []Header `json:"trailers,omitempty"`
	// BodyBytes is the length of the request body.
	BodyBytes int64 `json:"body_bytes"`
	// Body holds the body when it is at most 1 MiB.
	Body string `json:"body,omitempty"`
}

// Header is one header field, its name spelled as received.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// RequestLine returns "METHOD TARGET PROTO".
func (r *Request) RequestLine() string { return r.Method + " " + r.Target + " " + r.Proto }

// Values returns every value of the header name (case-insensitive), in the
// order received.
func (r *Request) Values(name string) []string {
	var out []string
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			out = append(out, h.Value)
		}
	}
	return out
}

// Get returns the first value of the header name (case-insensitive).
func (r *Request) Get(name string) (string, bool) {
	v := r.Values(name)
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// Decode reads an echo answer, for tests that send requests through the
// proxy.
func Decode(body io.Reader) (*Request, error) {
	var r Request
	if err := json.NewDecoder(body).Decode(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// answer returns the status and JSON body for req.
func answer(req *Request) (int, []byte) {
	status := http.StatusOK
	if v, ok := req.Get(StatusHeader); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 200 && n <= 599 {
			status = n
		}
	}
	b, _ := json.Marshal(req)
	return status, append(b, '\n')
}

// Handler returns the echo service as an http.Handler. See the package
// documentation for the header order it reports.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &Request{Method: r.Method, Target: r.RequestURI, Proto: r.Proto}
		if r.Host != "" {
			req.Headers = append(req.Headers, Header{Name: "Host", Value: r.Host})
		}
		req.Headers = append(req.Headers, sortedFields(r.Header)...)
		if r.Body != nil {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			if err != nil {
				http.Error(w, "echo: reading the body: "+err.Error(), http.StatusBadRequest)
				return
			}
			n, _ := io.Copy(io.Discard, r.Body)
			req.BodyBytes = int64(len(body)) + n
			if len(body) <= maxBody {
				req.Body = string(body)
			}
		}
		req.Trailers = sortedFields(r.Trailer)
		status, out := answer(req)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(out)
		}
	})
}

func sortedFields(h http.Header) []Header {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []Header
	for _, k := range names {
		for _, v := range h[k] {
			out = append(out, Header{Name: k, Value: v})
		}
	}
	return out
}

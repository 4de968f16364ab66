package host

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Props describes the request's connection and what else Envoy knows about
// it, for the module's proxy_get_property calls.
type Props struct {
	// SourceAddress is Envoy's effective client address: after
	// use_remote_address / xff_num_trusted_hops, port 0 when it was taken
	// from X-Forwarded-For. It is the source.address and source.port
	// properties.
	SourceAddress netip.AddrPort
	// DestinationAddress is the listener-side address of the connection
	// (destination.address, destination.port).
	DestinationAddress netip.AddrPort
	// ConnectionID is the connection.id property; 0 means unset.
	ConnectionID uint64
	// Protocol is request.protocol: "HTTP/1.1" when empty.
	Protocol string
	// StartTime is request.time; the stream's creation time when zero.
	StartTime time.Time
	// Extra holds further properties, by path with segments joined by "."
	// or NUL (for example "upstream.address" or "xds.cluster_name"), with
	// their value already serialized as Envoy would (strings raw, integers
	// 8-byte little endian).
	Extra map[string][]byte
}

// Action is what the filter decided for a headers callback.
type Action int

const (
	// Continue: forward the (possibly edited) headers in Result.Headers.
	Continue Action = iota
	// LocalReply: answer the client with Result.Local; nothing is sent
	// upstream (for request headers) or the upstream response is replaced
	// (for response headers).
	LocalReply
	// Reset: the filter closed the stream (proxy_close_stream); reset the
	// client's connection.
	Reset
)

func (a Action) String() string {
	switch a {
	case Continue:
		return "continue"
	case LocalReply:
		return "local reply"
	case Reset:
		return "reset"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Result is the outcome of a headers callback, after any pause.
type Result struct {
	Action  Action
	Headers [][2]string    // Continue: the headers to forward, lower-case names
	Local   *LocalResponse // LocalReply
}

// LocalResponse is a reply made by the filter (proxy_send_local_response)
// or by the host when the VM failed.
type LocalResponse struct {
	Status     int
	Headers    [][2]string // additional headers the filter gave
	Body       []byte
	Details    string // response code details, spaces replaced by '_'
	GRPCStatus int32  // -1 when not set
}

// ResponseHeaders returns the headers Envoy sends with the local reply (as
// its encoder filters see them): :status, the filter's headers, and for a
// non-empty body content-length and, unless the filter set one,
// content-type text/plain.
func (lr *LocalResponse) ResponseHeaders() [][2]string {
	out := [][2]string{{":status", strconv.Itoa(lr.Status)}}
	hasType := false
	for _, p := range lr.Headers {
		k := strings.ToLower(p[0])
		if k == ":status" || k == "content-length" {
			continue
		}
		if k == "content-type" {
			hasType = true
		}
		out = append(out, [2]string{k, p[1]})
	}
	if len(lr.Body) > 0 {
		out = append(out, [2]string{"content-length", strconv.Itoa(len(lr.Body))})
		if !hasType {
			out = append(out, [2]string{"content-type", "text/plain"})
		}
	}
	return out
}

type phase int

const (
	phaseNone phase = iota
	phaseRequest
	phaseResponse
)

type outcome struct {
	res Result
	err error
}

// Stream is one HTTP request through the filter. Its methods may be called
// from any goroutine, one at a time, in request order: RequestHeaders, then
// ResponseHeaders, then Close.
type Stream struct {
	h     *Host
	w     *worker
	props Props
	start time.Time

	// Owned by the worker goroutine.
	v           *vm
	id          uint32
	reqHeaders  *headerMap // accessible to the module; nil otherwise
	respHeaders *headerMap
	lastReq     [][2]string
	lastResp    [][2]string
	phase       phase
	waiter      chan outcome
	inCall      bool
	continued   bool
	answered    bool
	vmFailed    bool // the VM holding this stream's context crashed
	failSent    bool // the host answered 503 wasm_fail_stream
	closed      bool
	logPhase    bool
	details     string

	fsMu        sync.Mutex
	filterState map[string][]byte
	idCopy      uint32
}

func newStream(h *Host, w *worker, props Props) *Stream {
	s := &Stream{h: h, w: w, props: props, start: time.Now()}
	if s.props.StartTime.IsZero() {
		s.props.StartTime = s.start
	}
	if s.props.Protocol == "" {
		s.props.Protocol = "HTTP/1.1"
	}
	return s
}

// Worker returns the index of the worker the stream runs on.
func (s *Stream) Worker() int { return s.w.id }

// ContextID returns the stream's Proxy-Wasm context id, 0 before its first
// callback.
func (s *Stream) ContextID() uint32 {
	s.fsMu.Lock()
	defer s.fsMu.Unlock()
	return s.idCopy
}

// RequestHeaders runs proxy_on_request_headers and blocks until the filter
// continues (Result.Headers are the headers to forward) or answers
// (Result.Local), including across a pause and HTTP calls. If ctx ends
// first (the client went away) it returns ctx.Err(); call Close then.
func (s *Stream) RequestHeaders(ctx context.Context, headers [][2]string, endOfStream bool) (Result, error) {
	return s.headers(ctx, phaseRequest, headers, endOfStream)
}

// ResponseHeaders runs proxy_on_response_headers with the response (from
// upstream, or a local reply: Envoy runs its encoder filters on those too)
// and blocks like RequestHeaders.
func (s *Stream) ResponseHeaders(ctx context.Context, headers [][2]string, endOfStream bool) (Result, error) {
	return s.headers(ctx, phaseResponse, headers, endOfStream)
}

func (s *Stream) headers(ctx context.Context, ph phase, headers [][2]string, eos bool) (Result, error) {
	if s.h.closed.Load() {
		return Result{}, ErrClosed
	}
	ch := make(chan outcome, 1)
	hdrs := append([][2]string(nil), headers...)
	if !s.w.post(func() { s.runHeaders(ph, hdrs, eos, ch) }) {
		return Result{}, ErrClosed
	}
	select {
	case o := <-ch:
		return o.res, o.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

func (s *Stream) runHeaders(ph phase, headers [][2]string, eos bool, ch chan outcome) {
	if s.closed {
		ch <- outcome{err: ErrStreamClosed}
		return
	}
	if s.answered && ph == phaseRequest {
		ch <- outcome{err: fmt.Errorf("host: stream %d was already answered", s.id)}
		return
	}
	if s.vmFailed {
		// The VM holding this stream's context crashed (Envoy: CHECK_FAIL).
		if s.failSent || s.answered || s.h.cfg.Plugin.FailOpen {
			ch <- outcome{res: Result{Action: Continue, Headers: lower(headers)}}
			return
		}
		s.failSent, s.answered = true, true
		ch <- outcome{res: failResult()}
		return
	}
	if s.id == 0 && ph == phaseResponse {
		// No context was created (no request headers went through the
		// filter): Envoy continues without calling the module.
		ch <- outcome{res: Result{Action: Continue, Headers: lower(headers)}}
		return
	}
	v := s.w.ensureVM()
	if v == nil {
		s.vmFailed = true
		if s.h.cfg.Plugin.FailOpen {
			ch <- outcome{res: Result{Action: Continue, Headers: lower(headers)}}
			return
		}
		s.failSent, s.answered = true, true
		ch <- outcome{res: failResult()}
		return
	}
	s.waiter = ch
	s.phase = ph
	if s.id == 0 {
		s.v = v
		s.id = v.allocContextID()
		s.fsMu.Lock()
		s.idCopy = s.id
		s.fsMu.Unlock()
		v.streams[s.id] = s
		if v.fnContextCreate != nil {
			if err := v.callVoid("proxy_on_context_create", s.id, v.fnContextCreate, uint64(s.id), uint64(v.rootID)); err != nil {
				return // the crash handling answered the stream
			}
		}
	}
	var f = v.fnRequestHeaders
	name := "proxy_on_request_headers"
	if ph == phaseRequest {
		s.reqHeaders = newHeaderMap(headers)
	} else {
		s.respHeaders = newHeaderMap(headers)
		f, name = v.fnResponseHeaders, "proxy_on_response_headers"
	}
	if f == nil {
		s.deliverContinue(ph, nil)
		return
	}
	s.inCall, s.continued = true, false
	r, err := v.call(name, s.id, f, uint64(s.id), uint64(len(headers)), b2u(eos))
	s.inCall = false
	stopped := v.stopIteration
	if err != nil || s.waiter == nil {
		return // answered by a local reply, a reset or the crash handling
	}
	if s.continued || (uint32(r) == 0 && !stopped) {
		s.deliverContinue(ph, nil)
	}
	// Otherwise the filter paused: a later callback continues or answers.
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func lower(h [][2]string) [][2]string {
	out := make([][2]string, len(h))
	for i, p := range h {
		out[i] = [2]string{strings.ToLower(p[0]), p[1]}
	}
	return out
}

func failResult() Result {
	return Result{Action: LocalReply, Local: &LocalResponse{Status: 503, Details: "wasm_fail_stream", GRPCStatus: -1}}
}

func (s *Stream) deliver(res Result, err error) {
	if s.waiter != nil {
		s.waiter <- outcome{res: res, err: err}
		s.waiter = nil
	}
}

// deliverContinue hands the continued headers to the waiting caller and
// makes them inaccessible to the module, as Envoy does on continue.
func (s *Stream) deliverContinue(ph phase, snapshot [][2]string) {
	switch ph {
	case phaseRequest:
		if snapshot == nil {
			snapshot = s.reqHeaders.clone()
		}
		s.lastReq = snapshot
		s.reqHeaders = nil
	case phaseResponse:
		if snapshot == nil {
			snapshot = s.respHeaders.clone()
		}
		s.lastResp = snapshot
		s.respHeaders = nil
	}
	s.phase = phaseNone
	s.deliver(Result{Action: Continue, Headers: snapshot}, nil)
}

// apply carries out a deferred action after the module's callback returned.
func (s *Stream) apply(a action) {
	if s.closed {
		return
	}
	switch a.kind {
	case actLocalReply:
		if s.answered {
			s.h.violation("stream %d on worker %d: a second answer (local reply %d after the stream was already answered) was ignored", s.id, s.w.id, a.lr.Status)
			return
		}
		if s.waiter == nil {
			s.h.violation("stream %d on worker %d: local reply %d while the stream was not paused in a headers callback was ignored", s.id, s.w.id, a.lr.Status)
			return
		}
		s.answered = true
		s.details = a.lr.Details
		if s.reqHeaders != nil {
			s.lastReq = s.reqHeaders.clone()
			s.reqHeaders = nil
		}
		s.respHeaders = nil
		s.phase = phaseNone
		s.deliver(Result{Action: LocalReply, Local: a.lr}, nil)
	case actContinueRequest, actContinueResponse:
		ph := phaseRequest
		if a.kind == actContinueResponse {
			ph = phaseResponse
		}
		if s.answered {
			s.h.violation("stream %d on worker %d: continue after the stream was answered was ignored", s.id, s.w.id)
			return
		}
		if s.phase != ph {
			return // not paused in that direction: nothing to continue
		}
		if s.inCall {
			s.continued = true
			return
		}
		if s.waiter != nil {
			s.deliverContinue(ph, a.headers)
		}
	case actClose:
		if s.answered {
			s.h.violation("stream %d on worker %d: close after the stream was answered was ignored", s.id, s.w.id)
			return
		}
		s.answered = true
		s.details = "wasm_close_stream"
		s.phase = phaseNone
		s.deliver(Result{Action: Reset}, nil)
	}
}

// failVM is called when the VM holding the stream's context crashed.
func (s *Stream) failVM() {
	s.vmFailed = true
	s.v = nil
	if s.reqHeaders != nil {
		s.lastReq = s.reqHeaders.clone()
	}
	if s.respHeaders != nil {
		s.lastResp = s.respHeaders.clone()
	}
	s.reqHeaders, s.respHeaders = nil, nil
	if s.waiter == nil || s.answered {
		return
	}
	if s.h.cfg.Plugin.FailOpen {
		res := Result{Action: Continue, Headers: s.lastReq}
		if s.phase == phaseResponse {
			res.Headers = s.lastResp
		}
		s.phase = phaseNone
		s.deliver(res, nil)
		return
	}
	s.answered, s.failSent = true, true
	s.details = "wasm_fail_stream"
	s.phase = phaseNone
	s.deliver(failResult(), nil)
}

// Close ends the stream as Envoy does when a request completes or the
// client goes away: proxy_on_log (with the final request and response
// headers readable), proxy_on_done and proxy_on_delete. A paused stream's
// pending callout then finds the stream gone. Close is idempotent.
func (s *Stream) Close() {
	s.w.runSync(func() {
		if s.closed {
			return
		}
		s.closed = true
		s.waiter = nil
		v := s.v
		if v == nil || v.dead || s.id == 0 || v.streams[s.id] != s {
			return
		}
		if s.reqHeaders != nil {
			s.lastReq = s.reqHeaders.clone()
			s.reqHeaders = nil
		}
		if s.respHeaders != nil {
			s.lastResp = s.respHeaders.clone()
			s.respHeaders = nil
		}
		s.logPhase = true
		if v.fnLog != nil {
			if v.callVoid("proxy_on_log", s.id, v.fnLog, uint64(s.id)) != nil {
				return
			}
		}
		s.logPhase = false
		if v.fnDone != nil {
			if _, err := v.call("proxy_on_done", s.id, v.fnDone, uint64(s.id)); err != nil {
				return
			}
		}
		if v.fnDelete != nil {
			if v.callVoid("proxy_on_delete", s.id, v.fnDelete, uint64(s.id)) != nil {
				return
			}
		}
		delete(v.streams, s.id)
	})
}

// SetResponseHeaders records the response headers for proxy_on_log and
// the response.* properties when the response did not go through
// ResponseHeaders (for example a response that bypassed the filter).
func (s *Stream) SetResponseHeaders(headers [][2]string) {
	h := lower(headers)
	s.w.runSync(func() { s.lastResp = h })
}

// FilterState returns a value the module set with proxy_set_property, by
// its filter state name ("wasm.<property>"), as the access log's
// %FILTER_STATE(wasm.<property>:PLAIN)% prints it. It can be read after
// Close.
func (s *Stream) FilterState(name string) (string, bool) {
	s.fsMu.Lock()
	defer s.fsMu.Unlock()
	v, ok := s.filterState[name]
	return string(v), ok
}

// Details returns the response code details the filter gave with its
// local reply ("wasm_fail_stream" when the VM crashed), or "".
func (s *Stream) Details() string {
	var d string
	if !s.w.runSync(func() { d = s.details }) {
		return ""
	}
	return d
}

func (s *Stream) setFilterState(key string, value []byte) {
	s.fsMu.Lock()
	if s.filterState == nil {
		s.filterState = map[string][]byte{}
	}
	s.filterState[key] = append([]byte(nil), value...)
	s.fsMu.Unlock()
}

func (s *Stream) getFilterState(key string) ([]byte, bool) {
	s.fsMu.Lock()
	defer s.fsMu.Unlock()
	v, ok := s.filterState[key]
	return v, ok
}

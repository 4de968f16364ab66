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

// Action is what the filter decided for a headers or body call.
type Action int

const (
	// Continue: the filter lets the stream go on. Forward Result.Headers
	// (when set) and Result.Body.
	Continue Action = iota
	// LocalReply: answer the client with Result.Local; nothing more is sent
	// upstream (for the request) or the upstream response is replaced (for
	// the response).
	LocalReply
	// Reset: the filter closed the stream (proxy_close_stream); reset the
	// client's connection.
	Reset
	// Stopped: the filter holds the stream and expects more of the body:
	// send it with RequestBody (or ResponseBody). The call that carries the
	// end of stream waits for the filter to continue or answer. Result.Headers
	// and Result.Body, when set, were released before the filter stopped and
	// must still be forwarded.
	Stopped
)

func (a Action) String() string {
	switch a {
	case Continue:
		return "continue"
	case LocalReply:
		return "local reply"
	case Reset:
		return "reset"
	case Stopped:
		return "stopped"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Result is the outcome of a headers or body call, after any pause.
type Result struct {
	Action Action
	// Headers are the headers to forward, lower-case names: in the Result
	// of a headers call that continued, and in the Result of a body call
	// that released headers the filter had held (Plugin.AllowOnHeadersStopIteration).
	// Nil when no headers are released by this call.
	Headers [][2]string
	// Body is the body data to forward now (body calls): the chunk as the
	// filter left it, or everything the filter had held when it continues.
	Body []byte
	// EndOfStream reports whether what is forwarded (Headers, or Body) ends
	// the stream.
	EndOfStream bool
	Local       *LocalResponse // LocalReply
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

func (ph phase) String() string {
	if ph == phaseResponse {
		return "response"
	}
	return "request"
}

type outcome struct {
	res Result
	err error
}

// flow is the state of one direction (request or response) of a stream as
// Envoy's filter manager and Wasm context keep it for this filter.
type flow struct {
	started   bool   // the headers call was made
	hdrDone   bool   // the headers went on (continued, or passed without the module)
	held      bool   // the filter stopped iteration: it holds the headers and/or data
	stopAll   bool   // stopped in headers with StopAll: data waits for a continue
	streaming bool   // held data is flow controlled (watermark) rather than size limited
	buffering bool   // the filter buffers (Envoy's buffering_*_body_): it sees all held data
	inBody    bool   // a body callback of this direction is running
	complete  bool   // the caller sent the end of stream
	body      []byte // data held for the filter (Envoy's buffered request/response data)
	chunk     []byte // the running body callback's data when the filter does not buffer
	// pending is what the filter released while no call waited (a continue
	// from an HTTP call callback, say); the next call of this direction
	// returns it first.
	pending *Result
}

// Stream is one HTTP request through the filter. Its methods may be called
// from any goroutine, one at a time, in stream order: RequestHeaders, then
// RequestBody for each body chunk (when the request has a body), then
// ResponseHeaders and ResponseBody, then Close.
type Stream struct {
	h     *Host
	w     *worker
	props Props
	start time.Time

	// Owned by the worker goroutine.
	v             *vm
	id            uint32
	reqHeaders    *headerMap // accessible to the module; nil otherwise
	respHeaders   *headerMap
	lastReq       [][2]string
	lastResp      [][2]string
	req, resp     flow
	phase         phase // direction of the running callback or of the waiting call
	waiter        chan outcome
	inCall        bool
	continued     bool
	answered      bool
	pendingAnswer *Result // an answer given while no call waited
	vmFailed      bool    // the VM holding this stream's context crashed
	failSent      bool    // the host answered 503 wasm_fail_stream
	closed        bool
	logPhase      bool
	details       string

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
//
// endOfStream is false when a body follows: send it with RequestBody once
// RequestHeaders returned. A pause in the headers callback makes Envoy stop
// all iteration (proxy-wasm-cpp-host turns the ABI's StopIteration into
// StopAllIterationAndWatermark), so the filter sees no body until it
// continues, and RequestHeaders keeps waiting. Only with
// Plugin.AllowOnHeadersStopIteration does a pause with a body to come return
// at once with Action Stopped: the filter then receives the body while it
// holds the headers, and a later Result releases them.
func (s *Stream) RequestHeaders(ctx context.Context, headers [][2]string, endOfStream bool) (Result, error) {
	return s.headers(ctx, phaseRequest, headers, endOfStream)
}

// ResponseHeaders runs proxy_on_response_headers with the response (from
// upstream, or a local reply: Envoy runs its encoder filters on those too)
// and blocks like RequestHeaders.
func (s *Stream) ResponseHeaders(ctx context.Context, headers [][2]string, endOfStream bool) (Result, error) {
	return s.headers(ctx, phaseResponse, headers, endOfStream)
}

// RequestBody gives the filter a chunk of the request body, as Envoy's
// decodeData does: proxy_on_request_body(context, size, end_of_stream),
// where the buffer the filter reads (proxy_get_buffer_bytes) and edits
// (proxy_set_buffer_bytes) is this chunk or, when the filter returned
// StopIterationAndBuffer before (the SDKs' Pause), everything it buffered
// with this chunk appended.
//
// The Result says what to forward: Continue with Result.Body (and
// Result.Headers when this call released headers the filter held), Stopped
// when the filter holds the data and more is expected (only when
// endOfStream is false), LocalReply or Reset. With endOfStream true, a
// filter that holds the data makes RequestBody wait until it continues
// (proxy_continue_stream) or answers, like RequestHeaders. Buffered data
// beyond Config.BufferLimit answers 413 request_payload_too_large (Envoy's
// per_connection_buffer_limit_bytes); data held under flow control
// (StopIterationAndWatermark) makes the call wait instead, as Envoy stops
// reading. Call it only after RequestHeaders returned, one chunk at a time.
func (s *Stream) RequestBody(ctx context.Context, data []byte, endOfStream bool) (Result, error) {
	return s.body(ctx, phaseRequest, data, endOfStream)
}

// ResponseBody gives the filter a chunk of the response body, as Envoy's
// encodeData does, with the semantics of RequestBody. Buffered data beyond
// Config.BufferLimit answers 500 response_payload_too_large while the
// response headers are still held, and resets the stream once they went
// on.
func (s *Stream) ResponseBody(ctx context.Context, data []byte, endOfStream bool) (Result, error) {
	return s.body(ctx, phaseResponse, data, endOfStream)
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
	return s.await(ctx, ch)
}

func (s *Stream) body(ctx context.Context, ph phase, data []byte, eos bool) (Result, error) {
	if s.h.closed.Load() {
		return Result{}, ErrClosed
	}
	ch := make(chan outcome, 1)
	b := append([]byte(nil), data...)
	if !s.w.post(func() { s.runBody(ph, b, eos, ch) }) {
		return Result{}, ErrClosed
	}
	return s.await(ctx, ch)
}

func (s *Stream) await(ctx context.Context, ch chan outcome) (Result, error) {
	select {
	case o := <-ch:
		return o.res, o.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

func (s *Stream) dir(ph phase) *flow {
	if ph == phaseResponse {
		return &s.resp
	}
	return &s.req
}

// hdrs returns the headers of a direction the module can access, or nil.
func (s *Stream) hdrs(ph phase) *headerMap {
	if ph == phaseResponse {
		return s.respHeaders
	}
	return s.reqHeaders
}

// dropHeaders makes a direction's headers inaccessible to the module and
// records them for proxy_on_log, as Envoy does on continue; snap, when not
// nil, is what proxy_continue_stream captured.
func (s *Stream) dropHeaders(ph phase, snap [][2]string) [][2]string {
	if ph == phaseResponse {
		if snap == nil {
			if s.respHeaders != nil {
				snap = s.respHeaders.clone()
			} else {
				snap = s.lastResp
			}
		}
		s.lastResp, s.respHeaders = snap, nil
		return snap
	}
	if snap == nil {
		if s.reqHeaders != nil {
			snap = s.reqHeaders.clone()
		} else {
			snap = s.lastReq
		}
	}
	s.lastReq, s.reqHeaders = snap, nil
	return snap
}

func (s *Stream) runHeaders(ph phase, headers [][2]string, eos bool, ch chan outcome) {
	if s.closed {
		ch <- outcome{err: ErrStreamClosed}
		return
	}
	if s.waiter != nil {
		ch <- outcome{err: fmt.Errorf("host: stream %d: a call on this stream is still waiting: make one call at a time, in stream order", s.id)}
		return
	}
	d := s.dir(ph)
	if d.started {
		ch <- outcome{err: fmt.Errorf("host: stream %d: %s headers were already sent: send them once", s.id, ph)}
		return
	}
	if ph == phaseRequest && (s.answered || s.pendingAnswer != nil) {
		ch <- outcome{err: fmt.Errorf("host: stream %d was already answered", s.id)}
		return
	}
	d.started, d.complete = true, eos
	pass := func() {
		d.hdrDone = true
		ch <- outcome{res: Result{Action: Continue, Headers: lower(headers), EndOfStream: eos}}
	}
	if s.vmFailed {
		// The VM holding this stream's context crashed (Envoy: CHECK_FAIL).
		if s.failSent || s.answered || s.h.cfg.Plugin.FailOpen {
			pass()
			return
		}
		s.failSent, s.answered = true, true
		ch <- outcome{res: failResult()}
		return
	}
	if s.id == 0 && ph == phaseResponse {
		// No context was created (no request headers went through the
		// filter): Envoy continues without calling the module.
		pass()
		return
	}
	v := s.w.ensureVM()
	if v == nil {
		s.vmFailed = true
		if s.h.cfg.Plugin.FailOpen {
			pass()
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
		s.release(ph, nil)
		return
	}
	s.inCall, s.continued = true, false
	r, err := v.call(name, s.id, f, uint64(s.id), uint64(len(headers)), b2u(eos))
	s.inCall = false
	stopped := v.stopIteration
	if err != nil || s.waiter == nil {
		return // answered by a local reply, a reset or the crash handling
	}
	st := headersStatus(uint32(r), stopped, s.h.cfg.Plugin.AllowOnHeadersStopIteration)
	if s.continued || st == hdrContinue {
		s.release(ph, nil)
		return
	}
	// The filter paused: a later continue or answer ends the wait.
	d.held = true
	d.stopAll = st != hdrStopIteration
	d.streaming = st != hdrStopAllBuffer
	if st == hdrStopIteration && !eos {
		// Envoy keeps giving the body to a filter that stopped only the
		// headers: the caller must send it now.
		s.deliver(ph, Result{Action: Stopped})
	}
}

// Filter header statuses as Envoy's filter manager sees them.
const (
	hdrContinue = iota
	hdrStopIteration
	hdrStopAllBuffer
	hdrStopAllWatermark
)

// headersStatus converts a headers callback's return value as
// proxy-wasm-cpp-host and Envoy do: after a local reply, or for an unknown
// value, StopAllIterationAndWatermark; StopIteration (1, the SDKs' Pause)
// becomes StopAllIterationAndWatermark unless the plugin allows it;
// ContinueAndEndStream (2) is treated as Continue.
func headersStatus(r uint32, localReply, allowStopIteration bool) int {
	switch {
	case localReply || r > 4:
		return hdrStopAllWatermark
	case r == 0 || r == 2:
		return hdrContinue
	case r == 1 && allowStopIteration:
		return hdrStopIteration
	case r == 3:
		return hdrStopAllBuffer
	}
	return hdrStopAllWatermark
}

// Filter data statuses of the ABI.
const (
	dataContinue = iota
	dataStopAndBuffer
	dataStopAndWatermark
	dataStopNoBuffer
)

// dataStatus converts a body callback's return value as proxy-wasm-cpp-host
// does: after a local reply, or for an unknown value, StopIterationNoBuffer.
func dataStatus(r uint32, localReply bool) int {
	if localReply || r > dataStopNoBuffer {
		return dataStopNoBuffer
	}
	return int(r)
}

func (s *Stream) runBody(ph phase, data []byte, eos bool, ch chan outcome) {
	d := s.dir(ph)
	switch {
	case s.closed:
		ch <- outcome{err: ErrStreamClosed}
		return
	case s.pendingAnswer != nil:
		// The filter answered while no call waited: this is the answer.
		res := *s.pendingAnswer
		s.pendingAnswer = nil
		ch <- outcome{res: res}
		return
	case s.answered && ph == phaseRequest:
		ch <- outcome{err: fmt.Errorf("host: stream %d was already answered (a local reply or a reset): send no more of its %s", s.id, ph)}
		return
	case s.waiter != nil:
		ch <- outcome{err: fmt.Errorf("host: stream %d: a call on this stream is still waiting: send the %s body only after the previous call returned", s.id, ph)}
		return
	case !d.started:
		ch <- outcome{err: fmt.Errorf("host: stream %d: %s body before its headers: call %sHeaders first", s.id, ph, title(ph))}
		return
	case d.complete:
		ch <- outcome{err: fmt.Errorf("host: stream %d: the %s already ended (end of stream was sent)", s.id, ph)}
		return
	}
	d.complete = eos
	v := s.v
	if s.vmFailed || s.id == 0 || v == nil || v.dead {
		if s.vmFailed && !s.h.cfg.Plugin.FailOpen && !s.failSent {
			// Envoy's failStream: the first call after the crash answers 503.
			s.failSent, s.answered = true, true
			s.details = "wasm_fail_stream"
			ch <- outcome{res: failResult()}
			return
		}
		// No context in the VM (or fail open): the data passes unfiltered.
		s.waiter, s.phase = ch, ph
		s.passData(ph, data, eos)
		return
	}
	limit := s.h.bufferLimit()
	if d.buffering {
		// Envoy's decodeData adds the chunk to the buffered data before it
		// calls the module, which then sees all of it.
		d.body = append(d.body, data...)
		s.waiter, s.phase = ch, ph
		if len(d.body) > limit && !d.streaming {
			s.tooLarge(ph)
			return
		}
	} else {
		d.chunk = data
		s.waiter, s.phase = ch, ph
	}
	f, name := v.fnRequestBody, "proxy_on_request_body"
	if ph == phaseResponse {
		f, name = v.fnResponseBody, "proxy_on_response_body"
	}
	st := dataContinue
	s.continued = false
	if f != nil {
		size := len(d.chunk)
		if d.buffering {
			size = len(d.body)
		}
		s.inCall, d.inBody = true, true
		r, err := v.call(name, s.id, f, uint64(s.id), uint64(size), b2u(eos))
		s.inCall, d.inBody = false, false
		if err != nil || s.waiter == nil {
			d.chunk = nil
			return // answered by a local reply, a reset or the crash handling
		}
		st = dataStatus(uint32(r), v.stopIteration)
	}
	wasBuffering := d.buffering
	d.buffering = false
	if s.continued {
		st = dataContinue
	}
	if st == dataContinue {
		if d.held {
			// Envoy's commonHandleAfterDataCallback: a stopped filter that
			// continues from a body callback releases what it held.
			if !wasBuffering {
				d.body = append(d.body, d.chunk...)
			}
			d.chunk = nil
			s.release(ph, nil)
			return
		}
		s.passData(ph, d.chunk, eos)
		d.chunk = nil
		return
	}
	if st != dataStopNoBuffer && !wasBuffering {
		d.body = append(d.body, d.chunk...)
	}
	d.chunk = nil // StopIterationNoBuffer drops the chunk: the filter took it
	d.held = true
	switch st {
	case dataStopAndBuffer:
		d.buffering, d.streaming = true, false
	case dataStopAndWatermark:
		d.streaming = true
	}
	if len(d.body) > limit {
		if !d.streaming {
			s.tooLarge(ph)
			return
		}
		return // flow control: the caller waits until the filter continues
	}
	if eos {
		return // the filter holds the whole body: wait for its continue or answer
	}
	s.deliver(ph, Result{Action: Stopped})
}

// passData hands data on that the filter let through.
func (s *Stream) passData(ph phase, data []byte, eos bool) {
	d := s.dir(ph)
	s.deliver(ph, Result{Action: Continue, Body: data, EndOfStream: eos && !d.held})
}

// tooLarge answers a stream whose buffered body went past the buffer
// limit, as Envoy's filter manager does: 413 for a request, 500 for a
// response whose headers were not sent yet, else a reset.
func (s *Stream) tooLarge(ph phase) {
	d := s.dir(ph)
	limit := s.h.bufferLimit()
	d.body, d.chunk, d.held, d.buffering = nil, nil, false, false
	s.answered = true
	if ph == phaseResponse && d.hdrDone {
		s.details = "response_payload_too_large"
		s.h.logf(s.w.id, LogDebug, "host", "stream %d: the filter buffered more than %d bytes of the response after its headers went out: resetting the stream", s.id, limit)
		s.deliver(ph, Result{Action: Reset})
		return
	}
	lr := &LocalResponse{Status: 413, Body: []byte("Payload Too Large"), Details: "request_payload_too_large", GRPCStatus: -1}
	if ph == phaseResponse {
		lr = &LocalResponse{Status: 500, Body: []byte("Internal Server Error"), Details: "response_payload_too_large", GRPCStatus: -1}
	}
	s.details = lr.Details
	s.h.logf(s.w.id, LogDebug, "host", "stream %d: the filter buffered more than %d bytes of the %s body (the buffer limit): answering %d %s", s.id, limit, ph, lr.Status, lr.Details)
	if ph == phaseRequest && s.reqHeaders != nil {
		s.dropHeaders(phaseRequest, nil)
	}
	s.respHeaders = nil
	s.deliver(ph, Result{Action: LocalReply, Local: lr})
}

func title(ph phase) string {
	if ph == phaseResponse {
		return "Response"
	}
	return "Request"
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

// deliver hands a direction's outcome to the waiting call, after what the
// filter released while no call waited; with no call waiting it keeps it
// for the next one.
func (s *Stream) deliver(ph phase, res Result) {
	d := s.dir(ph)
	if res.Action == LocalReply || res.Action == Reset {
		d.pending = nil
		if s.waiter == nil {
			s.pendingAnswer = &res
			return
		}
	} else if p := d.pending; p != nil {
		d.pending = nil
		merged := *p
		if merged.Headers == nil {
			merged.Headers = res.Headers
		}
		merged.Body = append(merged.Body, res.Body...)
		merged.EndOfStream = merged.EndOfStream || res.EndOfStream
		merged.Action = res.Action
		res = merged
	}
	if s.waiter == nil {
		d.pending = &res
		return
	}
	s.waiter <- outcome{res: res}
	s.waiter = nil
	s.phase = phaseNone
}

// deliverErr ends the waiting call with an error.
func (s *Stream) deliverErr(err error) {
	if s.waiter != nil {
		s.waiter <- outcome{err: err}
		s.waiter = nil
		s.phase = phaseNone
	}
}

// release continues a direction the filter held (Envoy's commonContinue):
// its headers, when not sent yet, and the data it held go on; headers and
// data become inaccessible to the module.
func (s *Stream) release(ph phase, snap [][2]string) {
	d := s.dir(ph)
	res := Result{Action: Continue, EndOfStream: d.complete}
	if !d.hdrDone {
		res.Headers = s.dropHeaders(ph, snap)
		if res.Headers == nil {
			res.Headers = [][2]string{}
		}
		d.hdrDone = true
	}
	res.Body = d.body
	d.body, d.chunk = nil, nil
	d.held, d.stopAll, d.streaming, d.buffering = false, false, false, false
	s.deliver(ph, res)
}

// heldPhase returns the direction the filter holds, or phaseNone.
func (s *Stream) heldPhase() phase {
	switch {
	case s.resp.held:
		return phaseResponse
	case s.req.held:
		return phaseRequest
	}
	return phaseNone
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
		ph := s.phase
		if ph == phaseNone {
			ph = s.heldPhase()
		}
		if s.waiter == nil && ph == phaseNone {
			s.h.violation("stream %d on worker %d: local reply %d while the stream was neither in a callback nor held by the filter was ignored", s.id, s.w.id, a.lr.Status)
			return
		}
		s.answered = true
		s.details = a.lr.Details
		if s.reqHeaders != nil {
			s.lastReq = s.reqHeaders.clone()
			s.reqHeaders = nil
		}
		s.respHeaders = nil
		s.clearHeld()
		s.deliver(ph, Result{Action: LocalReply, Local: a.lr})
	case actContinueRequest, actContinueResponse:
		ph := phaseRequest
		if a.kind == actContinueResponse {
			ph = phaseResponse
		}
		if s.answered {
			s.h.violation("stream %d on worker %d: continue after the stream was answered was ignored", s.id, s.w.id)
			return
		}
		if s.inCall && s.phase == ph {
			s.continued = true
			return
		}
		if !s.dir(ph).held {
			return // not held in that direction: nothing to continue
		}
		s.release(ph, a.headers)
	case actClose:
		if s.answered {
			s.h.violation("stream %d on worker %d: close after the stream was answered was ignored", s.id, s.w.id)
			return
		}
		ph := s.phase
		if ph == phaseNone {
			ph = s.heldPhase()
		}
		s.answered = true
		s.details = "wasm_close_stream"
		s.clearHeld()
		if ph == phaseNone {
			// Nothing waits and nothing is held: the next call learns of
			// the reset.
			s.pendingAnswer = &Result{Action: Reset}
			return
		}
		s.deliver(ph, Result{Action: Reset})
	}
}

// clearHeld drops whatever the filter held in both directions.
func (s *Stream) clearHeld() {
	for _, d := range []*flow{&s.req, &s.resp} {
		d.body, d.chunk, d.pending = nil, nil, nil
		d.held, d.stopAll, d.streaming, d.buffering = false, false, false, false
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
	ph := s.phase
	if ph == phaseNone {
		ph = s.heldPhase()
	}
	if s.answered || ph == phaseNone {
		return // flowing streams learn of the crash on their next call
	}
	if s.h.cfg.Plugin.FailOpen {
		// What the filter held goes on, unfiltered.
		d := s.dir(ph)
		if !d.buffering {
			d.body = append(d.body, d.chunk...)
		}
		s.release(ph, nil)
		return
	}
	s.answered, s.failSent = true, true
	s.details = "wasm_fail_stream"
	s.clearHeld()
	s.deliver(ph, failResult())
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

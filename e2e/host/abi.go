package host

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"

	"github.com/tetratelabs/wazero/api"
)

// sig builds a hostFunc from compact signatures: 'i' is i32, 'I' is i64.
func sig(params, results string, fn func(v *vm, s []uint64)) hostFunc {
	conv := func(p string) []api.ValueType {
		out := make([]api.ValueType, len(p))
		for i, c := range p {
			if c == 'I' {
				out[i] = api.ValueTypeI64
			} else {
				out[i] = api.ValueTypeI32
			}
		}
		return out
	}
	return hostFunc{params: conv(params), results: conv(results), fn: fn}
}

// ret stores a status as the function's i32 result.
func ret(s []uint64, st status) { s[0] = uint64(st) }

// u32 decodes an i32 parameter; the upper 32 bits of the stack slot may
// hold junk.
func u32(x uint64) uint32 { return uint32(x) }

// Buffer and map types of the ABI.
const (
	bufRequestBody      = 0
	bufResponseBody     = 1
	bufDownstreamData   = 2
	bufUpstreamData     = 3
	bufHTTPCallResponse = 4
	bufGrpcReceive      = 5
	bufVMConfiguration  = 6
	bufPluginConfig     = 7
	bufCallData         = 8

	mapRequestHeaders          = 0
	mapRequestTrailers         = 1
	mapResponseHeaders         = 2
	mapResponseTrailers        = 3
	mapGrpcInitialMetadata     = 4
	mapGrpcTrailingMetadata    = 5
	mapHTTPCallResponseHeaders = 6
	mapHTTPCallResponseTrailer = 7
)

// envFuncs are the env.proxy_* imports Envoy provides for ABI 0.2.x.
var envFuncs = map[string]hostFunc{
	"proxy_log":                          sig("iii", "i", hLog),
	"proxy_get_log_level":                sig("i", "i", hGetLogLevel),
	"proxy_get_status":                   sig("iii", "i", hGetStatus),
	"proxy_set_property":                 sig("iiii", "i", hSetProperty),
	"proxy_get_property":                 sig("iiii", "i", hGetProperty),
	"proxy_send_local_response":          sig("iiiiiiii", "i", hSendLocalResponse),
	"proxy_get_shared_data":              sig("iiiii", "i", hGetSharedData),
	"proxy_set_shared_data":              sig("iiiii", "i", hSetSharedData),
	"proxy_register_shared_queue":        sig("iii", "i", hRegisterQueue),
	"proxy_resolve_shared_queue":         sig("iiiii", "i", hResolveQueue),
	"proxy_dequeue_shared_queue":         sig("iii", "i", hDequeue),
	"proxy_enqueue_shared_queue":         sig("iii", "i", hEnqueue),
	"proxy_get_header_map_value":         sig("iiiii", "i", hGetHeaderMapValue),
	"proxy_add_header_map_value":         sig("iiiii", "i", hAddHeaderMapValue),
	"proxy_replace_header_map_value":     sig("iiiii", "i", hReplaceHeaderMapValue),
	"proxy_remove_header_map_value":      sig("iii", "i", hRemoveHeaderMapValue),
	"proxy_get_header_map_pairs":         sig("iii", "i", hGetHeaderMapPairs),
	"proxy_set_header_map_pairs":         sig("iii", "i", hSetHeaderMapPairs),
	"proxy_get_header_map_size":          sig("ii", "i", hGetHeaderMapSize),
	"proxy_get_buffer_status":            sig("iii", "i", hGetBufferStatus),
	"proxy_get_buffer_bytes":             sig("iiiii", "i", hGetBufferBytes),
	"proxy_set_buffer_bytes":             sig("iiiii", "i", hSetBufferBytes),
	"proxy_http_call":                    sig("iiiiiiiiii", "i", hHTTPCall),
	"proxy_grpc_call":                    sig("iiiiiiiiiiii", "i", hGrpcCall),
	"proxy_grpc_stream":                  sig("iiiiiiiii", "i", hGrpcStream),
	"proxy_grpc_send":                    sig("iiii", "i", hGrpcNotFound),
	"proxy_grpc_cancel":                  sig("i", "i", hGrpcNotFound),
	"proxy_grpc_close":                   sig("i", "i", hGrpcNotFound),
	"proxy_set_tick_period_milliseconds": sig("i", "i", hSetTickPeriod),
	"proxy_get_current_time_nanoseconds": sig("i", "i", hGetCurrentTime),
	"proxy_define_metric":                sig("iiii", "i", hDefineMetric),
	"proxy_increment_metric":             sig("iI", "i", hIncrementMetric),
	"proxy_record_metric":                sig("iI", "i", hRecordMetric),
	"proxy_get_metric":                   sig("ii", "i", hGetMetric),
	"proxy_set_effective_context":        sig("i", "i", hSetEffectiveContext),
	"proxy_done":                         sig("", "i", hDone),
	"proxy_call_foreign_function":        sig("iiiiii", "i", hCallForeignFunction),
	"proxy_continue_stream":              sig("i", "i", hContinueStream),
	"proxy_close_stream":                 sig("i", "i", hCloseStream),
	// Envoy also links these two for Emscripten-built modules.
	"pthread_equal":                   sig("ii", "i", func(v *vm, s []uint64) { s[0] = b2u(u32(s[0]) == u32(s[1])) }),
	"emscripten_notify_memory_growth": sig("i", "", func(v *vm, s []uint64) {}),
}

func hLog(v *vm, s []uint64) {
	level, ptr, size := u32(s[0]), u32(s[1]), u32(s[2])
	if level > 5 {
		ret(s, statusBadArgument)
		return
	}
	msg, ok := v.readString(ptr, size)
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	v.guestLog(LogLevel(level+1), msg)
	ret(s, statusOK)
}

func hGetLogLevel(v *vm, s []uint64) {
	if !v.writeU32(u32(s[0]), uint32(v.w.h.cfg.LogLevel-1)) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

func hGetStatus(v *vm, s []uint64) {
	code := uint32(0)
	msg := ""
	if v.callResp != nil {
		code, msg = v.callResp.statusCode, v.callResp.statusMessage
	}
	if !v.writeU32(u32(s[0]), code) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, v.copyOut([]byte(msg), u32(s[1]), u32(s[2])))
}

func hSetProperty(v *vm, s []uint64) {
	key, ok1 := v.readString(u32(s[0]), u32(s[1]))
	val, ok2 := v.read(u32(s[2]), u32(s[3]))
	if !ok1 || !ok2 {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	st, _ := v.target()
	if st == nil {
		ret(s, statusNotFound) // the plugin context has no stream info
		return
	}
	st.setFilterState("wasm."+key, val)
	ret(s, statusOK)
}

func hGetProperty(v *vm, s []uint64) {
	path, ok := v.readString(u32(s[0]), u32(s[1]))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	st, _ := v.target()
	val, code := v.property(st, path)
	if code != statusOK {
		ret(s, code)
		return
	}
	ret(s, v.copyOut(val, u32(s[2]), u32(s[3])))
}

func hSendLocalResponse(v *vm, s []uint64) {
	code := u32(s[0])
	details, ok1 := v.readString(u32(s[1]), u32(s[2]))
	body, ok2 := v.read(u32(s[3]), u32(s[4]))
	hdrs, ok3 := v.read(u32(s[5]), u32(s[6]))
	if !ok1 || !ok2 || !ok3 {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	lr := &LocalResponse{
		Status:     int(code),
		Headers:    decodePairs(hdrs),
		Body:       append([]byte(nil), body...),
		Details:    replaceSpace(details),
		GRPCStatus: int32(u32(s[7])),
	}
	v.stopIteration = true
	if st, _ := v.target(); st != nil {
		v.actions = append(v.actions, action{kind: actLocalReply, s: st, lr: lr})
	}
	ret(s, statusOK)
}

// replaceSpace is Envoy's StringUtil::replaceAllEmptySpace.
func replaceSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, s)
}

func hGetSharedData(v *vm, s []uint64) {
	key, ok := v.readString(u32(s[0]), u32(s[1]))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	val, cas, found := v.w.h.store.getShared(v.w.h.cfg.Plugin.VMID, key)
	if !found {
		ret(s, statusNotFound)
		return
	}
	if st := v.copyOut(val, u32(s[2]), u32(s[3])); st != statusOK {
		ret(s, st)
		return
	}
	if !v.writeU32(u32(s[4]), cas) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

func hSetSharedData(v *vm, s []uint64) {
	key, ok1 := v.readString(u32(s[0]), u32(s[1]))
	val, ok2 := v.read(u32(s[2]), u32(s[3]))
	if !ok1 || !ok2 {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, v.w.h.store.setShared(v.w.h.cfg.Plugin.VMID, key, val, u32(s[4])))
}

func hRegisterQueue(v *vm, s []uint64) {
	name, ok := v.readString(u32(s[0]), u32(s[1]))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	w, gen := v.w, v.gen
	tok := v.w.h.store.registerQueue(v.w.h.cfg.Plugin.VMID, name, func(token uint32) {
		w.post(func() {
			cur := w.vm
			if cur == nil || cur.dead || cur.gen != gen || cur.fnQueueReady == nil {
				return
			}
			cur.callVoid("proxy_on_queue_ready", cur.rootID, cur.fnQueueReady, uint64(cur.rootID), uint64(token))
		})
	})
	if !v.writeU32(u32(s[2]), tok) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

func hResolveQueue(v *vm, s []uint64) {
	vmID, ok1 := v.readString(u32(s[0]), u32(s[1]))
	name, ok2 := v.readString(u32(s[2]), u32(s[3]))
	if !ok1 || !ok2 {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	if vmID == "" {
		vmID = v.w.h.cfg.Plugin.VMID
	}
	tok, found := v.w.h.store.resolveQueue(vmID, name)
	if !found {
		ret(s, statusNotFound)
		return
	}
	if !v.writeU32(u32(s[4]), tok) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

func hDequeue(v *vm, s []uint64) {
	val, st := v.w.h.store.dequeue(u32(s[0]))
	if st != statusOK {
		ret(s, st)
		return
	}
	ret(s, v.copyOut(val, u32(s[1]), u32(s[2])))
}

func hEnqueue(v *vm, s []uint64) {
	val, ok := v.read(u32(s[1]), u32(s[2]))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, v.w.h.store.enqueue(u32(s[0]), val))
}

// Header maps ---------------------------------------------------------------

// mutableMap returns the map the module may modify now, or nil (Envoy's
// getMap).
func (v *vm) mutableMap(t uint32) *headerMap {
	st, _ := v.target()
	if st == nil {
		return nil
	}
	switch t {
	case mapRequestHeaders:
		return st.reqHeaders
	case mapResponseHeaders:
		return st.respHeaders
	}
	return nil
}

// constMap returns the map the module may read now (Envoy's getConstMap):
// in proxy_on_log the final request and response headers.
func (v *vm) constMap(t uint32) (pairs [][2]string, present bool, logPhase bool) {
	st, _ := v.target()
	if st != nil {
		logPhase = st.logPhase
	}
	switch t {
	case mapRequestHeaders:
		if st == nil {
			return nil, false, false
		}
		if st.logPhase {
			return st.lastReq, st.lastReq != nil, true
		}
		if st.reqHeaders != nil {
			return st.reqHeaders.pairs, true, false
		}
	case mapResponseHeaders:
		if st == nil {
			return nil, false, false
		}
		if st.logPhase {
			return st.lastResp, st.lastResp != nil, true
		}
		if st.respHeaders != nil {
			return st.respHeaders.pairs, true, false
		}
	case mapHTTPCallResponseHeaders:
		if v.callResp != nil {
			return v.callResp.headers, true, logPhase
		}
	case mapHTTPCallResponseTrailer:
		if v.callResp != nil && v.callResp.trailers != nil {
			return v.callResp.trailers, true, logPhase
		}
	}
	return nil, false, logPhase
}

func hGetHeaderMapValue(v *vm, s []uint64) {
	t := u32(s[0])
	if t > mapHTTPCallResponseTrailer {
		ret(s, statusBadArgument)
		return
	}
	key, ok := v.readString(u32(s[1]), u32(s[2]))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	pairs, present, logPhase := v.constMap(t)
	if !present {
		if logPhase {
			ret(s, statusNotFound)
		} else {
			ret(s, statusBadArgument) // the map is not available in this callback
		}
		return
	}
	key = strings.ToLower(key)
	for _, p := range pairs {
		if p[0] == key {
			ret(s, v.copyOut([]byte(p[1]), u32(s[3]), u32(s[4])))
			return
		}
	}
	ret(s, statusNotFound)
}

func hAddHeaderMapValue(v *vm, s []uint64)     { modifyMap(v, s, 'a') }
func hReplaceHeaderMapValue(v *vm, s []uint64) { modifyMap(v, s, 'r') }

func modifyMap(v *vm, s []uint64, op byte) {
	t := u32(s[0])
	if t > mapHTTPCallResponseTrailer {
		ret(s, statusBadArgument)
		return
	}
	key, ok1 := v.readString(u32(s[1]), u32(s[2]))
	val, ok2 := v.readString(u32(s[3]), u32(s[4]))
	if !ok1 || !ok2 {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	m := v.mutableMap(t)
	if m == nil {
		ret(s, statusBadArgument)
		return
	}
	if op == 'a' {
		m.add(key, val)
	} else {
		m.replace(key, val)
	}
	ret(s, statusOK)
}

func hRemoveHeaderMapValue(v *vm, s []uint64) {
	t := u32(s[0])
	if t > mapHTTPCallResponseTrailer {
		ret(s, statusBadArgument)
		return
	}
	key, ok := v.readString(u32(s[1]), u32(s[2]))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	m := v.mutableMap(t)
	if m == nil {
		ret(s, statusBadArgument)
		return
	}
	m.remove(key)
	ret(s, statusOK)
}

func hGetHeaderMapPairs(v *vm, s []uint64) {
	t := u32(s[0])
	if t > mapHTTPCallResponseTrailer {
		ret(s, statusBadArgument)
		return
	}
	pairs, _, _ := v.constMap(t)
	ret(s, v.copyOut(encodePairs(pairs), u32(s[1]), u32(s[2])))
}

func hSetHeaderMapPairs(v *vm, s []uint64) {
	t := u32(s[0])
	if t > mapHTTPCallResponseTrailer {
		ret(s, statusBadArgument)
		return
	}
	data, ok := v.read(u32(s[1]), u32(s[2]))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	m := v.mutableMap(t)
	if m == nil {
		ret(s, statusBadArgument)
		return
	}
	m.set(decodePairs(data))
	ret(s, statusOK)
}

func hGetHeaderMapSize(v *vm, s []uint64) {
	t := u32(s[0])
	if t > mapHTTPCallResponseTrailer {
		ret(s, statusBadArgument)
		return
	}
	m := v.mutableMap(t)
	if m == nil {
		ret(s, statusBadArgument)
		return
	}
	if !v.writeU32(u32(s[1]), m.byteSize()) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// Buffers --------------------------------------------------------------------

// buffer returns a buffer's bytes (Envoy's getBuffer). A body buffer is,
// as in Envoy's Wasm context, everything the filter buffered while it
// buffers (StopIterationAndBuffer), else the chunk of the running body
// callback, else empty. Stream data buffers (TCP filters) are empty.
func (v *vm) buffer(t uint32) ([]byte, status) {
	switch t {
	case bufRequestBody, bufResponseBody:
		if b := v.bodyBuffer(t); b != nil {
			return *b, statusOK
		}
		return nil, statusOK
	case bufDownstreamData, bufUpstreamData, bufGrpcReceive, bufCallData:
		return nil, statusOK
	case bufHTTPCallResponse:
		if v.callResp == nil {
			return nil, statusNotFound
		}
		return v.callResp.body, statusOK
	case bufVMConfiguration:
		return v.w.h.cfg.Plugin.VMConfiguration, statusOK
	case bufPluginConfig:
		if !v.configuring {
			return nil, statusNotFound
		}
		return v.w.h.cfg.Plugin.Configuration, statusOK
	}
	return nil, statusBadArgument
}

// bodyBuffer returns the body buffer the module may read and edit now, or
// nil when there is none.
func (v *vm) bodyBuffer(t uint32) *[]byte {
	st, _ := v.target()
	if st == nil {
		return nil
	}
	d := &st.req
	if t == bufResponseBody {
		d = &st.resp
	}
	switch {
	case d.buffering:
		return &d.body
	case d.inBody:
		return &d.chunk
	}
	return nil
}

func hGetBufferStatus(v *vm, s []uint64) {
	b, st := v.buffer(u32(s[0]))
	if st != statusOK {
		ret(s, st)
		return
	}
	if !v.writeU32(u32(s[1]), uint32(len(b))) || !v.writeU32(u32(s[2]), 0) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

func hGetBufferBytes(v *vm, s []uint64) {
	b, st := v.buffer(u32(s[0]))
	if st != statusOK {
		ret(s, st)
		return
	}
	start, length := uint64(u32(s[1])), uint64(u32(s[2]))
	size := uint64(len(b))
	if start > size {
		length = 0
	} else if start+length > size {
		length = size - start
	}
	if length == 0 {
		ret(s, v.copyOut(nil, u32(s[3]), u32(s[4])))
		return
	}
	ret(s, v.copyOut(b[start:start+length], u32(s[3]), u32(s[4])))
}

func hSetBufferBytes(v *vm, s []uint64) {
	t := u32(s[0])
	if _, st := v.buffer(t); st != statusOK {
		ret(s, st)
		return
	}
	data, ok := v.read(u32(s[3]), u32(s[4]))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	if t != bufRequestBody && t != bufResponseBody {
		ret(s, statusBadArgument) // immutable, or not a buffer this host lets modules edit
		return
	}
	b := v.bodyBuffer(t)
	if b == nil {
		ret(s, statusBadArgument) // Envoy: no body to edit outside a body callback
		return
	}
	ret(s, editBuffer(b, uint64(u32(s[1])), uint64(u32(s[2])), data))
}

// editBuffer applies proxy_set_buffer_bytes as Envoy's Buffer::copyFrom
// does: start 0 and length 0 prepends, start 0 and a length covering the
// buffer replaces it, a start at or past the end appends; anything else is
// BadArgument.
func editBuffer(b *[]byte, start, length uint64, data []byte) status {
	size := uint64(len(*b))
	switch {
	case start == 0 && length == 0:
		*b = append(append([]byte(nil), data...), *b...)
	case start == 0 && length >= size:
		*b = append([]byte(nil), data...)
	case start >= size:
		*b = append(*b, data...)
	default:
		return statusBadArgument
	}
	return statusOK
}

// HTTP calls -----------------------------------------------------------------

// calloutResult is what proxy_on_http_call_response sees.
type calloutResult struct {
	headers, trailers [][2]string
	body              []byte
	statusCode        uint32
	statusMessage     string
}

func hHTTPCall(v *vm, s []uint64) {
	h := v.w.h
	cluster, ok1 := v.readString(u32(s[0]), u32(s[1]))
	hdrs, ok2 := v.read(u32(s[2]), u32(s[3]))
	body, ok3 := v.read(u32(s[4]), u32(s[5]))
	trl, ok4 := v.read(u32(s[6]), u32(s[7]))
	timeoutMS := u32(s[8])
	tokPtr := u32(s[9])
	if !ok1 || !ok2 || !ok3 || !ok4 || !v.writeU32(tokPtr, 0) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	if int32(timeoutMS) < 0 {
		ret(s, statusBadArgument)
		return
	}
	if h.cfg.Clusters != nil && !h.cfg.Clusters(cluster) {
		h.logf(v.w.id, LogDebug, "wasm", "http call to unknown cluster %q refused (BadArgument)", cluster)
		ret(s, statusBadArgument)
		return
	}
	req := &CalloutRequest{Cluster: cluster, Headers: decodePairs(hdrs), Body: append([]byte(nil), body...), Trailers: decodePairs(trl)}
	m := newHeaderMap(req.Headers)
	for _, k := range []string{":path", ":method", ":authority"} {
		if _, ok := m.get(k); !ok {
			ret(s, statusBadArgument)
			return
		}
	}
	if len(req.Body) > 0 {
		m.replace("content-length", itoa(len(req.Body)))
	}
	req.Headers = m.pairs
	if timeoutMS > 0 {
		req.Timeout = time.Duration(timeoutMS) * time.Millisecond
	}
	v.nextCallout += 4
	token := v.nextCallout
	var ctx context.Context
	var cancel context.CancelFunc
	if req.Timeout > 0 {
		ctx, cancel = context.WithTimeout(h.baseCtx, req.Timeout)
	} else {
		ctx, cancel = context.WithCancel(h.baseCtx)
	}
	v.callouts[token] = cancel
	w, gen := v.w, v.gen
	go func() {
		res := runCallout(ctx, h.cfg.Callout, req)
		cancel()
		if res == nil {
			return // the host is closing
		}
		w.post(func() {
			cur := w.vm
			if cur == nil || cur.dead || cur.gen != gen {
				return // the VM that made the call is gone, and with it the call
			}
			cur.calloutDone(token, res)
		})
	}()
	v.writeU32(tokPtr, token)
	ret(s, statusOK)
}

func runCallout(ctx context.Context, fn CalloutFunc, req *CalloutRequest) (res *calloutResult) {
	defer func() {
		if r := recover(); r != nil {
			res = &calloutResult{statusCode: 14, statusMessage: "reset"}
		}
	}()
	if fn == nil {
		return localCalloutReply(503, "no healthy upstream")
	}
	resp, err := fn(ctx, req)
	switch {
	case err == nil && resp != nil:
		r := &calloutResult{headers: lower(resp.Headers), body: resp.Body, trailers: lower(resp.Trailers)}
		if _, ok := newHeaderMap(r.headers).get(":status"); !ok {
			r.headers = append([][2]string{{":status", "200"}}, r.headers...)
		}
		return r
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return localCalloutReply(504, "upstream request timeout")
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, ErrUnknownCluster):
		return localCalloutReply(503, "no healthy upstream")
	case errors.Is(err, ErrConnectFailure) || (err == nil && resp == nil):
		return localCalloutReply(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure")
	default:
		// Envoy's onFailure(Reset): no headers, no body.
		return &calloutResult{statusCode: 14, statusMessage: "reset"}
	}
}

// localCalloutReply is the local reply Envoy's router sends to its async
// client, which the module receives as a normal response.
func localCalloutReply(code int, body string) *calloutResult {
	return &calloutResult{
		headers: [][2]string{{":status", itoa(code)}, {"content-length", itoa(len(body))}, {"content-type", "text/plain"}},
		body:    []byte(body),
	}
}

func (v *vm) calloutDone(token uint32, res *calloutResult) {
	if _, ok := v.callouts[token]; !ok {
		return
	}
	delete(v.callouts, token)
	if v.fnHTTPCallResponse == nil {
		return
	}
	v.callResp = res
	v.callVoid("proxy_on_http_call_response", v.rootID, v.fnHTTPCallResponse,
		uint64(v.rootID), uint64(token), uint64(len(res.headers)), uint64(len(res.body)), uint64(len(res.trailers)))
	v.callResp = nil
}

func hGrpcCall(v *vm, s []uint64) {
	cluster, ok := v.readString(u32(s[0]), u32(s[1]))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	if c := v.w.h.cfg.Clusters; c != nil && !c(cluster) {
		ret(s, statusParseFailure) // Envoy's answer for an unknown cluster
		return
	}
	ret(s, statusUnimplemented)
}

func hGrpcStream(v *vm, s []uint64) { hGrpcCall(v, s) }

func hGrpcNotFound(v *vm, s []uint64) { ret(s, statusNotFound) }

// Timers, clocks, metrics ---------------------------------------------------

func hSetTickPeriod(v *vm, s []uint64) {
	v.w.setTickPeriod(time.Duration(u32(s[0])) * time.Millisecond)
	ret(s, statusOK)
}

func hGetCurrentTime(v *vm, s []uint64) {
	if !v.writeU64(u32(s[0]), uint64(time.Now().UnixNano())) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

func hDefineMetric(v *vm, s []uint64) {
	typ := u32(s[0])
	if typ > uint32(Histogram) {
		ret(s, statusBadArgument)
		return
	}
	name, ok := v.readString(u32(s[1]), u32(s[2]))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	m := v.w.h.store.defineMetric(MetricType(typ), name)
	v.nextMetricID[typ] += 4
	id := v.nextMetricID[typ]
	v.metricIDs[id] = m
	if !v.writeU32(u32(s[3]), id) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

func hIncrementMetric(v *vm, s []uint64) {
	id, offset := u32(s[0]), int64(s[1])
	m := v.metricIDs[id]
	switch MetricType(id & 3) {
	case Counter:
		if m == nil {
			ret(s, statusNotFound)
		} else if offset <= 0 {
			ret(s, statusBadArgument)
		} else {
			m.add(offset)
			ret(s, statusOK)
		}
	case Gauge:
		if m == nil {
			ret(s, statusNotFound)
		} else {
			m.add(offset)
			ret(s, statusOK)
		}
	default:
		ret(s, statusBadArgument)
	}
}

func hRecordMetric(v *vm, s []uint64) {
	id, value := u32(s[0]), s[1]
	m := v.metricIDs[id]
	if m == nil {
		ret(s, statusNotFound)
		return
	}
	switch MetricType(id & 3) {
	case Counter:
		m.add(int64(value))
	case Gauge:
		m.set(int64(value))
	case Histogram:
		m.record(value)
	default:
		ret(s, statusNotFound)
		return
	}
	ret(s, statusOK)
}

func hGetMetric(v *vm, s []uint64) {
	id := u32(s[0])
	switch MetricType(id & 3) {
	case Counter, Gauge:
		m := v.metricIDs[id]
		if m == nil {
			ret(s, statusNotFound)
			return
		}
		if !v.writeU64(u32(s[1]), uint64(m.get())) {
			ret(s, statusInvalidMemoryAccess)
			return
		}
		ret(s, statusOK)
	default:
		ret(s, statusBadArgument)
	}
}

// Contexts and streams ------------------------------------------------------

func hSetEffectiveContext(v *vm, s []uint64) {
	id := u32(s[0])
	if id != v.rootID {
		if _, ok := v.streams[id]; !ok {
			ret(s, statusBadArgument) // unknown (or already deleted) context
			return
		}
	}
	v.eff = id
	ret(s, statusOK)
}

func hDone(v *vm, s []uint64) {
	if v.pendingRootDn {
		v.pendingRootDn = false
		ret(s, statusOK)
		return
	}
	ret(s, statusNotFound)
}

func hCallForeignFunction(v *vm, s []uint64) {
	_, ok1 := v.read(u32(s[0]), u32(s[1]))
	_, ok2 := v.read(u32(s[2]), u32(s[3]))
	if !ok1 || !ok2 {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusNotFound) // this host registers no foreign functions
}

// Stream types of proxy_continue_stream and proxy_close_stream.
const (
	streamRequest    = 0
	streamResponse   = 1
	streamDownstream = 2
	streamUpstream   = 3
)

func hContinueStream(v *vm, s []uint64) {
	t := u32(s[0])
	st, _ := v.target()
	switch t {
	case streamRequest, streamResponse:
		if st != nil {
			ph, kind := phaseRequest, actContinueRequest
			if t == streamResponse {
				ph, kind = phaseResponse, actContinueResponse
			}
			// Envoy drops the module's access to the headers (and body) at
			// once; the headers as edited so far are what goes on.
			var snap [][2]string
			if d := st.dir(ph); !d.hdrDone && st.hdrs(ph) != nil {
				snap = st.dropHeaders(ph, nil)
			}
			v.actions = append(v.actions, action{kind: kind, s: st, headers: snap})
		}
		ret(s, statusOK)
	case streamDownstream:
		ret(s, statusOK)
	case streamUpstream:
		ret(s, statusUnimplemented)
	default:
		ret(s, statusBadArgument)
	}
}

func hCloseStream(v *vm, s []uint64) {
	t := u32(s[0])
	if t > streamUpstream {
		ret(s, statusBadArgument)
		return
	}
	if st, _ := v.target(); st != nil && (t == streamRequest || t == streamResponse) {
		v.actions = append(v.actions, action{kind: actClose, s: st})
	}
	ret(s, statusOK)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

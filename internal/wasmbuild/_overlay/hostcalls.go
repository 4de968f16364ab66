// ipveil's standard-Go bridge for the Proxy-Wasm SDK: the host calls.
//
// This file replaces the SDK's abi_hostcalls_mock.go when ipveil is built
// for GOOS=wasip1 (see internal/wasmbuild). Each SDK hostcall becomes a
// //go:wasmimport of the Proxy-Wasm ABI 0.2.1 function of the same name.
//
// Rules this file follows (DESIGN.md §3):
//   - every ABI size and pointer is an i32: Go's int is 64-bit on wasm, so
//     sizes are narrowed to uint32 and pointers passed as unsafe.Pointer;
//   - values the host writes back (pointers, sizes, ids) go to fixed
//     package-level slots, never to a Go stack that may move while the host
//     calls back into proxy_on_memory_allocate, and are copied out after;
//   - buffers the host asked for stay pinned until the hostcall returns.
//
// It compiles at the SDK's language version: no min, max, clear.

package internal

import "unsafe"

// Out-parameter slots, written by the host. The VM is single-threaded.
var (
	slotPtr  uint32
	slotSize uint32
	slotU32  uint32
	slotU64  uint64
)

func sz(n int) uint32 { return uint32(n) }

func p(b *byte) unsafe.Pointer { return unsafe.Pointer(b) }

// takeBuffer converts the pointer/size slots into a Go pointer and size and
// releases the pinned allocations: from here the returned pointer keeps the
// buffer alive.
func takeBuffer(retData **byte, retSize *int) {
	if slotPtr == 0 {
		*retData = nil
	} else {
		*retData = (*byte)(unsafe.Pointer(uintptr(slotPtr)))
	}
	*retSize = int(slotSize)
	slotPtr, slotSize = 0, 0
	unpinAll()
}

//go:wasmimport env proxy_log
func wasmLog(level uint32, msg unsafe.Pointer, msgSize uint32) uint32

// ProxyLog implements the SDK hostcall with proxy_log.
func ProxyLog(logLevel LogLevel, messageData *byte, messageSize int) Status {
	return Status(wasmLog(uint32(logLevel), p(messageData), sz(messageSize)))
}

//go:wasmimport env proxy_send_local_response
func wasmSendLocalResponse(status uint32, details unsafe.Pointer, detailsSize uint32,
	body unsafe.Pointer, bodySize uint32, headers unsafe.Pointer, headersSize uint32, grpcStatus int32) uint32

// ProxySendLocalResponse implements the SDK hostcall with proxy_send_local_response.
func ProxySendLocalResponse(statusCode uint32, statusCodeDetailData *byte, statusCodeDetailsSize int,
	bodyData *byte, bodySize int, headersData *byte, headersSize int, grpcStatus int32) Status {
	return Status(wasmSendLocalResponse(statusCode, p(statusCodeDetailData), sz(statusCodeDetailsSize),
		p(bodyData), sz(bodySize), p(headersData), sz(headersSize), grpcStatus))
}

//go:wasmimport env proxy_get_shared_data
func wasmGetSharedData(key unsafe.Pointer, keySize uint32, retPtr unsafe.Pointer, retSize unsafe.Pointer, retCas unsafe.Pointer) uint32

// ProxyGetSharedData implements the SDK hostcall with proxy_get_shared_data.
func ProxyGetSharedData(keyData *byte, keySize int, returnValueData **byte, returnValueSize *int, returnCas *uint32) Status {
	slotU32 = 0
	st := Status(wasmGetSharedData(p(keyData), sz(keySize), unsafe.Pointer(&slotPtr), unsafe.Pointer(&slotSize), unsafe.Pointer(&slotU32)))
	takeBuffer(returnValueData, returnValueSize)
	*returnCas = slotU32
	return st
}

//go:wasmimport env proxy_set_shared_data
func wasmSetSharedData(key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32, cas uint32) uint32

// ProxySetSharedData implements the SDK hostcall with proxy_set_shared_data.
func ProxySetSharedData(keyData *byte, keySize int, valueData *byte, valueSize int, cas uint32) Status {
	return Status(wasmSetSharedData(p(keyData), sz(keySize), p(valueData), sz(valueSize), cas))
}

//go:wasmimport env proxy_register_shared_queue
func wasmRegisterSharedQueue(name unsafe.Pointer, nameSize uint32, retID unsafe.Pointer) uint32

// ProxyRegisterSharedQueue implements the SDK hostcall with proxy_register_shared_queue.
func ProxyRegisterSharedQueue(nameData *byte, nameSize int, returnID *uint32) Status {
	st := Status(wasmRegisterSharedQueue(p(nameData), sz(nameSize), unsafe.Pointer(&slotU32)))
	*returnID = slotU32
	return st
}

//go:wasmimport env proxy_resolve_shared_queue
func wasmResolveSharedQueue(vmID unsafe.Pointer, vmIDSize uint32, name unsafe.Pointer, nameSize uint32, retID unsafe.Pointer) uint32

// ProxyResolveSharedQueue implements the SDK hostcall with proxy_resolve_shared_queue.
func ProxyResolveSharedQueue(vmIDData *byte, vmIDSize int, nameData *byte, nameSize int, returnID *uint32) Status {
	st := Status(wasmResolveSharedQueue(p(vmIDData), sz(vmIDSize), p(nameData), sz(nameSize), unsafe.Pointer(&slotU32)))
	*returnID = slotU32
	return st
}

//go:wasmimport env proxy_dequeue_shared_queue
func wasmDequeueSharedQueue(queueID uint32, retPtr unsafe.Pointer, retSize unsafe.Pointer) uint32

// ProxyDequeueSharedQueue implements the SDK hostcall with proxy_dequeue_shared_queue.
func ProxyDequeueSharedQueue(queueID uint32, returnValueData **byte, returnValueSize *int) Status {
	st := Status(wasmDequeueSharedQueue(queueID, unsafe.Pointer(&slotPtr), unsafe.Pointer(&slotSize)))
	takeBuffer(returnValueData, returnValueSize)
	return st
}

//go:wasmimport env proxy_enqueue_shared_queue
func wasmEnqueueSharedQueue(queueID uint32, value unsafe.Pointer, valueSize uint32) uint32

// ProxyEnqueueSharedQueue implements the SDK hostcall with proxy_enqueue_shared_queue.
func ProxyEnqueueSharedQueue(queueID uint32, valueData *byte, valueSize int) Status {
	return Status(wasmEnqueueSharedQueue(queueID, p(valueData), sz(valueSize)))
}

//go:wasmimport env proxy_get_header_map_value
func wasmGetHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32, retPtr unsafe.Pointer, retSize unsafe.Pointer) uint32

// ProxyGetHeaderMapValue implements the SDK hostcall with proxy_get_header_map_value.
func ProxyGetHeaderMapValue(mapType MapType, keyData *byte, keySize int, returnValueData **byte, returnValueSize *int) Status {
	st := Status(wasmGetHeaderMapValue(uint32(mapType), p(keyData), sz(keySize), unsafe.Pointer(&slotPtr), unsafe.Pointer(&slotSize)))
	takeBuffer(returnValueData, returnValueSize)
	return st
}

//go:wasmimport env proxy_add_header_map_value
func wasmAddHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) uint32

// ProxyAddHeaderMapValue implements the SDK hostcall with proxy_add_header_map_value.
func ProxyAddHeaderMapValue(mapType MapType, keyData *byte, keySize int, valueData *byte, valueSize int) Status {
	return Status(wasmAddHeaderMapValue(uint32(mapType), p(keyData), sz(keySize), p(valueData), sz(valueSize)))
}

//go:wasmimport env proxy_replace_header_map_value
func wasmReplaceHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) uint32

// ProxyReplaceHeaderMapValue implements the SDK hostcall with proxy_replace_header_map_value.
func ProxyReplaceHeaderMapValue(mapType MapType, keyData *byte, keySize int, valueData *byte, valueSize int) Status {
	return Status(wasmReplaceHeaderMapValue(uint32(mapType), p(keyData), sz(keySize), p(valueData), sz(valueSize)))
}

//go:wasmimport env proxy_remove_header_map_value
func wasmRemoveHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32) uint32

// ProxyRemoveHeaderMapValue implements the SDK hostcall with proxy_remove_header_map_value.
func ProxyRemoveHeaderMapValue(mapType MapType, keyData *byte, keySize int) Status {
	return Status(wasmRemoveHeaderMapValue(uint32(mapType), p(keyData), sz(keySize)))
}

//go:wasmimport env proxy_get_header_map_pairs
func wasmGetHeaderMapPairs(mapType uint32, retPtr unsafe.Pointer, retSize unsafe.Pointer) uint32

// ProxyGetHeaderMapPairs implements the SDK hostcall with proxy_get_header_map_pairs.
func ProxyGetHeaderMapPairs(mapType MapType, returnValueData **byte, returnValueSize *int) Status {
	st := Status(wasmGetHeaderMapPairs(uint32(mapType), unsafe.Pointer(&slotPtr), unsafe.Pointer(&slotSize)))
	takeBuffer(returnValueData, returnValueSize)
	return st
}

//go:wasmimport env proxy_set_header_map_pairs
func wasmSetHeaderMapPairs(mapType uint32, data unsafe.Pointer, size uint32) uint32

// ProxySetHeaderMapPairs implements the SDK hostcall with proxy_set_header_map_pairs.
func ProxySetHeaderMapPairs(mapType MapType, mapData *byte, mapSize int) Status {
	return Status(wasmSetHeaderMapPairs(uint32(mapType), p(mapData), sz(mapSize)))
}

//go:wasmimport env proxy_get_buffer_bytes
func wasmGetBufferBytes(bufferType uint32, start uint32, maxSize uint32, retPtr unsafe.Pointer, retSize unsafe.Pointer) uint32

// ProxyGetBufferBytes implements the SDK hostcall with proxy_get_buffer_bytes.
func ProxyGetBufferBytes(bufferType BufferType, start int, maxSize int, returnBufferData **byte, returnBufferSize *int) Status {
	st := Status(wasmGetBufferBytes(uint32(bufferType), sz(start), sz(maxSize), unsafe.Pointer(&slotPtr), unsafe.Pointer(&slotSize)))
	takeBuffer(returnBufferData, returnBufferSize)
	return st
}

//go:wasmimport env proxy_set_buffer_bytes
func wasmSetBufferBytes(bufferType uint32, start uint32, maxSize uint32, data unsafe.Pointer, size uint32) uint32

// ProxySetBufferBytes implements the SDK hostcall with proxy_set_buffer_bytes.
func ProxySetBufferBytes(bufferType BufferType, start int, maxSize int, bufferData *byte, bufferSize int) Status {
	return Status(wasmSetBufferBytes(uint32(bufferType), sz(start), sz(maxSize), p(bufferData), sz(bufferSize)))
}

//go:wasmimport env proxy_continue_stream
func wasmContinueStream(streamType uint32) uint32

// ProxyContinueStream implements the SDK hostcall with proxy_continue_stream.
func ProxyContinueStream(streamType StreamType) Status {
	return Status(wasmContinueStream(uint32(streamType)))
}

//go:wasmimport env proxy_close_stream
func wasmCloseStream(streamType uint32) uint32

// ProxyCloseStream implements the SDK hostcall with proxy_close_stream.
func ProxyCloseStream(streamType StreamType) Status {
	return Status(wasmCloseStream(uint32(streamType)))
}

//go:wasmimport env proxy_http_call
func wasmHttpCall(upstream unsafe.Pointer, upstreamSize uint32, headers unsafe.Pointer, headersSize uint32,
	body unsafe.Pointer, bodySize uint32, trailers unsafe.Pointer, trailersSize uint32, timeout uint32, retID unsafe.Pointer) uint32

// ProxyHttpCall implements the SDK hostcall with proxy_http_call.
func ProxyHttpCall(upstreamData *byte, upstreamSize int, headerData *byte, headerSize int,
	bodyData *byte, bodySize int, trailersData *byte, trailersSize int, timeout uint32, calloutIDPtr *uint32,
) Status {
	slotU32 = 0
	st := Status(wasmHttpCall(p(upstreamData), sz(upstreamSize), p(headerData), sz(headerSize),
		p(bodyData), sz(bodySize), p(trailersData), sz(trailersSize), timeout, unsafe.Pointer(&slotU32)))
	*calloutIDPtr = slotU32
	return st
}

//go:wasmimport env proxy_call_foreign_function
func wasmCallForeignFunction(name unsafe.Pointer, nameSize uint32, param unsafe.Pointer, paramSize uint32, retPtr unsafe.Pointer, retSize unsafe.Pointer) uint32

// ProxyCallForeignFunction implements the SDK hostcall with proxy_call_foreign_function.
func ProxyCallForeignFunction(funcNamePtr *byte, funcNameSize int, paramPtr *byte, paramSize int, returnData **byte, returnSize *int) Status {
	st := Status(wasmCallForeignFunction(p(funcNamePtr), sz(funcNameSize), p(paramPtr), sz(paramSize), unsafe.Pointer(&slotPtr), unsafe.Pointer(&slotSize)))
	takeBuffer(returnData, returnSize)
	return st
}

//go:wasmimport env proxy_set_tick_period_milliseconds
func wasmSetTickPeriodMilliseconds(period uint32) uint32

// ProxySetTickPeriodMilliseconds implements the SDK hostcall with proxy_set_tick_period_milliseconds.
func ProxySetTickPeriodMilliseconds(period uint32) Status {
	return Status(wasmSetTickPeriodMilliseconds(period))
}

//go:wasmimport env proxy_set_effective_context
func wasmSetEffectiveContext(contextID uint32) uint32

// ProxySetEffectiveContext implements the SDK hostcall with proxy_set_effective_context.
func ProxySetEffectiveContext(contextID uint32) Status {
	return Status(wasmSetEffectiveContext(contextID))
}

//go:wasmimport env proxy_done
func wasmDone() uint32

// ProxyDone implements the SDK hostcall with proxy_done.
func ProxyDone() Status {
	return Status(wasmDone())
}

//go:wasmimport env proxy_define_metric
func wasmDefineMetric(metricType uint32, name unsafe.Pointer, nameSize uint32, retID unsafe.Pointer) uint32

// ProxyDefineMetric implements the SDK hostcall with proxy_define_metric.
func ProxyDefineMetric(metricType MetricType, metricNameData *byte, metricNameSize int, returnMetricIDPtr *uint32) Status {
	st := Status(wasmDefineMetric(uint32(metricType), p(metricNameData), sz(metricNameSize), unsafe.Pointer(&slotU32)))
	*returnMetricIDPtr = slotU32
	return st
}

//go:wasmimport env proxy_increment_metric
func wasmIncrementMetric(metricID uint32, offset int64) uint32

// ProxyIncrementMetric implements the SDK hostcall with proxy_increment_metric.
func ProxyIncrementMetric(metricID uint32, offset int64) Status {
	return Status(wasmIncrementMetric(metricID, offset))
}

//go:wasmimport env proxy_record_metric
func wasmRecordMetric(metricID uint32, value uint64) uint32

// ProxyRecordMetric implements the SDK hostcall with proxy_record_metric.
func ProxyRecordMetric(metricID uint32, value uint64) Status {
	return Status(wasmRecordMetric(metricID, value))
}

//go:wasmimport env proxy_get_metric
func wasmGetMetric(metricID uint32, retValue unsafe.Pointer) uint32

// ProxyGetMetric implements the SDK hostcall with proxy_get_metric.
func ProxyGetMetric(metricID uint32, returnMetricValue *uint64) Status {
	st := Status(wasmGetMetric(metricID, unsafe.Pointer(&slotU64)))
	*returnMetricValue = slotU64
	return st
}

//go:wasmimport env proxy_get_property
func wasmGetProperty(path unsafe.Pointer, pathSize uint32, retPtr unsafe.Pointer, retSize unsafe.Pointer) uint32

// ProxyGetProperty implements the SDK hostcall with proxy_get_property.
func ProxyGetProperty(pathData *byte, pathSize int, returnValueData **byte, returnValueSize *int) Status {
	st := Status(wasmGetProperty(p(pathData), sz(pathSize), unsafe.Pointer(&slotPtr), unsafe.Pointer(&slotSize)))
	takeBuffer(returnValueData, returnValueSize)
	return st
}

//go:wasmimport env proxy_set_property
func wasmSetProperty(path unsafe.Pointer, pathSize uint32, value unsafe.Pointer, valueSize uint32) uint32

// ProxySetProperty implements the SDK hostcall with proxy_set_property.
func ProxySetProperty(pathData *byte, pathSize int, valueData *byte, valueSize int) Status {
	return Status(wasmSetProperty(p(pathData), sz(pathSize), p(valueData), sz(valueSize)))
}

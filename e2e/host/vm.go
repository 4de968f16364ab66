package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// status is a proxy_status_t.
type status uint32

const (
	statusOK                   status = 0
	statusNotFound             status = 1
	statusBadArgument          status = 2
	statusSerializationFailure status = 3
	statusParseFailure         status = 4
	statusInvalidMemoryAccess  status = 6
	statusEmpty                status = 7
	statusCASMismatch          status = 8
	statusInternalFailure      status = 10
	statusUnimplemented        status = 12
)

// vm is one instance of the module. It is used only on its worker's
// goroutine.
type vm struct {
	w   *worker
	gen uint64
	ctx context.Context
	mod api.Module
	mem api.Memory

	fnMalloc, fnContextCreate, fnVMStart, fnConfigure  api.Function
	fnRequestHeaders, fnResponseHeaders, fnLog, fnDone api.Function
	fnDelete, fnHTTPCallResponse, fnTick, fnQueueReady api.Function
	fnRequestBody, fnResponseBody, fnRequestTrailers   api.Function
	fnResponseTrailers, fnForeignFunction              api.Function
	stack                                              []uint64
	mallocStack                                        []uint64

	rootID        uint32
	nextContextID uint32
	streams       map[uint32]*Stream // stream contexts alive in the VM
	cur           uint32             // context of the running top-level callback
	eff           uint32             // effective context set by the module (0: none)
	depth         int
	actions       []action
	stopIteration bool // a local reply was sent during the current call

	configuring   bool // plugin configuration is readable
	startLog      []string
	capturing     bool
	lineBuf       [3][]byte // fd_write line buffers for stdout, stderr
	callResp      *calloutResult
	nextCallout   uint32
	callouts      map[uint32]context.CancelFunc
	metricIDs     map[uint32]*metric
	nextMetricID  [3]uint32
	dead          bool
	closedDown    bool
	pendingRootDn bool // the root context returned false from proxy_on_done
}

type actionKind int

const (
	actLocalReply actionKind = iota
	actContinueRequest
	actContinueResponse
	actClose
)

type action struct {
	kind    actionKind
	s       *Stream
	lr      *LocalResponse
	headers [][2]string
}

var errPluginRefused = errors.New("plugin refused to start")

func newVM(w *worker, gen uint64) (*vm, error) {
	h := w.h
	v := &vm{
		w: w, gen: gen,
		nextContextID: 1,
		streams:       map[uint32]*Stream{},
		callouts:      map[uint32]context.CancelFunc{},
		metricIDs:     map[uint32]*metric{},
		nextMetricID:  [3]uint32{0, 1, 2},
		nextCallout:   0,
		stack:         make([]uint64, 8),
		mallocStack:   make([]uint64, 1),
	}
	v.ctx = context.WithValue(h.baseCtx, vmKey{}, v)
	v.capturing = true
	mod, err := h.rt.InstantiateModule(v.ctx, h.compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, fmt.Errorf("host: instantiating the module on worker %d: %w", w.id, err)
	}
	v.mod = mod
	v.mem = mod.Memory()
	if v.mem == nil {
		mod.Close(v.ctx)
		return nil, errors.New("host: the module exports no memory")
	}
	get := func(name string) api.Function { return mod.ExportedFunction(name) }
	v.fnMalloc = get("malloc")
	if v.fnMalloc == nil {
		v.fnMalloc = get("proxy_on_memory_allocate")
	}
	v.fnContextCreate = get("proxy_on_context_create")
	v.fnVMStart = get("proxy_on_vm_start")
	v.fnConfigure = get("proxy_on_configure")
	v.fnRequestHeaders = get("proxy_on_request_headers")
	v.fnResponseHeaders = get("proxy_on_response_headers")
	v.fnRequestBody = get("proxy_on_request_body")
	v.fnResponseBody = get("proxy_on_response_body")
	v.fnRequestTrailers = get("proxy_on_request_trailers")
	v.fnResponseTrailers = get("proxy_on_response_trailers")
	v.fnLog = get("proxy_on_log")
	v.fnDone = get("proxy_on_done")
	v.fnDelete = get("proxy_on_delete")
	v.fnHTTPCallResponse = get("proxy_on_http_call_response")
	v.fnTick = get("proxy_on_tick")
	v.fnQueueReady = get("proxy_on_queue_ready")
	v.fnForeignFunction = get("proxy_on_foreign_function")

	fail := func(step string, err error) error {
		v.dead, v.closedDown = true, true
		mod.Close(v.ctx)
		logs := ""
		if len(v.startLog) > 0 {
			logs = "; the module logged:\n  " + strings.Join(v.startLog, "\n  ")
		}
		if err == nil {
			err = errPluginRefused
		}
		return fmt.Errorf("host: plugin %q (root_id %q) failed to start on worker %d: %s: %v%s", h.cfg.Plugin.Name, h.cfg.Plugin.RootID, w.id, step, err, logs)
	}

	// WASI reactor initialization, then main() if the reactor has one.
	if f := get("_initialize"); f != nil {
		if _, err := v.call("_initialize", 0, f); err != nil {
			return nil, fail("_initialize trapped", err)
		}
		if f := get("main"); f != nil {
			if _, err := v.call("main", 0, f, 0, 0); err != nil {
				return nil, fail("main trapped", err)
			}
		} else if f := get("__main_void"); f != nil {
			if _, err := v.call("__main_void", 0, f); err != nil {
				return nil, fail("__main_void trapped", err)
			}
		}
	} else if f := get("_start"); f != nil {
		if _, err := v.call("_start", 0, f); err != nil {
			return nil, fail("_start trapped", err)
		}
	}

	v.rootID = v.allocContextID()
	if v.fnContextCreate != nil {
		v.configuring = true
		if _, err := v.call("proxy_on_context_create", v.rootID, v.fnContextCreate, uint64(v.rootID), 0); err != nil {
			return nil, fail("proxy_on_context_create trapped", err)
		}
		v.configuring = false
	}
	if v.fnVMStart != nil {
		r, err := v.call("proxy_on_vm_start", v.rootID, v.fnVMStart, uint64(v.rootID), uint64(len(h.cfg.Plugin.VMConfiguration)))
		if err != nil {
			return nil, fail("proxy_on_vm_start trapped", err)
		}
		if uint32(r) == 0 {
			return nil, fail("proxy_on_vm_start returned false", nil)
		}
	}
	if v.fnConfigure != nil {
		v.configuring = true
		r, err := v.call("proxy_on_configure", v.rootID, v.fnConfigure, uint64(v.rootID), uint64(len(h.cfg.Plugin.Configuration)))
		v.configuring = false
		if err != nil {
			return nil, fail("proxy_on_configure trapped", err)
		}
		if uint32(r) == 0 {
			return nil, fail("proxy_on_configure returned false (the plugin rejected its configuration)", nil)
		}
	}
	v.capturing = false
	v.startLog = nil
	return v, nil
}

func (v *vm) allocContextID() uint32 {
	for {
		id := v.nextContextID
		v.nextContextID++
		if id == 0 || id == v.rootID {
			continue
		}
		if _, used := v.streams[id]; !used {
			return id
		}
	}
}

func (v *vm) streamList() []*Stream {
	ids := make([]uint32, 0, len(v.streams))
	for id := range v.streams {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]*Stream, 0, len(ids))
	for _, id := range ids {
		out = append(out, v.streams[id])
	}
	return out
}

// call runs an export as a top-level callback for context cur. A trap marks
// the VM dead and is handled (streams failed, VM replaced) before call
// returns the error.
func (v *vm) call(name string, cur uint32, f api.Function, args ...uint64) (uint64, error) {
	if v.dead {
		return 0, errVMDead
	}
	savedCur, savedEff := v.cur, v.eff
	v.cur, v.eff = cur, 0
	v.depth++
	if v.depth == 1 {
		v.stopIteration = false
	}
	stack := v.stack
	if v.depth > 1 || len(stack) < len(args) {
		stack = make([]uint64, max(len(args), 1))
	}
	copy(stack, args)
	start := time.Now()
	err := f.CallWithStack(v.ctx, stack)
	elapsed := time.Since(start)
	v.depth--
	v.cur, v.eff = savedCur, savedEff
	var r uint64
	if len(f.Definition().ResultTypes()) > 0 {
		r = stack[0]
	}
	if v.depth == 0 {
		v.flushLines()
		if cb := v.w.h.cfg.OnCall; cb != nil {
			cb(v.w.id, name, elapsed)
		}
		v.runActions()
	}
	if err != nil {
		if v.depth == 0 {
			if v.capturing {
				v.dead = true // still starting: newVM reports it
			} else {
				v.w.onTrap(v, name, cur, err)
			}
		}
		return 0, err
	}
	return r, nil
}

func (v *vm) callVoid(name string, cur uint32, f api.Function, args ...uint64) error {
	_, err := v.call(name, cur, f, args...)
	return err
}

var errVMDead = errors.New("host: the VM has crashed")

// runActions applies what the module asked for during the callback: local
// replies and stream continuations are deferred until the callback returns,
// as in Envoy.
func (v *vm) runActions() {
	for len(v.actions) > 0 {
		a := v.actions[0]
		v.actions = v.actions[1:]
		a.s.apply(a)
	}
	v.actions = v.actions[:0]
}

// malloc allocates size bytes in the module's memory through
// proxy_on_memory_allocate. A trap there is re-raised so that the
// enclosing callback fails.
func (v *vm) malloc(size uint32) uint32 {
	v.mallocStack[0] = uint64(size)
	stack := v.mallocStack
	if err := v.fnMalloc.CallWithStack(v.ctx, stack); err != nil {
		panic(fmt.Errorf("proxy_on_memory_allocate(%d) failed: %w", size, err))
	}
	return uint32(stack[0])
}

// read returns a view of guest memory; callers copy what they keep.
func (v *vm) read(ptr, size uint32) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	return v.mem.Read(ptr, size)
}

func (v *vm) readString(ptr, size uint32) (string, bool) {
	b, ok := v.read(ptr, size)
	return string(b), ok
}

func (v *vm) writeU32(ptr, val uint32) bool { return v.mem.WriteUint32Le(ptr, val) }
func (v *vm) writeU64(ptr uint32, val uint64) bool {
	return v.mem.WriteUint64Le(ptr, val)
}

// copyOut hands data to the module: memory from proxy_on_memory_allocate,
// its address written at ptrPtr and its size at sizePtr.
func (v *vm) copyOut(data []byte, ptrPtr, sizePtr uint32) status {
	if len(data) == 0 {
		if !v.writeU32(ptrPtr, 0) || !v.writeU32(sizePtr, 0) {
			return statusInvalidMemoryAccess
		}
		return statusOK
	}
	p := v.malloc(uint32(len(data)))
	if p == 0 || !v.mem.Write(p, data) {
		return statusInvalidMemoryAccess
	}
	if !v.writeU32(ptrPtr, p) || !v.writeU32(sizePtr, uint32(len(data))) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

// guestLog records one log line from the module.
func (v *vm) guestLog(level LogLevel, msg string) {
	h := v.w.h
	p := h.cfg.Plugin
	if v.capturing {
		v.startLog = append(v.startLog, fmt.Sprintf("[%s] %s", level, msg))
	}
	h.logf(v.w.id, level, "wasm", "wasm log %s %s: %s", p.RootID, p.VMID, msg)
}

// writeFD line-buffers fd_write output on stdout (info) and stderr (error).
func (v *vm) writeFD(fd uint32, b []byte) {
	buf := append(v.lineBuf[fd], b...)
	for {
		i := indexByte(buf, '\n')
		if i < 0 {
			break
		}
		v.emitFD(fd, string(buf[:i]))
		buf = buf[i+1:]
	}
	v.lineBuf[fd] = append(v.lineBuf[fd][:0], buf...)
}

func (v *vm) flushLines() {
	for fd := uint32(1); fd <= 2; fd++ {
		if len(v.lineBuf[fd]) > 0 {
			v.emitFD(fd, string(v.lineBuf[fd]))
			v.lineBuf[fd] = v.lineBuf[fd][:0]
		}
	}
}

func (v *vm) emitFD(fd uint32, line string) {
	if strings.TrimSpace(line) == "" {
		return // Go's panic output has blank separator lines
	}
	level := LogInfo
	if fd == 2 {
		level = LogError
	}
	v.guestLog(level, line)
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// context resolution -------------------------------------------------------

// target returns the context hostcalls act on: the effective context when
// the module set one that still exists, else the callback's context. The
// result is the stream (nil for the root context) and the context id.
func (v *vm) target() (*Stream, uint32) {
	id := v.cur
	if v.eff != 0 {
		if v.eff == v.rootID {
			id = v.eff
		} else if _, ok := v.streams[v.eff]; ok {
			id = v.eff
		}
	}
	if id == v.rootID || id == 0 {
		return nil, id
	}
	return v.streams[id], id
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

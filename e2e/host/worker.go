package host

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// worker owns one VM and runs every callback into it from one goroutine.
// Fields below the mutex are touched only on that goroutine.
type worker struct {
	h  *Host
	id int

	mu      sync.Mutex
	queue   []func()
	stopped bool
	signal  chan struct{}
	done    chan struct{}

	vm          *vm
	gen         uint64
	failed      bool      // the last VM start failed; retry lazily
	lastStart   time.Time // when a VM start was last attempted
	tickPeriod  time.Duration
	tickStop    chan struct{}
	tickPending atomic.Bool
}

func newWorker(h *Host, id int) *worker {
	w := &worker{h: h, id: id, signal: make(chan struct{}, 1), done: make(chan struct{})}
	go w.loop()
	return w
}

// post queues fn to run on the worker goroutine. It never blocks; it
// returns false when the worker has stopped.
func (w *worker) post(fn func()) bool {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, fn)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
	return true
}

// runSync runs fn on the worker goroutine and waits for it. It returns
// false, without running fn, if the worker has stopped.
func (w *worker) runSync(fn func()) bool {
	ch := make(chan struct{})
	if !w.post(func() { fn(); close(ch) }) {
		return false
	}
	select {
	case <-ch:
		return true
	case <-w.done:
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}

func (w *worker) loop() {
	defer close(w.done)
	var batch []func()
	for range w.signal {
		for {
			w.mu.Lock()
			batch, w.queue = w.queue, batch[:0]
			stopped := w.stopped
			w.mu.Unlock()
			if len(batch) == 0 {
				if stopped {
					return
				}
				break
			}
			for i, fn := range batch {
				fn()
				batch[i] = nil
			}
		}
	}
}

func (w *worker) startSync() error {
	var err error
	if !w.runSync(func() { err = w.startVM() }) {
		return ErrClosed
	}
	return err
}

// startVM instantiates a fresh VM and starts the plugin in it.
func (w *worker) startVM() error {
	w.lastStart = time.Now()
	w.gen++
	v, err := newVM(w, w.gen)
	if err != nil {
		w.failed = true
		return err
	}
	w.vm = v
	w.failed = false
	return nil
}

// ensureVM restarts a VM that failed to start, at most once a second.
func (w *worker) ensureVM() *vm {
	if w.vm != nil && !w.vm.dead {
		return w.vm
	}
	if w.h.closed.Load() || time.Since(w.lastStart) < time.Second {
		return nil
	}
	if err := w.startVM(); err != nil {
		w.h.logf(w.id, LogError, "wasm", "%v", err)
		return nil
	}
	w.h.reloadCount.Add(1)
	return w.vm
}

// onTrap handles a crashed VM: log, fail the streams it held, and start a
// new VM (Envoy's failure_policy FAIL_RELOAD, without the backoff).
func (w *worker) onTrap(v *vm, callback string, contextID uint32, err error) {
	if v.closedDown {
		return
	}
	v.closedDown = true
	v.dead = true
	w.h.trapCount.Add(1)
	msg := strings.TrimSpace(err.Error())
	if i := strings.Index(msg, "\nwasm stack trace:"); i >= 0 {
		msg = strings.TrimSpace(msg[:i]) + " (" + strings.ReplaceAll(strings.TrimSpace(msg[i+1:]), "\n", " ") + ")"
	}
	w.h.logf(w.id, LogCritical, "wasm", "plugin %q (root_id %q) crashed in %s (context %d): %s; failing its %d open streams with 503 wasm_fail_stream and starting a new VM",
		w.h.cfg.Plugin.Name, w.h.cfg.Plugin.RootID, callback, contextID, msg, len(v.streams))
	w.stopTicks()
	for _, cancel := range v.callouts {
		cancel()
	}
	for _, s := range v.streamList() {
		s.failVM()
	}
	v.streams = nil
	v.mod.Close(v.ctx)
	if w.vm == v {
		w.vm = nil
		if w.h.closed.Load() {
			return
		}
		if err := w.startVM(); err != nil {
			w.h.logf(w.id, LogError, "wasm", "restarting the VM after the crash failed: %v", err)
			return
		}
		w.h.reloadCount.Add(1)
	}
}

func (w *worker) setTickPeriod(d time.Duration) {
	if d == w.tickPeriod {
		return
	}
	w.stopTicks()
	w.tickPeriod = d
	if d <= 0 {
		return
	}
	stop := make(chan struct{})
	w.tickStop = stop
	go func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if w.tickPending.CompareAndSwap(false, true) {
					if !w.post(func() { w.tickPending.Store(false); w.tick() }) {
						return
					}
				}
			}
		}
	}()
}

func (w *worker) stopTicks() {
	if w.tickStop != nil {
		close(w.tickStop)
		w.tickStop = nil
	}
	w.tickPeriod = 0
}

func (w *worker) tick() {
	v := w.vm
	if v == nil || v.dead || v.fnTick == nil || w.tickPeriod <= 0 {
		return
	}
	v.callVoid("proxy_on_tick", v.rootID, v.fnTick, uint64(v.rootID))
}

// shutdown stops the worker: fails waiting streams, shuts the root context
// down and ends the goroutine.
func (w *worker) shutdown() {
	w.runSync(func() {
		w.stopTicks()
		v := w.vm
		if v == nil || v.dead {
			return
		}
		for _, s := range v.streamList() {
			s.deliverErr(ErrClosed)
		}
		// Envoy's startShutdown: proxy_on_done on the root context, then
		// proxy_on_delete if the plugin is done.
		if v.fnDone != nil {
			r, err := v.call("proxy_on_done", v.rootID, v.fnDone, uint64(v.rootID))
			if err == nil && r != 0 && v.fnDelete != nil {
				v.callVoid("proxy_on_delete", v.rootID, v.fnDelete, uint64(v.rootID))
			}
		}
		v.dead = true
		v.closedDown = true
		v.mod.Close(v.ctx)
	})
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
	<-w.done
}

func (w *worker) String() string { return fmt.Sprintf("worker %d", w.id) }

package filter

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/ipveil/ipveil/policy"
)

// kindBreakerOpen is the failure kind of a request answered with on_error
// because the circuit breaker is open: no callout was made.
const kindBreakerOpen = "breaker_open"

// flight is one reputation lookup in progress on this worker. Concurrent
// misses for the same client wait on it and are all answered from its one
// callout, also when it fails or times out.
type flight struct {
	key     clientKey
	addr    netip.Addr
	started time.Time
	// owner is the request whose context dispatched the callout; nil when
	// the callout was dispatched from the plugin context (on a tick).
	owner *httpContext
	// waiters are the paused requests to answer, owner included.
	waiters []*httpContext
	// pending means the callout must be (re)dispatched on the next tick:
	// a stale entry is being refreshed, or the owner went away and its
	// callout with it while other requests still wait.
	pending bool
	// admitted means the breaker already let this lookup through.
	admitted bool
	// remote means another worker claimed the lookup: this worker polls
	// shared data for its verdict on each tick instead of calling out,
	// until the claim runs out.
	remote      bool
	remoteUntil time.Time
}

// miss handles a request whose client has no usable cached verdict.
func (h *httpContext) miss(addr netip.Addr, key clientKey) *decision {
	p := h.plugin
	if f, ok := p.flights[key]; ok {
		f.waiters = append(f.waiters, h)
		h.flight = f
		p.metrics.coalesced.inc()
		return nil
	}
	now := p.now()
	// Another worker may be looking this client up already: wait for its
	// verdict rather than call the API again.
	until := now.Add(p.claimTTL())
	if !p.cache.Claim(key, until, now) {
		f := &flight{key: key, addr: addr, started: now, waiters: []*httpContext{h}, remote: true, remoteUntil: until}
		p.flights[key] = f
		h.flight = f
		p.metrics.coalesced.inc()
		return nil
	}
	if !p.breaker.allow(now) {
		p.cache.Release(key)
		p.metrics.breakerRejected.inc()
		p.metrics.failure(kindBreakerOpen)
		return &decision{verdict: p.cfg.Policy.OnError, reason: "error:" + kindBreakerOpen, source: srcError, errKind: kindBreakerOpen}
	}
	f := &flight{key: key, addr: addr, started: now, owner: h, waiters: []*httpContext{h}, admitted: true}
	if d := p.dispatch(f); d != nil {
		p.cache.Release(key)
		return d
	}
	p.flights[key] = f
	h.flight = f
	return nil
}

// dispatch sends f's callout from the active context. It returns a
// decision when Envoy refused the callout synchronously (unknown cluster).
func (p *pluginContext) dispatch(f *flight) *decision {
	cfg := p.cfg
	pv := cfg.Provider
	ip := f.addr.String()
	hdrs := make([][2]string, 0, 5+len(cfg.CalloutHeaders))
	hdrs = append(hdrs,
		[2]string{":method", pv.Method},
		[2]string{":path", pv.RequestPath(ip)},
		[2]string{":authority", pv.Authority},
		[2]string{"accept", "application/json"},
	)
	hdrs = append(hdrs, cfg.CalloutHeaders...)
	var body []byte
	if pv.Method == "POST" {
		body = []byte(pv.RequestBody(ip))
		if headerValue(hdrs, "content-type") == "" {
			hdrs = append(hdrs, [2]string{"content-type", "application/json"})
		}
	}
	f.started = p.now()
	_, err := proxywasm.DispatchHttpCall(pv.Cluster, hdrs, body, nil, pv.Timeout(),
		func(numHeaders, bodySize, _ int) { p.onLookupResponse(f, numHeaders, bodySize) })
	if err != nil {
		// Envoy refuses synchronously for an unknown cluster: a
		// configuration problem, not a provider outage, so it neither trips
		// the breaker nor is cached.
		k := policy.KindUnknownCluster.String()
		p.metrics.failure(k)
		proxywasm.LogErrorf("ipveil: cannot call cluster %q (%v): check provider.cluster against the Envoy clusters", pv.Cluster, err)
		return &decision{verdict: cfg.Policy.OnError, reason: "error:" + k, source: srcError, errKind: k}
	}
	p.metrics.callouts.inc()
	return nil
}

// onLookupResponse turns the callout's answer into a verdict, caches it,
// feeds the breaker, and answers every request waiting on f, once each.
func (p *pluginContext) onLookupResponse(f *flight, numHeaders, bodySize int) {
	cfg := p.cfg
	now := p.now()
	if p.flights[f.key] == f {
		delete(p.flights, f.key)
	}
	if ms := now.Sub(f.started).Milliseconds(); ms >= 0 {
		p.metrics.latency.Record(uint64(ms))
	}
	d, sig := p.evaluateResponse(numHeaders, bodySize)
	e := Entry{Verdict: d.verdict, Reason: d.reason, Signals: sig, Difficulty: uint8(d.difficulty)}
	if d.errKind != "" {
		p.metrics.failure(d.errKind)
		e.Failed, e.Expires = true, now.Add(cfg.ErrorTTL)
	} else {
		e.Expires = now.Add(cfg.TTL)
	}
	if opened, closed := p.breaker.record(d.errKind == "", now); opened {
		p.metrics.breakerOpened.inc()
		p.metrics.breakerOpen.Add(1)
		proxywasm.LogWarnf("ipveil: %d lookups in a row failed (last: %s): no lookups for %s, requests take policy.on_error", p.breaker.threshold, d.errKind, p.breaker.cooldown)
	} else if closed {
		p.metrics.breakerOpen.Add(-1)
		proxywasm.LogInfo("ipveil: the reputation API answers again: lookups resume")
	}
	p.cache.Put(f.key, e)
	p.answer(f, d)
}

func (p *pluginContext) evaluateResponse(numHeaders, bodySize int) (decision, policy.Signals) {
	cfg := p.cfg
	fail := func(k policy.Kind) (decision, policy.Signals) {
		return decision{verdict: cfg.Policy.OnError, reason: "error:" + k.String(), source: srcError, errKind: k.String()}, policy.Signals{}
	}
	if numHeaders == 0 && bodySize == 0 {
		return fail(policy.KindReset)
	}
	rh, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil {
		return fail(policy.KindReset)
	}
	status, err := strconv.Atoi(headerValue(rh, ":status"))
	if err != nil {
		return fail(policy.KindReset)
	}
	if status == 504 {
		// Envoy reports its own callout timeout as a 504.
		return fail(policy.KindTimeout)
	}
	if bodySize > cfg.Provider.BodyLimit() {
		return fail(policy.KindTooLarge)
	}
	var body []byte
	if bodySize > 0 {
		body, err = proxywasm.GetHttpCallResponseBody(0, bodySize)
		if err != nil {
			return fail(policy.KindReset)
		}
	}
	sig, err := policy.Extract(cfg.Provider, status, body)
	if err != nil {
		return fail(policy.KindOf(err))
	}
	pd := cfg.Policy.Evaluate(sig)
	return decision{verdict: pd.Verdict, reason: pd.Reason, source: srcLookup, difficulty: pd.Difficulty}, sig
}

// leave is called when a waiting request's stream ends before its answer.
func (p *pluginContext) leave(h *httpContext) {
	f := h.flight
	if f == nil || p.flights[f.key] != f {
		return
	}
	live := 0
	for _, w := range f.waiters {
		if !w.done {
			live++
		}
	}
	if f.owner == h && !f.remote {
		// The callout belonged to this stream; Envoy cancels it or the SDK
		// drops its answer. Others still waiting get a fresh callout from
		// the plugin context on the next tick.
		f.owner = nil
		if live > 0 {
			f.pending = true
		} else {
			delete(p.flights, f.key)
			p.cache.Release(f.key)
		}
	}
}

// claimTTL is how long a worker's claim on a lookup holds off the others:
// the callout timeout and a margin for the answer's processing.
func (p *pluginContext) claimTTL() time.Duration {
	return time.Duration(p.cfg.Provider.Timeout())*time.Millisecond + 500*time.Millisecond
}

// OnTick dispatches the callouts that must come from the plugin context
// (stale refreshes, lookups whose owner went away) and answers requests
// waiting on another worker's lookup once its verdict is in shared data.
func (p *pluginContext) OnTick() {
	if p.cfg == nil {
		return
	}
	defer p.metrics.flush()
	now := p.now()
	for key, f := range p.flights {
		if f.remote {
			p.pollRemote(key, f, now)
			continue
		}
		if !f.pending {
			continue
		}
		f.pending = false
		if !f.admitted && !p.breaker.allow(p.now()) {
			p.metrics.breakerRejected.inc()
			p.failFlight(key, f, kindBreakerOpen)
			continue
		}
		f.admitted = true
		if d := p.dispatch(f); d != nil {
			p.failFlight(key, f, d.errKind)
		}
	}
}

// pollRemote answers the waiters of a lookup another worker claimed, once
// its verdict is in shared data; when the claim runs out without one, this
// worker looks the client up itself.
func (p *pluginContext) pollRemote(key clientKey, f *flight, now time.Time) {
	live := false
	for _, w := range f.waiters {
		live = live || !w.done
	}
	if !live {
		delete(p.flights, key)
		return
	}
	if e, _, ok := p.cache.Get(key, now); ok && now.Before(e.Expires) {
		delete(p.flights, key)
		src := srcCache
		if e.Failed {
			src = srcError
		}
		p.answer(f, decision{verdict: e.Verdict, reason: e.Reason, source: src, difficulty: int(e.Difficulty)})
		return
	}
	if now.Before(f.remoteUntil) {
		return
	}
	f.remote = false
	if !p.breaker.allow(now) {
		p.metrics.breakerRejected.inc()
		p.failFlight(key, f, kindBreakerOpen)
		return
	}
	f.admitted = true
	p.cache.Claim(key, now.Add(p.claimTTL()), now)
	if d := p.dispatch(f); d != nil {
		p.failFlight(key, f, d.errKind)
	}
}

// answer finishes every live waiter of f with d.
func (p *pluginContext) answer(f *flight, d decision) {
	for _, w := range f.waiters {
		if w.done || w.answered {
			continue
		}
		if err := proxywasm.SetEffectiveContext(w.id); err != nil {
			continue // the stream is gone
		}
		w.finishAsync(d)
	}
}

func (p *pluginContext) failFlight(key clientKey, f *flight, kind string) {
	delete(p.flights, key)
	p.cache.Release(key)
	p.answer(f, decision{verdict: p.cfg.Policy.OnError, reason: "error:" + kind, source: srcError, errKind: kind})
}

// refresh schedules a background lookup for a client served a stale entry.
func (p *pluginContext) refresh(addr netip.Addr, key clientKey) {
	if _, ok := p.flights[key]; ok {
		return
	}
	p.flights[key] = &flight{key: key, addr: addr, started: p.now(), pending: true}
}

// breaker stops lookups after consecutive failures, per worker.
type breaker struct {
	threshold int           // consecutive failures that open it; 0 disables
	cooldown  time.Duration // how long it stays open before a probe
	failures  int
	openUntil time.Time // zero when closed
	// probeUntil is when the current half-open probe is given up on: a
	// probe whose answer never comes (its stream went away) must not keep
	// the breaker open for ever.
	probeUntil time.Time
}

// allow reports whether a lookup may be made now. After the cool-down one
// probe goes through; its result closes or reopens the breaker.
func (b *breaker) allow(now time.Time) bool {
	if b.threshold == 0 || b.openUntil.IsZero() {
		return true
	}
	if now.Before(b.openUntil) || now.Before(b.probeUntil) {
		return false
	}
	b.probeUntil = now.Add(b.cooldown)
	return true
}

// record feeds a lookup's outcome. It reports whether the breaker opened
// or closed because of it.
func (b *breaker) record(ok bool, now time.Time) (opened, closed bool) {
	if b.threshold == 0 {
		return false, false
	}
	wasOpen := !b.openUntil.IsZero()
	if ok {
		b.failures, b.openUntil, b.probeUntil = 0, time.Time{}, time.Time{}
		return false, wasOpen
	}
	b.failures++
	if wasOpen || b.failures >= b.threshold {
		b.openUntil, b.probeUntil = now.Add(b.cooldown), time.Time{}
		return !wasOpen, false
	}
	return false, false
}

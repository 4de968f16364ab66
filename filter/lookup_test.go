package filter

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/ipveil/ipveil/policy"
)

// counter reads a metric counter after a tick has flushed the VM's counts.
func (e *env) counter(name string) uint64 {
	e.t.Helper()
	e.host.Tick()
	v, err := e.host.GetCounterMetric(name)
	if err != nil {
		return 0
	}
	return v
}

// rootCallouts returns the callouts dispatched from the plugin context.
func (e *env) rootCallouts() []proxytest.HttpCalloutAttribute {
	return e.host.GetCalloutAttributesFromContext(proxytest.PluginContextID)
}

func TestFiftyConcurrentMissesMakeOneCallout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   uint32 // 0: continue
	}{
		{"verdict", 200, fmt.Sprintf(bodyTor, "203.0.113.7"), 403},
		{"failure", 504, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "")
			var rs []*req
			for i := 0; i < 50; i++ {
				rs = append(rs, e.send("203.0.113.7:0", "/"))
			}
			callouts := 0
			for _, r := range rs {
				if r.action != types.ActionPause {
					t.Fatalf("request %d not paused: %v", r.id, r.action)
				}
				if r.callout != nil {
					callouts++
				}
			}
			if callouts != 1 {
				t.Fatalf("%d callouts for 50 concurrent misses, want 1", callouts)
			}
			e.answer(rs[0], tc.status, tc.body)
			for _, r := range rs {
				if tc.want == 0 {
					e.wantContinue(r)
				} else {
					e.wantReply(r, tc.want)
				}
			}
			if got := e.counter("ipveil.callouts.coalesced"); got != 49 {
				t.Errorf("coalesced = %d, want 49", got)
			}
			if got := e.counter("ipveil.callouts.sent"); got != 1 {
				t.Errorf("sent = %d, want 1", got)
			}
		})
	}
}

func TestWaitersSurviveTheOwnerLeaving(t *testing.T) {
	e := newEnv(t, "")
	owner := e.send("203.0.113.7:0", "/")
	w1 := e.send("203.0.113.7:0", "/a")
	w2 := e.send("203.0.113.7:0", "/b")
	if owner.callout == nil || w1.callout != nil || w2.callout != nil {
		t.Fatal("want exactly the owner's callout")
	}
	e.host.CompleteHttpContext(owner.id) // the owner's client goes away
	e.host.CompleteHttpContext(w2.id)    // and so does one waiter
	e.host.Tick()
	rc := e.rootCallouts()
	if len(rc) != 1 {
		t.Fatalf("want one callout from the plugin context on the tick, got %d", len(rc))
	}
	e.host.CallOnHttpCallResponse(rc[0].CalloutID, [][2]string{{":status", "200"}}, nil, []byte(fmt.Sprintf(bodyTor, "203.0.113.7")))
	e.wantReply(w1, 403)
	if lr := e.reply(w2); lr != nil {
		t.Fatal("answered a waiter that had gone")
	}
	if lr := e.reply(owner); lr != nil {
		t.Fatal("answered the owner that had gone")
	}
}

func TestOwnerLeavingAloneDropsTheLookup(t *testing.T) {
	e := newEnv(t, "")
	owner := e.send("203.0.113.7:0", "/")
	e.host.CompleteHttpContext(owner.id)
	e.host.Tick()
	if n := len(e.rootCallouts()); n != 0 {
		t.Fatalf("nobody waits, yet %d callouts were made", n)
	}
	// The next request looks the client up afresh.
	if r := e.send("203.0.113.7:0", "/"); r.callout == nil {
		t.Fatal("no lookup for the next request")
	}
}

func TestBreakerOpensFailsFastAndRecovers(t *testing.T) {
	e := newEnv(t, `"breaker": {"failures": 3, "cooldown_s": 30}, "policy": {"on_error": "block"}`)
	for i := 0; i < 3; i++ {
		ip := fmt.Sprintf("192.0.2.%d", 100+i)
		r := e.send(ip+":0", "/")
		e.answer(r, 500, "{}")
		e.wantReply(r, 403)
	}
	if got := e.counter("ipveil.breaker.opened"); got != 1 {
		t.Fatalf("breaker opened %d times, want 1", got)
	}
	if v, _ := e.host.GetGaugeMetric("ipveil.breaker.open_workers"); v != 1 {
		t.Errorf("open_workers gauge = %d", v)
	}
	// Open: a new client is answered at once with on_error, no callout.
	r := e.send("192.0.2.200:0", "/")
	if r.callout != nil {
		t.Fatal("a callout while the breaker is open")
	}
	e.wantReply(r, 403)
	if e.state(StateReason) != "error:breaker_open" {
		t.Errorf("reason %q", e.state(StateReason))
	}
	if got := e.counter("ipveil.breaker.rejected"); got != 1 {
		t.Errorf("rejected = %d", got)
	}
	// After the cool-down one probe goes through; while it is out, others
	// still fail fast.
	e.clock.t = e.clock.t.Add(31 * time.Second)
	probe := e.send("192.0.2.201:0", "/")
	if probe.callout == nil {
		t.Fatal("no probe after the cool-down")
	}
	other := e.send("192.0.2.202:0", "/")
	if other.callout != nil {
		t.Fatal("a second callout while probing")
	}
	e.answer(probe, 200, fmt.Sprintf(bodyClean, "192.0.2.201"))
	e.wantContinue(probe)
	if v, _ := e.host.GetGaugeMetric("ipveil.breaker.open_workers"); v != 0 {
		t.Errorf("open_workers gauge = %d after recovery", v)
	}
	// Closed again: lookups resume.
	if r := e.send("192.0.2.203:0", "/"); r.callout == nil {
		t.Fatal("lookups did not resume after a successful probe")
	}
}

func TestBreakerProbeFailureReopens(t *testing.T) {
	e := newEnv(t, `"breaker": {"failures": 1, "cooldown_s": 10}`)
	r := e.send("192.0.2.1:0", "/")
	e.answer(r, 429, `{"error":"quota"}`)
	e.clock.t = e.clock.t.Add(11 * time.Second)
	probe := e.send("192.0.2.2:0", "/")
	if probe.callout == nil {
		t.Fatal("no probe")
	}
	e.answer(probe, 504, "")
	if r := e.send("192.0.2.3:0", "/"); r.callout != nil {
		t.Fatal("a failed probe must reopen the breaker")
	}
	if got := e.counter("ipveil.callouts.failed.quota"); got != 1 {
		t.Errorf("failed.quota = %d", got)
	}
	if got := e.counter("ipveil.callouts.failed.timeout"); got != 1 {
		t.Errorf("failed.timeout = %d", got)
	}
}

func TestStaleWhileRefreshing(t *testing.T) {
	e := newEnv(t, `"cache": {"ttl_s": 60, "stale_s": 30}`)
	r := e.send("203.0.113.7:0", "/")
	e.answer(r, 200, fmt.Sprintf(bodyTor, "203.0.113.7"))
	e.wantReply(r, 403)

	e.clock.t = e.clock.t.Add(70 * time.Second) // expired, within stale_s
	r2 := e.send("203.0.113.7:0", "/")
	if r2.callout != nil {
		t.Fatal("a stale hit must not pause the request for a lookup")
	}
	e.wantReply(r2, 403)
	if e.state(StateSource) != "stale" {
		t.Errorf("source %q", e.state(StateSource))
	}
	e.host.Tick()
	rc := e.rootCallouts()
	if len(rc) != 1 {
		t.Fatalf("want one background refresh, got %d", len(rc))
	}
	e.host.CallOnHttpCallResponse(rc[0].CalloutID, [][2]string{{":status", "200"}}, nil, []byte(fmt.Sprintf(bodyClean, "203.0.113.7")))
	r3 := e.send("203.0.113.7:0", "/")
	if r3.callout != nil {
		t.Fatal("the refreshed verdict was not cached")
	}
	e.wantContinue(r3)

	e.clock.t = e.clock.t.Add(200 * time.Second) // beyond stale_s: a plain miss
	if r4 := e.send("203.0.113.7:0", "/"); r4.callout == nil {
		t.Fatal("an entry past stale_s must be looked up")
	}
}

func TestCacheMetricsAndLevels(t *testing.T) {
	e := newEnv(t, "")
	r := e.send("203.0.113.7:0", "/")
	e.answer(r, 200, fmt.Sprintf(bodyTor, "203.0.113.7"))
	e.send("203.0.113.7:0", "/")
	if e.counter("ipveil.cache.miss") != 1 || e.counter("ipveil.cache.local_hit") != 1 {
		t.Errorf("miss=%d local=%d", e.counter("ipveil.cache.miss"), e.counter("ipveil.cache.local_hit"))
	}
	if got := e.counter("ipveil.requests.verdict.block.reason.tor"); got != 2 {
		t.Errorf("verdict counter = %d", got)
	}
	if v, _ := e.host.GetHistogramMetric("ipveil.lookup.latency_ms"); v != 0 {
		t.Logf("latency histogram last value %d", v)
	}
}

func TestSharedLevelWithoutLocalLRU(t *testing.T) {
	e := newEnv(t, `"cache": {"local_entries": 0}`)
	r := e.send("203.0.113.7:0", "/")
	e.answer(r, 200, fmt.Sprintf(bodyTor, "203.0.113.7"))
	e.send("203.0.113.7:0", "/")
	if e.counter("ipveil.cache.shared_hit") != 1 {
		t.Errorf("shared_hit = %d", e.counter("ipveil.cache.shared_hit"))
	}
}

func TestSlotCollisionNeverAnswersForAnotherClient(t *testing.T) {
	e := newEnv(t, `"cache": {"slots": 1, "local_entries": 0}`)
	r := e.send("203.0.113.7:0", "/")
	e.answer(r, 200, fmt.Sprintf(bodyTor, "203.0.113.7"))
	// Same single slot, different client: must be a miss, not a block.
	r2 := e.send("192.0.2.10:0", "/")
	if r2.callout == nil {
		t.Fatal("a colliding slot answered for another client")
	}
	e.answer(r2, 200, fmt.Sprintf(bodyClean, "192.0.2.10"))
	e.wantContinue(r2)
	// The slot now holds the second client; the first is looked up again.
	if r3 := e.send("203.0.113.7:0", "/"); r3.callout == nil {
		t.Fatalf("the overwritten entry still answered: source %s reason %s", e.state(StateSource), e.state(StateReason))
	}
}

func TestSlotCodecRoundTrip(t *testing.T) {
	rt := newReasonTable(policy.DefaultPolicy())
	exp := time.UnixMilli(1_800_000_000_123)
	in := Entry{Verdict: policy.Challenge, Reason: "score_medium", Expires: exp,
		Signals: policy.Signals{Tor: policy.False, VPN: policy.True, Score: 65, ScoreKnown: true, ASN: 64500, ASNKnown: true}}
	k, out, ok := decodeSlot(encodeSlot(0xdeadbeef, in, rt), rt)
	if !ok || k != 0xdeadbeef {
		t.Fatal("decode failed")
	}
	if out.Verdict != in.Verdict || out.Reason != in.Reason || !out.Expires.Equal(exp) || out.Failed ||
		out.Signals.VPN != policy.True || out.Signals.Tor != policy.False || out.Signals.Proxy != policy.Unknown ||
		out.Signals.Score != 65 || out.Signals.ASN != 64500 {
		t.Fatalf("round trip: %+v", out)
	}
	for _, bad := range [][]byte{nil, make([]byte, slotSize), append([]byte{2}, make([]byte, slotSize-1)...), make([]byte, slotSize+1)} {
		if _, _, ok := decodeSlot(bad, rt); ok {
			t.Errorf("decoded garbage %v", bad)
		}
	}
	if rt.name(rt.index("not-a-rule")) != unknownReason {
		t.Error("unknown reason")
	}
}

func TestLRU(t *testing.T) {
	l := newLRU(3)
	for i := 1; i <= 3; i++ {
		l.put(clientKey(i), Entry{Reason: fmt.Sprint(i)})
	}
	l.get(1)                     // 1 is now the most recent
	l.put(4, Entry{Reason: "4"}) // evicts 2, the least recent
	if _, ok := l.get(2); ok {
		t.Fatal("2 should have been evicted")
	}
	for _, k := range []clientKey{1, 3, 4} {
		if e, ok := l.get(k); !ok || e.Reason != fmt.Sprint(k) {
			t.Fatalf("lost %d", k)
		}
	}
	l.put(3, Entry{Reason: "three"})
	if e, _ := l.get(3); e.Reason != "three" || l.len() != 3 {
		t.Fatal("update in place")
	}
	if newLRU(0) != nil {
		t.Fatal("capacity 0 means no LRU")
	}
	// Churn through many keys: the size stays bounded.
	for i := 0; i < 10000; i++ {
		l.put(clientKey(i+100), Entry{})
	}
	if l.len() != 3 || len(l.nodes) != 3 {
		t.Fatalf("grew to %d", l.len())
	}
}

func TestClientKeyIsKeyed(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	k1 := newSipKey(make([]byte, 32))
	s := make([]byte, 32)
	s[0] = 1
	k2 := newSipKey(s)
	if k1.client(a) == k2.client(a) {
		t.Fatal("the key must depend on the secret")
	}
	if k1.client(a) != k1.client(netip.MustParseAddr("::ffff:192.0.2.1")) {
		t.Fatal("mapped and plain IPv4 must be the same client")
	}
}

// Another worker's live claim on a client makes this worker wait for that
// worker's verdict in shared data instead of calling out.
func TestWaitsForAnotherWorkersLookup(t *testing.T) {
	e := newEnv(t, "")
	p := e.vm.plugin
	key := p.keyer.client(netip.MustParseAddr("203.0.113.7"))
	if !p.cache.Claim(key, e.clock.t.Add(time.Second), e.clock.t) {
		t.Fatal("could not claim")
	}
	r := e.send("203.0.113.7:0", "/")
	if r.callout != nil || r.action != types.ActionPause {
		t.Fatalf("want a paused request and no callout, got %v / %v", r.action, r.callout)
	}
	e.host.Tick() // nothing in shared data yet: keep waiting
	if e.reply(r) != nil || len(e.rootCallouts()) != 0 {
		t.Fatal("answered or called out while the other worker's claim is live")
	}
	// The other worker stores its verdict.
	p.cache.Put(key, Entry{Verdict: policy.Block, Reason: "tor", Expires: e.clock.t.Add(time.Minute)})
	e.host.Tick()
	e.wantReply(r, 403)
	if e.state(StateReason) != "tor" {
		t.Errorf("reason %q", e.state(StateReason))
	}
}

// When the other worker's claim runs out without a verdict, this worker
// looks the client up itself.
func TestAnotherWorkersClaimRunsOut(t *testing.T) {
	e := newEnv(t, "")
	p := e.vm.plugin
	key := p.keyer.client(netip.MustParseAddr("203.0.113.7"))
	p.cache.Claim(key, e.clock.t.Add(time.Second), e.clock.t)
	r := e.send("203.0.113.7:0", "/")
	e.clock.t = e.clock.t.Add(2 * time.Second)
	e.host.Tick()
	rc := e.rootCallouts()
	if len(rc) != 1 {
		t.Fatalf("want this worker's own lookup after the claim ran out, got %d", len(rc))
	}
	e.host.CallOnHttpCallResponse(rc[0].CalloutID, [][2]string{{":status", "200"}}, nil, []byte(fmt.Sprintf(bodyTor, "203.0.113.7")))
	e.wantReply(r, 403)
}

// When this worker's copy of a verdict has expired but another worker has
// refreshed it in shared data, the fresh one is used: no second lookup.
func TestExpiredLocalEntryDefersToAFresherSharedOne(t *testing.T) {
	e := newEnv(t, "")
	r := e.send("203.0.113.7:0", "/")
	e.answer(r, 200, fmt.Sprintf(bodyTor, "203.0.113.7"))
	e.wantReply(r, 403)
	e.clock.t = e.clock.t.Add(2 * time.Minute) // past ttl_s
	p := e.vm.plugin
	key := p.keyer.client(netip.MustParseAddr("203.0.113.7"))
	// Another worker looked the client up again and stored the verdict.
	p.cache.(*tieredCache).shared.put(key, Entry{Verdict: policy.Block, Reason: "tor", Expires: e.clock.t.Add(time.Minute)})
	r2 := e.send("203.0.113.7:0", "/")
	if r2.callout != nil {
		t.Fatal("looked the client up again although shared data holds a fresh verdict")
	}
	e.wantReply(r2, 403)
	if got := e.counter("ipveil.cache.shared_hit"); got != 1 {
		t.Errorf("shared_hit = %d", got)
	}
}

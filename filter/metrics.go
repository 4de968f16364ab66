package filter

import (
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/ipveil/ipveil/policy"
)

// Metric names. Envoy shows them with its "wasmcustom." prefix. The ABI
// has no tags, so tags are encoded in the name, Envoy style, and extracted
// with stats_tags regexes (see the README):
//
//	ipveil.requests.verdict.<verdict>.reason.<reason>   counter
//	ipveil.cache.local_hit / shared_hit / stale_hit / miss   counters
//	ipveil.callouts.sent / coalesced                      counters
//	ipveil.callouts.failed.<kind>                         counter per failure kind
//	ipveil.breaker.opened / rejected                      counters
//	ipveil.breaker.open_workers                           gauge
//	ipveil.lookup.latency_ms                              histogram
//
// No name ever holds an address: reasons are rule names, fixed words and
// failure kinds.
const (
	metricVerdictPrefix = "ipveil.requests.verdict."
	metricCacheLocal    = "ipveil.cache.local_hit"
	metricCacheShared   = "ipveil.cache.shared_hit"
	metricCacheStale    = "ipveil.cache.stale_hit"
	metricCacheMiss     = "ipveil.cache.miss"
	metricCallouts      = "ipveil.callouts.sent"
	metricCoalesced     = "ipveil.callouts.coalesced"
	metricFailedPrefix  = "ipveil.callouts.failed."
	metricBreakerOpened = "ipveil.breaker.opened"
	metricBreakerReject = "ipveil.breaker.rejected"
	metricBreakerOpen   = "ipveil.breaker.open_workers"
	metricLatency       = "ipveil.lookup.latency_ms"

	metricChallengeIssued       = "ipveil.challenge.issued"
	metricChallengeSolved       = "ipveil.challenge.solved"
	metricChallengeFailedPrefix = "ipveil.challenge.failed."
	metricPassAccepted          = "ipveil.challenge.pass_accepted"
	metricPassRejectedPrefix    = "ipveil.challenge.pass_rejected."
)

// counter is a metric counter whose increments are kept in the VM and
// handed to the host on the plugin's tick: a request that only hits the
// cache then makes no metric hostcall at all. Stats lag by at most one tick
// period.
type counter struct {
	m       proxywasm.MetricCounter
	pending uint64
}

func newCounter(name string) *counter { return &counter{m: proxywasm.DefineCounterMetric(name)} }

func (c *counter) inc() { c.pending++ }

func (c *counter) flush() {
	if c.pending > 0 {
		c.m.Increment(c.pending)
		c.pending = 0
	}
}

type metrics struct {
	all      []*counter                           // every counter, for flush
	verdicts [policy.Flag + 1]map[string]*counter // by verdict, then reason

	cacheLocal, cacheShared, cacheStale, cacheMiss *counter
	callouts, coalesced                            *counter
	failed                                         map[string]*counter
	breakerOpened, breakerRejected                 *counter
	challengeIssued, challengeSolved, passAccepted *counter
	challengeByReason                              map[string]*counter // failures and rejected passes
	breakerOpen                                    proxywasm.MetricGauge
	latency                                        proxywasm.MetricHistogram
}

func newMetrics() *metrics {
	m := &metrics{
		failed:      map[string]*counter{},
		breakerOpen: proxywasm.DefineGaugeMetric(metricBreakerOpen),
		latency:     proxywasm.DefineHistogramMetric(metricLatency),
	}
	m.cacheLocal = m.define(metricCacheLocal)
	m.cacheShared = m.define(metricCacheShared)
	m.cacheStale = m.define(metricCacheStale)
	m.cacheMiss = m.define(metricCacheMiss)
	m.callouts = m.define(metricCallouts)
	m.coalesced = m.define(metricCoalesced)
	m.breakerOpened = m.define(metricBreakerOpened)
	m.breakerRejected = m.define(metricBreakerReject)
	m.challengeIssued = m.define(metricChallengeIssued)
	m.challengeSolved = m.define(metricChallengeSolved)
	m.passAccepted = m.define(metricPassAccepted)
	m.challengeByReason = map[string]*counter{}
	for _, k := range policy.Kinds() {
		m.failed[k.String()] = m.define(metricFailedPrefix + k.String())
	}
	m.failed[kindBreakerOpen] = m.define(metricFailedPrefix + kindBreakerOpen)
	return m
}

func (m *metrics) define(name string) *counter {
	c := newCounter(name)
	m.all = append(m.all, c)
	return c
}

// flush hands every pending increment to the host.
func (m *metrics) flush() {
	for _, c := range m.all {
		c.flush()
	}
}

// verdict counts one request's decision.
func (m *metrics) verdict(d decision) {
	if int(d.verdict) >= len(m.verdicts) {
		return
	}
	byReason := m.verdicts[d.verdict]
	if byReason == nil {
		byReason = map[string]*counter{}
		m.verdicts[d.verdict] = byReason
	}
	c, ok := byReason[d.reason]
	if !ok {
		c = m.define(metricVerdictPrefix + d.verdict.String() + ".reason." + metricWord(d.reason))
		byReason[d.reason] = c
	}
	c.inc()
}

func (m *metrics) failure(kind string) {
	if c, ok := m.failed[kind]; ok {
		c.inc()
	}
}

// challengeCount counts a challenge failure or rejected pass by reason.
func (m *metrics) challengeCount(prefix, reason string) {
	name := prefix + metricWord(reason)
	c, ok := m.challengeByReason[name]
	if !ok {
		c = m.define(name)
		m.challengeByReason[name] = c
	}
	c.inc()
}

// metricWord keeps a reason usable as one dot-separated name component.
func metricWord(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}

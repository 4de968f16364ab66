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
)

type metrics struct {
	verdicts map[string]proxywasm.MetricCounter

	cacheLocal, cacheShared, cacheStale, cacheMiss proxywasm.MetricCounter
	callouts, coalesced                            proxywasm.MetricCounter
	failed                                         map[string]proxywasm.MetricCounter
	breakerOpened, breakerRejected                 proxywasm.MetricCounter
	breakerOpen                                    proxywasm.MetricGauge
	latency                                        proxywasm.MetricHistogram
}

func newMetrics() *metrics {
	m := &metrics{
		verdicts:        map[string]proxywasm.MetricCounter{},
		cacheLocal:      proxywasm.DefineCounterMetric(metricCacheLocal),
		cacheShared:     proxywasm.DefineCounterMetric(metricCacheShared),
		cacheStale:      proxywasm.DefineCounterMetric(metricCacheStale),
		cacheMiss:       proxywasm.DefineCounterMetric(metricCacheMiss),
		callouts:        proxywasm.DefineCounterMetric(metricCallouts),
		coalesced:       proxywasm.DefineCounterMetric(metricCoalesced),
		failed:          map[string]proxywasm.MetricCounter{},
		breakerOpened:   proxywasm.DefineCounterMetric(metricBreakerOpened),
		breakerRejected: proxywasm.DefineCounterMetric(metricBreakerReject),
		breakerOpen:     proxywasm.DefineGaugeMetric(metricBreakerOpen),
		latency:         proxywasm.DefineHistogramMetric(metricLatency),
	}
	for _, k := range policy.Kinds() {
		m.failed[k.String()] = proxywasm.DefineCounterMetric(metricFailedPrefix + k.String())
	}
	m.failed[kindBreakerOpen] = proxywasm.DefineCounterMetric(metricFailedPrefix + kindBreakerOpen)
	return m
}

// verdict counts one request's decision.
func (m *metrics) verdict(d decision) {
	key := d.verdict.String() + ".reason." + metricWord(d.reason)
	c, ok := m.verdicts[key]
	if !ok {
		c = proxywasm.DefineCounterMetric(metricVerdictPrefix + key)
		m.verdicts[key] = c
	}
	c.Increment(1)
}

func (m *metrics) failure(kind string) {
	if c, ok := m.failed[kind]; ok {
		c.Increment(1)
	}
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

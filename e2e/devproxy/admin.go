package devproxy

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ipveil/ipveil/e2e/bootstrap"
	"github.com/ipveil/ipveil/e2e/host"
)

// stats are the proxy's own Envoy-named counters and gauges.
type stats struct {
	mu       sync.Mutex
	counters map[string]*atomic.Int64
	gauges   map[string]int64
}

func newStats(cfg *bootstrap.Config) *stats {
	s := &stats{counters: map[string]*atomic.Int64{}, gauges: map[string]int64{"server.live": 1}}
	prefix := "http." + cfg.Listener.StatPrefix + "."
	for _, n := range []string{"downstream_rq_total", "downstream_rq_completed", "downstream_rq_1xx", "downstream_rq_2xx",
		"downstream_rq_3xx", "downstream_rq_4xx", "downstream_rq_5xx", "no_route"} {
		s.counter(prefix + n)
	}
	for name := range cfg.Clusters {
		for _, n := range []string{"upstream_rq_total", "upstream_cx_connect_fail", "upstream_rq_timeout"} {
			s.counter("cluster." + name + "." + n)
		}
	}
	return s
}

func (s *stats) counter(name string) *atomic.Int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counters[name]
	if c == nil {
		c = &atomic.Int64{}
		s.counters[name] = c
	}
	return c
}

func (s *stats) inc(name string) { s.counter(name).Add(1) }

// responseCode counts a response as Envoy does: <prefix>_<class>xx, and for
// upstream requests also <prefix>_<code>.
func (s *stats) responseCode(prefix string, code int) {
	if code < 100 || code > 599 {
		return
	}
	s.inc(fmt.Sprintf("%s_%dxx", prefix, code/100))
	if strings.Contains(prefix, "upstream_rq") {
		s.inc(fmt.Sprintf("%s_%d", prefix, code))
	}
}

type statLine struct {
	name  string
	kind  string // counter, gauge, histogram
	value int64
	hist  *host.Metric
}

func (p *Proxy) statLines() []statLine {
	var out []statLine
	p.stats.mu.Lock()
	for n, c := range p.stats.counters {
		out = append(out, statLine{name: n, kind: "counter", value: c.Load()})
	}
	for n, v := range p.stats.gauges {
		out = append(out, statLine{name: n, kind: "gauge", value: v})
	}
	p.stats.mu.Unlock()
	out = append(out, statLine{name: "server.concurrency", kind: "gauge", value: int64(p.opts.Workers)})
	var crashes int64
	for _, h := range p.hosts {
		crashes += h.Traps()
	}
	// Not an Envoy stat: how often a Wasm VM crashed and was replaced.
	out = append(out, statLine{name: "devproxy.wasm.vm_crashes", kind: "counter", value: crashes})
	for _, m := range p.store.Metrics() {
		m := m
		switch m.Type {
		case host.Counter:
			out = append(out, statLine{name: m.Name, kind: "counter", value: m.Value})
		case host.Gauge:
			out = append(out, statLine{name: m.Name, kind: "gauge", value: m.Value})
		default:
			out = append(out, statLine{name: m.Name, kind: "histogram", hist: &m})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

var quantiles = []float64{0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1}

func (p *Proxy) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("format") == "prometheus" {
			p.prometheus(w, r)
			return
		}
		var re *regexp.Regexp
		if f := r.URL.Query().Get("filter"); f != "" {
			var err error
			if re, err = regexp.Compile(f); err != nil {
				http.Error(w, "Invalid re2 regex", http.StatusBadRequest)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		var b strings.Builder
		for _, l := range p.statLines() {
			if re != nil && !re.MatchString(l.name) {
				continue
			}
			if l.kind != "histogram" {
				fmt.Fprintf(&b, "%s: %d\n", l.name, l.value)
				continue
			}
			if len(l.hist.Samples) == 0 {
				fmt.Fprintf(&b, "%s: No recorded values\n", l.name)
				continue
			}
			fmt.Fprintf(&b, "%s:", l.name)
			for _, q := range quantiles {
				fmt.Fprintf(&b, " P%s(nan,%s)", strconv.FormatFloat(q*100, 'f', -1, 64), fmtFloat(l.hist.Quantile(q)))
			}
			b.WriteByte('\n')
		}
		w.Write([]byte(b.String()))
	})
	mux.HandleFunc("/stats/prometheus", p.prometheus)
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		if p.shuttingDown.Load() {
			http.Error(w, "DRAINING", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		w.Write([]byte("LIVE\n"))
	})
	mux.HandleFunc("/quitquitquit", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "Method "+r.Method+" not allowed, POST required.", http.StatusMethodNotAllowed)
			return
		}
		w.Write([]byte("OK\n"))
		p.quitOnce.Do(func() { close(p.quit) })
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid path. admin commands are: /stats, /stats/prometheus, /ready, /quitquitquit", http.StatusNotFound)
	})
	return mux
}

func fmtFloat(f float64) string {
	if math.IsNaN(f) {
		return "nan"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

var promBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

var (
	reClass = regexp.MustCompile(`^(.*_rq)_([1-5])xx$`)
	reCode  = regexp.MustCompile(`^(.*upstream_rq)_([1-5][0-9][0-9])$`)
)

// promName converts an Envoy stat name to its Prometheus name and tags,
// with the default tag extractors that matter here. Custom (wasmcustom)
// stats lose the namespace and get no envoy_ prefix, as in Envoy.
func promName(name string) (string, [][2]string) {
	if rest, ok := strings.CutPrefix(name, "wasmcustom."); ok {
		return sanitize(rest), nil
	}
	var tags [][2]string
	parts := strings.SplitN(name, ".", 3)
	if len(parts) == 3 && parts[0] == "http" {
		tags = append(tags, [2]string{"envoy_http_conn_manager_prefix", parts[1]})
		name = "http." + parts[2]
	} else if len(parts) == 3 && parts[0] == "cluster" {
		tags = append(tags, [2]string{"envoy_cluster_name", parts[1]})
		name = "cluster." + parts[2]
	}
	if m := reClass.FindStringSubmatch(name); m != nil {
		name = m[1] + "_xx"
		tags = append([][2]string{{"envoy_response_code_class", m[2]}}, tags...)
	} else if m := reCode.FindStringSubmatch(name); m != nil {
		name = m[1]
		tags = append([][2]string{{"envoy_response_code", m[2]}}, tags...)
	}
	return "envoy_" + sanitize(name), tags
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

func promTags(tags [][2]string, extra ...[2]string) string {
	all := append(append([][2]string(nil), tags...), extra...)
	parts := make([]string, len(all))
	for i, t := range all {
		parts[i] = fmt.Sprintf("%s=%q", t[0], t[1])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func (p *Proxy) prometheus(w http.ResponseWriter, r *http.Request) {
	type series struct {
		kind  string
		lines []string
	}
	groups := map[string]*series{}
	for _, l := range p.statLines() {
		name, tags := promName(l.name)
		g := groups[name]
		if g == nil {
			g = &series{kind: l.kind}
			groups[name] = g
		}
		if l.kind != "histogram" {
			g.lines = append(g.lines, fmt.Sprintf("%s%s %d", name, promTags(tags), l.value))
			continue
		}
		h := l.hist
		for _, le := range promBuckets {
			var n int
			for _, v := range h.Samples {
				if float64(v) <= le {
					n++
				}
			}
			g.lines = append(g.lines, fmt.Sprintf("%s_bucket%s %d", name, promTags(tags, [2]string{"le", strconv.FormatFloat(le, 'f', -1, 64)}), n))
		}
		g.lines = append(g.lines, fmt.Sprintf("%s_bucket%s %d", name, promTags(tags, [2]string{"le", "+Inf"}), h.Count))
		g.lines = append(g.lines, fmt.Sprintf("%s_sum%s %d", name, promTags(tags), h.Sum))
		g.lines = append(g.lines, fmt.Sprintf("%s_count%s %d", name, promTags(tags), h.Count))
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		g := groups[n]
		fmt.Fprintf(&b, "# TYPE %s %s\n", n, g.kind)
		if g.kind != "histogram" {
			sort.Strings(g.lines)
		}
		for _, l := range g.lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Write([]byte(b.String()))
}

package filter

import (
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
)

// rewriteUpstreamHeaders applies the privacy.upstream_headers actions to the
// request's client-address headers and removes any client-supplied verdict
// header. Every line of a repeated header is masked, in order, and the lines
// are sent as one comma-joined line (equivalent for list headers such as
// X-Forwarded-For and Forwarded, and the same on every host: Envoy appends
// to some inline headers with a comma and adds others as new entries).
func (h *httpContext) rewriteUpstreamHeaders(headers [][2]string) {
	cfg := h.plugin.cfg
	// Most requests carry one or two such headers: a small slice beats a map.
	type change struct {
		name  string
		n     int // lines in the request
		lines []string
	}
	var buf [4]change
	changes := buf[:0]
	for _, kv := range headers {
		name := kv[0]
		act, ok := cfg.UpstreamHeaders[name]
		if name == cfg.VerdictHeader && cfg.VerdictHeader != "" {
			act, ok = HeaderStrip, true
		}
		if !ok || act == HeaderKeep {
			continue
		}
		i := 0
		for i < len(changes) && changes[i].name != name {
			i++
		}
		if i == len(changes) {
			changes = append(changes, change{name: name})
		}
		changes[i].n++
		if act == HeaderMask {
			changes[i].lines = append(changes[i].lines, h.plugin.memo.header(cfg, name, kv[1]))
		}
	}
	for _, c := range changes {
		if c.n == 1 && len(c.lines) == 1 {
			// One line in, one line out: a single replace.
			if err := proxywasm.ReplaceHttpRequestHeader(c.name, c.lines[0]); err != nil {
				proxywasm.LogWarnf("ipveil: cannot set header %s: %v", c.name, err)
			}
			continue
		}
		// Envoy removes every line at once; other hosts one per call.
		for i := 0; i < c.n; i++ {
			if err := proxywasm.RemoveHttpRequestHeader(c.name); err != nil {
				proxywasm.LogWarnf("ipveil: cannot remove header %s: %v", c.name, err)
			}
		}
		if len(c.lines) == 0 {
			continue
		}
		if err := proxywasm.AddHttpRequestHeader(c.name, strings.Join(c.lines, ", ")); err != nil {
			proxywasm.LogWarnf("ipveil: cannot set header %s: %v", c.name, err)
		}
	}
}

// maskHeader masks one line of a client-address header.
func maskHeader(cfg *Config, name, value string) string {
	switch name {
	case "x-forwarded-for", "x-original-forwarded-for":
		return cfg.Masker.MaskXFF(value)
	case "forwarded", "x-forwarded":
		return cfg.Masker.MaskForwarded(value)
	default:
		return cfg.Masker.MaskHeaderValue(strings.TrimSpace(value))
	}
}

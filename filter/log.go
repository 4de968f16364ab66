package filter

import (
	"strings"
	"unicode/utf8"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/ipveil/ipveil/internal/jsoncfg"
	"github.com/ipveil/ipveil/policy"
)

// logDecision writes one JSON line for the decision, holding only the
// masked client. Which decisions are logged is set by log.decisions.
func (h *httpContext) logDecision(d decision) {
	cfg := h.plugin.cfg
	switch cfg.LogDecisions {
	case "off":
		return
	case "non_allow":
		if d.verdict == policy.Allow && d.errKind == "" {
			return
		}
	}
	var b strings.Builder
	b.WriteString(`{"ipveil":"decision","client":`)
	appendJSONString(&b, string(h.masked))
	b.WriteString(`,"verdict":`)
	appendJSONString(&b, d.verdict.String())
	b.WriteString(`,"reason":`)
	appendJSONString(&b, d.reason)
	b.WriteString(`,"source":`)
	appendJSONString(&b, d.source)
	b.WriteString(`,"mode":`)
	appendJSONString(&b, string(cfg.Mode))
	if d.errKind != "" {
		b.WriteString(`,"error":`)
		appendJSONString(&b, d.errKind)
	}
	b.WriteString(`}`)
	if d.errKind != "" {
		proxywasm.LogWarn(b.String())
	} else {
		proxywasm.LogInfo(b.String())
	}
}

// logConfigError logs every configuration problem on its own line.
func logConfigError(err error) {
	if ce, ok := err.(*jsoncfg.Error); ok {
		proxywasm.LogCriticalf("ipveil: the plugin configuration has %d problem(s); the plugin will not start", len(ce.Problems))
		for _, p := range ce.Problems {
			proxywasm.LogCriticalf("ipveil: configuration: %s", p.Error())
		}
		return
	}
	proxywasm.LogCriticalf("ipveil: invalid configuration: %v", err)
}

// appendJSONString writes s as a JSON string.
func appendJSONString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(`\ufffd`)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}

package filter

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/ipveil/ipveil/policy"
)

// Filter-state names, read in the access log as
// %FILTER_STATE(wasm.ipveil.client:PLAIN)% and so on.
const (
	StateClient  = "ipveil.client"
	StateVerdict = "ipveil.verdict"
	StateReason  = "ipveil.reason"
	StateSource  = "ipveil.source"
)

// unresolvedClient is the filter-state value when no client address could
// be resolved.
const unresolvedClient = "unresolved"

// Decision sources, as they appear in decision lines and filter state.
const (
	srcBypass   = "bypass"
	srcClientIP = "client_ip"
	srcList     = "list"
	srcCache    = "cache"
	srcLookup   = "lookup"
	srcError    = "error"
)

type decision struct {
	verdict policy.Verdict
	reason  string
	source  string
	errKind string
}

type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
	id     uint32

	masked string // the masked client, or unresolvedClient
	path   string

	paused   bool // waiting for a callout
	answered bool // answered locally or resumed: never twice
	done     bool // the stream is over (completed, or the client went away)
}

// OnHttpRequestHeaders runs the check: bypass, client resolution, lists,
// cache, then a callout that pauses the request until its answer.
func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	cfg := h.plugin.cfg
	if cfg == nil {
		return types.ActionContinue
	}
	headers, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogErrorf("ipveil: cannot read request headers: %v", err)
		return h.finishSync(decision{verdict: cfg.Policy.OnError, reason: "error:headers", source: srcError, errKind: "headers"})
	}
	h.path = headerValue(headers, ":path")

	// Bypassed requests are resolved too, only to report the client's
	// network in the access log.
	src, _ := proxywasm.GetProperty([]string{"source", "address"})
	addr, why := ResolveClientIP(&cfg.ClientIP, &RequestAddrs{SourceAddress: string(src), Headers: headers})
	if why != "" {
		h.masked = unresolvedClient
	} else {
		h.masked = cfg.Masker.String(addr)
	}
	h.setState(StateClient, h.masked)

	// Forget: from here on, headers carry only masked addresses.
	h.rewriteUpstreamHeaders(headers)

	if h.bypassed() {
		return h.finishSync(decision{verdict: policy.Allow, reason: "bypass_path", source: srcBypass})
	}
	if why != "" {
		return h.finishSync(decision{verdict: cfg.OnUnresolved, reason: "client_ip:" + string(why), source: srcClientIP, errKind: string(why)})
	}
	if containsAny(cfg.DenyCIDRs, addr) {
		return h.finishSync(decision{verdict: policy.Block, reason: "deny_list", source: srcList})
	}
	if containsAny(cfg.AllowCIDRs, addr) {
		return h.finishSync(decision{verdict: policy.Allow, reason: "allow_list", source: srcList})
	}
	if e, ok := h.plugin.cache.Get(addr, h.plugin.now()); ok {
		src := srcCache
		if e.Failed {
			src = srcError
		}
		return h.finishSync(decision{verdict: e.Verdict, reason: e.Reason, source: src})
	}
	return h.lookup(addr)
}

// lookup dispatches the reputation callout and pauses the request.
func (h *httpContext) lookup(addr netip.Addr) types.Action {
	cfg := h.plugin.cfg
	p := cfg.Provider
	hdrs := make([][2]string, 0, 4+len(cfg.CalloutHeaders))
	hdrs = append(hdrs,
		[2]string{":method", p.Method},
		[2]string{":path", p.RequestPath(addr.String())},
		[2]string{":authority", p.Authority},
		[2]string{"accept", "application/json"},
	)
	hdrs = append(hdrs, cfg.CalloutHeaders...)
	var body []byte
	if p.Method == "POST" {
		body = []byte(p.RequestBody(addr.String()))
		if headerValue(hdrs, "content-type") == "" {
			hdrs = append(hdrs, [2]string{"content-type", "application/json"})
		}
	}
	_, err := proxywasm.DispatchHttpCall(p.Cluster, hdrs, body, nil, p.Timeout(),
		func(numHeaders, bodySize, _ int) { h.onLookupResponse(addr, numHeaders, bodySize) })
	if err != nil {
		// Envoy fails synchronously for an unknown cluster: a configuration
		// problem, not a provider outage, so it is not cached.
		kind := policy.KindUnknownCluster
		proxywasm.LogErrorf("ipveil: cannot call cluster %q (%v): check provider.cluster against the Envoy clusters", p.Cluster, err)
		return h.finishSync(decision{verdict: cfg.Policy.OnError, reason: "error:" + kind.String(), source: srcError, errKind: kind.String()})
	}
	h.paused = true
	return types.ActionPause
}

// onLookupResponse turns the callout's answer into a verdict, caches it and
// answers or resumes the paused request, exactly once.
func (h *httpContext) onLookupResponse(addr netip.Addr, numHeaders, bodySize int) {
	cfg := h.plugin.cfg
	now := h.plugin.now()
	d := h.evaluateResponse(numHeaders, bodySize)
	e := Entry{Verdict: d.verdict, Reason: d.reason, Failed: d.errKind != ""}
	if e.Failed {
		e.Expires = now.Add(cfg.ErrorTTL)
	} else {
		e.Expires = now.Add(cfg.TTL)
	}
	h.plugin.cache.Put(addr, e)
	if h.done || h.answered {
		return
	}
	if !h.finish(d) {
		h.answered = true
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			proxywasm.LogWarnf("ipveil: cannot resume the request: %v", err)
		}
	}
}

func (h *httpContext) evaluateResponse(numHeaders, bodySize int) decision {
	cfg := h.plugin.cfg
	fail := func(k policy.Kind) decision {
		return decision{verdict: cfg.Policy.OnError, reason: "error:" + k.String(), source: srcError, errKind: k.String()}
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
		var pe *policy.Error
		if errors.As(err, &pe) {
			return fail(pe.Kind)
		}
		return fail(policy.KindUnparsable)
	}
	pd := cfg.Policy.Evaluate(sig)
	return decision{verdict: pd.Verdict, reason: pd.Reason, source: srcLookup}
}

// OnHttpStreamDone marks the stream over: a callout answer arriving later
// must neither answer nor resume it.
func (h *httpContext) OnHttpStreamDone() {
	h.done = true
}

// finishSync acts on d from OnHttpRequestHeaders.
func (h *httpContext) finishSync(d decision) types.Action {
	h.answered = true
	if h.finish(d) {
		return types.ActionPause
	}
	return types.ActionContinue
}

// finish records d and enforces it. It reports whether it answered the
// request locally; otherwise the caller lets the request continue.
func (h *httpContext) finish(d decision) (answered bool) {
	cfg := h.plugin.cfg
	h.setState(StateVerdict, d.verdict.String())
	h.setState(StateReason, d.reason)
	h.setState(StateSource, d.source)
	h.logDecision(d)

	if cfg.Mode == ModeEnforce {
		switch d.verdict {
		case policy.Block:
			h.reply(cfg.Block, nil)
			return true
		case policy.Challenge:
			h.challenge()
			return true
		}
	}
	if cfg.VerdictHeader != "" && (cfg.Mode == ModeDryRun || d.verdict == policy.Flag) {
		v := d.verdict.String() + "; reason=" + d.reason
		if err := proxywasm.ReplaceHttpRequestHeader(cfg.VerdictHeader, v); err != nil {
			proxywasm.LogWarnf("ipveil: cannot set %s: %v", cfg.VerdictHeader, err)
		}
	}
	return false
}

func (h *httpContext) challenge() {
	c := h.plugin.cfg.Challenge
	if c.Kind == "redirect" {
		loc := strings.ReplaceAll(c.URL, "{path}", url.QueryEscape(h.path))
		h.reply(Reply{Status: 302}, [][2]string{{"location", loc}, {"cache-control", "no-store"}})
		return
	}
	h.reply(c.Reply, [][2]string{{"cache-control", "no-store"}})
}

func (h *httpContext) reply(r Reply, extra [][2]string) {
	hdrs := extra
	if r.ContentType != "" && r.Body != "" {
		hdrs = append(hdrs, [2]string{"content-type", r.ContentType})
	}
	if err := proxywasm.SendHttpResponse(r.Status, hdrs, []byte(r.Body), -1); err != nil {
		proxywasm.LogWarnf("ipveil: cannot send the local reply: %v", err)
	}
}

func (h *httpContext) bypassed() bool {
	p := h.path
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	for _, b := range h.plugin.cfg.BypassPaths {
		if strings.HasSuffix(b, "*") {
			if strings.HasPrefix(p, b[:len(b)-1]) {
				return true
			}
		} else if p == b {
			return true
		}
	}
	return false
}

func (h *httpContext) setState(name, value string) {
	if err := proxywasm.SetProperty([]string{name}, []byte(value)); err != nil {
		proxywasm.LogDebugf("ipveil: cannot set filter state %s: %v", name, err)
	}
}

func headerValue(hs [][2]string, name string) string {
	for _, h := range hs {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

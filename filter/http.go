package filter

import (
	"net/netip"
	"net/url"
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
	// StatePseudonym is the keyed pseudonym of the client (privacy.pseudonym).
	StatePseudonym = "ipveil.pseudonym"
	// StateSealed is the client address sealed to the operator's public key
	// (privacy.seal); only the private key, kept away from the proxy, opens it.
	StateSealed = "ipveil.sealed"
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
	srcStale    = "stale"
	srcLookup   = "lookup"
	srcError    = "error"
)

type decision struct {
	verdict    policy.Verdict
	reason     string
	source     string
	errKind    string
	difficulty int // for challenge: the rule's proof-of-work difficulty, 0 for the default
}

type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
	id     uint32

	masked  []byte     // the masked client, or unresolvedClient
	network string     // the masked client as text; "" when unresolved
	client  netip.Addr // the resolved client, kept in memory for sealing only

	authority string   // :authority, for binding challenges and passes to the host
	cookies   []string // the Cookie header lines, for the pass

	verifying   bool   // a verify request waiting for its body
	contentType string // of the verify request
	path        string
	flight      *flight // the lookup this request waits on, if any

	answered bool // answered locally or resumed: never twice
	done     bool // the stream is over (completed, or the client went away)
}

// OnHttpRequestHeaders runs the check: bypass, client resolution, lists,
// cache, then a lookup that pauses the request until its answer.
func (h *httpContext) OnHttpRequestHeaders(_ int, endOfStream bool) types.Action {
	p := h.plugin
	cfg := p.cfg
	if cfg == nil {
		return types.ActionContinue
	}
	headers, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogErrorf("ipveil: cannot read request headers: %v", err)
		return h.finishSync(decision{verdict: cfg.Policy.OnError, reason: "error:headers", source: srcError, errKind: "headers"})
	}
	h.path = headerValue(headers, ":path")

	// Bypassed requests are resolved too, to report the client's network.
	src, _ := proxywasm.GetProperty([]string{"source", "address"})
	addr, why := ResolveClientIP(&cfg.ClientIP, &RequestAddrs{SourceAddress: string(src), Headers: headers})
	if why != "" {
		h.masked = unresolvedBytes
	} else {
		h.masked = p.memo.client(cfg, addr)
		h.network = string(h.masked)
		h.client = addr
	}
	h.setState(pathClient, h.masked)
	if cfg.Pseudonymizer != nil && why == "" {
		h.setState(pathPseudonym, p.memo.pseudonym(cfg, addr))
	}

	if cfg.Challenge.Interactive {
		h.authority = headerValue(headers, ":authority")
		for _, kv := range headers {
			if kv[0] == "cookie" {
				h.cookies = append(h.cookies, kv[1])
			}
		}
		if pathOnly(h.path) == cfg.Challenge.VerifyPath {
			return h.startVerify(headers, endOfStream)
		}
	}

	// Forget: from here on, headers carry only masked addresses.
	h.rewriteUpstreamHeaders(headers)
	h.stripPassCookie()

	switch {
	case h.bypassed():
		return h.finishSync(decision{verdict: policy.Allow, reason: "bypass_path", source: srcBypass})
	case why != "":
		return h.finishSync(decision{verdict: cfg.OnUnresolved, reason: "client_ip:" + string(why), source: srcClientIP, errKind: string(why)})
	case containsAny(cfg.DenyCIDRs, addr):
		return h.finishSync(decision{verdict: policy.Block, reason: "deny_list", source: srcList})
	case containsAny(cfg.AllowCIDRs, addr):
		return h.finishSync(decision{verdict: policy.Allow, reason: "allow_list", source: srcList})
	}

	key := p.keyer.client(addr)
	now := p.now()
	if e, level, ok := p.cache.Get(key, now); ok {
		switch {
		case now.Before(e.Expires):
			if level == LevelLocal {
				p.metrics.cacheLocal.inc()
			} else {
				p.metrics.cacheShared.inc()
			}
			src := srcCache
			if e.Failed {
				src = srcError
			}
			return h.finishSync(decision{verdict: e.Verdict, reason: e.Reason, source: src, difficulty: int(e.Difficulty)})
		case !e.Failed && now.Before(e.Expires.Add(cfg.Stale)):
			// Serve the stale verdict now; refresh it in the background.
			p.metrics.cacheStale.inc()
			p.refresh(addr, key)
			return h.finishSync(decision{verdict: e.Verdict, reason: e.Reason, source: srcStale, difficulty: int(e.Difficulty)})
		}
	}
	p.metrics.cacheMiss.inc()
	if d := h.miss(addr, key); d != nil {
		return h.finishSync(*d)
	}
	return types.ActionPause
}

// OnHttpStreamDone marks the stream over: a lookup answer arriving later
// must neither answer nor resume it.
func (h *httpContext) OnHttpStreamDone() {
	h.done = true
	if h.flight != nil && !h.answered {
		h.plugin.leave(h)
	}
}

// finishSync acts on d from OnHttpRequestHeaders.
func (h *httpContext) finishSync(d decision) types.Action {
	h.answered = true
	if h.finish(d) {
		return types.ActionPause
	}
	return types.ActionContinue
}

// finishAsync acts on d for a paused request, with its context effective.
func (h *httpContext) finishAsync(d decision) {
	h.answered = true
	if !h.finish(d) {
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			proxywasm.LogWarnf("ipveil: cannot resume the request: %v", err)
		}
	}
}

// finish records d and enforces it. It reports whether it answered the
// request locally; otherwise the caller lets the request continue.
func (h *httpContext) finish(d decision) (answered bool) {
	cfg := h.plugin.cfg
	if d.verdict == policy.Challenge && cfg.Mode == ModeEnforce && h.passAccepted() {
		// A valid pass turns a challenge (never a block) into an allow.
		d = decision{verdict: policy.Allow, reason: reasonPassed, source: srcPass}
	}
	h.record(d)

	if cfg.Mode == ModeEnforce {
		switch d.verdict {
		case policy.Block:
			h.reply(cfg.Block, nil)
			return true
		case policy.Challenge:
			h.challenge(d)
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

// record writes d to filter state, metrics and the decision log.
func (h *httpContext) record(d decision) {
	cfg := h.plugin.cfg
	h.setState(pathVerdict, verdictBytes(d.verdict))
	h.setState(pathReason, h.plugin.reasonBytes(d.reason))
	h.setState(pathSource, sourceBytes(d.source))
	if cfg.Sealer != nil && h.client.IsValid() && (cfg.SealWhen == "all" || d.verdict != policy.Allow || d.errKind != "") {
		if tok, err := cfg.Sealer.Seal(h.client); err == nil {
			h.setState(pathSealed, []byte(tok))
		} else {
			proxywasm.LogWarnf("ipveil: cannot seal the client address: %v", err)
		}
	}
	h.plugin.metrics.verdict(d)
	h.logDecision(d)
}

func (h *httpContext) challenge(d decision) {
	c := h.plugin.cfg.Challenge
	if c.Interactive {
		h.servePuzzle(d.difficulty, c.Status, h.path, "")
		return
	}
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

// pathOnly returns p without its query string and fragment.
func pathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

func (h *httpContext) bypassed() bool {
	p := pathOnly(h.path)
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

// Property paths and values used on every request, made once: a Wasm VM
// pays dearly for small allocations.
var (
	pathClient      = []string{StateClient}
	pathVerdict     = []string{StateVerdict}
	pathReason      = []string{StateReason}
	pathSource      = []string{StateSource}
	pathPseudonym   = []string{StatePseudonym}
	pathSealed      = []string{StateSealed}
	unresolvedBytes = []byte(unresolvedClient)
	verdictValues   = func() (v [policy.Flag + 1][]byte) {
		for i := range v {
			v[i] = []byte(policy.Verdict(i).String())
		}
		return v
	}()
	sourceValues = map[string][]byte{}
)

func init() {
	for _, s := range []string{srcBypass, srcClientIP, srcList, srcCache, srcStale, srcLookup, srcError, srcPass, srcChallenge} {
		sourceValues[s] = []byte(s)
	}
}

func verdictBytes(v policy.Verdict) []byte {
	if int(v) < len(verdictValues) {
		return verdictValues[v]
	}
	return []byte(v.String())
}

func sourceBytes(s string) []byte {
	if b, ok := sourceValues[s]; ok {
		return b
	}
	return []byte(s)
}

func (h *httpContext) setState(path []string, value []byte) {
	if err := proxywasm.SetProperty(path, value); err != nil {
		proxywasm.LogDebugf("ipveil: cannot set filter state %s: %v", path[0], err)
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

package filter

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/ipveil/ipveil/challenge"
	"github.com/ipveil/ipveil/policy"
)

// Decision sources and reasons of the interactive challenge.
const (
	srcPass          = "pass"
	srcChallenge     = "challenge"
	reasonPassed     = "challenge_passed"
	reasonSolved     = "challenge_solved"
	reasonFailedPref = "challenge_failed:"
)

// errBadMethod is the verify path answered with another method than
// challenge.verify_method.
var errBadMethod = errors.New("the verify path takes the configured method only")

// passAccepted reports whether the request carries a pass that turns a
// challenge into an allow. A pass never overrides block: it is consulted for
// the challenge verdict only.
func (h *httpContext) passAccepted() bool {
	c := &h.plugin.cfg.Challenge
	if !c.Interactive || c.Keys == nil || h.network == "" {
		return false
	}
	// Every cookie of that name counts: browsers send two when a host-only
	// and a domain cookie coexist, and a stale one must not hide a valid one.
	for _, line := range h.cookies {
		for _, part := range strings.Split(line, ";") {
			v, ok := challenge.CookieValue(part, c.Cookie)
			if !ok {
				continue
			}
			err := challenge.VerifyPass(c.Keys, v, h.plugin.now(), h.network, h.authority)
			if err == nil {
				h.plugin.metrics.passAccepted.inc()
				return true
			}
			h.plugin.metrics.challengeCount(metricPassRejectedPrefix, challenge.Reason(err))
		}
	}
	return false
}

// servePuzzle answers a challenged request with the interactive page: a
// fresh puzzle (or CAPTCHA ticket) bound to the client's masked network,
// the host and the path. message is shown after a failed attempt.
func (h *httpContext) servePuzzle(difficulty int, status uint32, returnPath, message string) {
	p := h.plugin
	c := &p.cfg.Challenge
	if difficulty == 0 {
		difficulty = c.Difficulty
	}
	if c.Keys == nil || h.network == "" {
		// No keys, or no network to bind a puzzle to (the client was not
		// resolved): a page that cannot be solved, never a pass for anyone.
		h.reply(Reply{Status: status, Body: defaultChallengeBody, ContentType: "text/html; charset=utf-8"}, [][2]string{{"cache-control", "no-store"}})
		return
	}
	params := challenge.PuzzleParams{TTL: c.PuzzleTTL, Difficulty: difficulty, Network: h.network, Host: h.authority, ReturnPath: returnPath}
	var tok string
	var err error
	if c.Provider.IsCaptcha() {
		tok, err = challenge.IssueTicket(c.Keys, p.now(), params)
	} else {
		tok, err = challenge.Issue(c.Keys, p.now(), params)
	}
	if err != nil {
		proxywasm.LogWarnf("ipveil: cannot issue a challenge (%s); answering with a plain page", challenge.Reason(err))
		h.reply(Reply{Status: status, Body: defaultChallengeBody, ContentType: "text/html; charset=utf-8"}, [][2]string{{"cache-control", "no-store"}})
		return
	}
	page := c.Template.Render(challenge.PageData{
		Provider: c.Provider, Token: tok, Difficulty: difficulty, VerifyPath: c.VerifyPath,
		ReturnPath: returnPath, Title: c.Title, Message: message, SiteKey: c.SiteKey, Method: c.VerifyMethod,
	})
	hdrs := [][2]string{{"content-type", "text/html; charset=utf-8"}, {"cache-control", "no-store"}, {"x-content-type-options", "nosniff"}}
	if csp := c.Template.ContentSecurityPolicy(c.Provider); csp != "" {
		hdrs = append(hdrs, [2]string{"content-security-policy", csp})
	}
	p.metrics.challengeIssued.inc()
	if err := proxywasm.SendHttpResponse(status, hdrs, page, -1); err != nil {
		proxywasm.LogWarnf("ipveil: cannot send the challenge page: %v", err)
	}
}

// startVerify handles the request headers of the verify path. The request
// never reaches the upstream: it is answered here (an answer in the query
// string) or once its body is in (a form body).
func (h *httpContext) startVerify(headers [][2]string, endOfStream bool) types.Action {
	c := &h.plugin.cfg.Challenge
	h.answered = true // from now on the filter answers this request itself
	method := headerValue(headers, ":method")
	want := strings.ToUpper(c.VerifyMethod)
	switch {
	case method != want:
		// The page answers with the configured method only.
		return h.verifyFailed(errBadMethod, 405, [][2]string{{"allow", want}})
	case h.network == "":
		return h.verifyFailed(challenge.ErrWrongNetwork, 403, nil)
	case method == "GET":
		q := ""
		if i := strings.IndexByte(h.path, '?'); i >= 0 {
			q = h.path[i+1:]
		}
		if len(q) > c.MaxFormBytes {
			return h.verifyFailed(challenge.ErrTooLarge, 414, nil)
		}
		h.contentType = "application/x-www-form-urlencoded"
		h.verifyForm([]byte(q))
		return types.ActionPause
	case endOfStream:
		return h.verifyFailed(challenge.ErrMissingField, 400, nil)
	}
	if cl := headerValue(headers, "content-length"); cl != "" {
		if n, err := strconv.Atoi(cl); err != nil || n < 0 {
			return h.verifyFailed(challenge.ErrBadForm, 400, nil)
		} else if n > c.MaxFormBytes {
			return h.verifyFailed(challenge.ErrTooLarge, 413, nil)
		}
	}
	h.verifying = true
	h.contentType = headerValue(headers, "content-type")
	return types.ActionPause
}

// OnHttpRequestBody reads the verify form. The body of a request waiting
// for its verdict is held back with it (where Envoy delivers it: with
// allow_on_headers_stop_iteration), so that nothing reaches the upstream
// before the check; other bodies pass.
func (h *httpContext) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	if !h.verifying {
		if h.flight != nil && !h.answered {
			return types.ActionPause
		}
		return types.ActionContinue
	}
	c := &h.plugin.cfg.Challenge
	if bodySize > c.MaxFormBytes {
		h.verifying = false
		h.verifyFailed(challenge.ErrTooLarge, 413, nil)
		return types.ActionPause
	}
	if !endOfStream {
		return types.ActionPause // buffer until the whole form is in
	}
	h.verifying = false
	body, err := proxywasm.GetHttpRequestBody(0, bodySize)
	if err != nil {
		h.verifyFailed(challenge.ErrBadForm, 400, nil)
		return types.ActionPause
	}
	h.verifyForm(body)
	return types.ActionPause
}

// verifyForm checks a posted answer and answers the request.
func (h *httpContext) verifyForm(body []byte) {
	p := h.plugin
	c := &p.cfg.Challenge
	now := p.now()
	guard := &sharedReplayGuard{prefix: p.cfg.Namespace + ".r.", slots: uint64(c.ReplaySlots), now: now}
	if !c.Provider.IsCaptcha() {
		token, nonce, err := challenge.ParseVerifyForm(h.contentType, body, c.MaxFormBytes)
		if err != nil {
			h.verifyFailed(err, formStatus(err), nil)
			return
		}
		pz, err := challenge.Verify(c.Keys, guard, token, nonce, now, h.network, h.authority)
		if err != nil {
			h.verifyRetry(err, pz.ReturnPath)
			return
		}
		h.grantPass(pz.ReturnPath)
		return
	}
	ticket, response, err := challenge.ParseCaptchaForm(c.Provider, h.contentType, body, c.MaxFormBytes)
	if err != nil {
		h.verifyFailed(err, formStatus(err), nil)
		return
	}
	pz, err := challenge.VerifyTicket(c.Keys, guard, ticket, now, h.network, h.authority)
	if err != nil {
		h.verifyRetry(err, pz.ReturnPath)
		return
	}
	path, _, ctype, vbody := challenge.SiteverifyRequest(c.Provider, c.Secret, response)
	hdrs := [][2]string{{":method", "POST"}, {":path", path}, {":authority", c.CaptchaAuthority}, {"content-type", ctype}, {"accept", "application/json"}}
	_, err = proxywasm.DispatchHttpCall(c.CaptchaCluster, hdrs, vbody, nil, c.CaptchaTimeoutMs, func(numHeaders, bodySize, _ int) {
		h.onSiteverify(numHeaders, bodySize, pz.ReturnPath)
	})
	if err != nil {
		proxywasm.LogErrorf("ipveil: cannot call the CAPTCHA cluster %q (%v): check challenge.captcha.cluster", c.CaptchaCluster, err)
		h.captchaProviderDown(pz.ReturnPath)
	}
}

// onSiteverify finishes a CAPTCHA verification with the provider's answer.
func (h *httpContext) onSiteverify(numHeaders, bodySize int, returnPath string) {
	if h.done {
		return
	}
	c := &h.plugin.cfg.Challenge
	status := 0
	var body []byte
	if numHeaders > 0 {
		if rh, err := proxywasm.GetHttpCallResponseHeaders(); err == nil {
			status, _ = strconv.Atoi(headerValue(rh, ":status"))
		}
		if bodySize > 0 && bodySize <= 64<<10 {
			body, _ = proxywasm.GetHttpCallResponseBody(0, bodySize)
		}
	}
	err := challenge.ParseSiteverify(c.Provider, status, body, h.authority)
	switch {
	case err == nil:
		h.grantPass(returnPath)
	case errors.Is(err, challenge.ErrProviderDown):
		h.captchaProviderDown(returnPath)
	default:
		h.verifyRetry(err, returnPath)
	}
}

// captchaProviderDown applies challenge.captcha.on_error.
func (h *httpContext) captchaProviderDown(returnPath string) {
	c := &h.plugin.cfg.Challenge
	h.plugin.metrics.challengeCount(metricChallengeFailedPrefix, "provider_down")
	if c.CaptchaOnError == "pass" {
		h.grantPass(returnPath)
		return
	}
	h.record(decision{verdict: policy.Challenge, reason: reasonFailedPref + "provider_down", source: srcChallenge, errKind: "provider_down"})
	h.servePuzzle(0, 503, returnPath, "The check is unavailable right now. Please try again in a minute.")
}

// grantPass answers a solved challenge: a pass cookie and a redirect back.
func (h *httpContext) grantPass(returnPath string) {
	p := h.plugin
	c := &p.cfg.Challenge
	pass, err := challenge.IssuePass(c.Keys, p.now(), c.PassTTL, h.network, h.authority)
	if err != nil {
		h.verifyFailed(err, 500, nil)
		return
	}
	returnPath = safeReturnPath(returnPath)
	p.metrics.challengeSolved.inc()
	h.record(decision{verdict: policy.Allow, reason: reasonSolved, source: srcChallenge})
	hdrs := [][2]string{
		{"location", returnPath},
		{"set-cookie", challenge.SetCookie(c.Cookie, pass, c.CookieOptions)},
		{"cache-control", "no-store"},
	}
	if err := proxywasm.SendHttpResponse(303, hdrs, nil, -1); err != nil {
		proxywasm.LogWarnf("ipveil: cannot answer the verify request: %v", err)
	}
}

// verifyRetry answers a wrong, expired, replayed or foreign answer with a
// fresh challenge and a message.
func (h *httpContext) verifyRetry(err error, returnPath string) {
	reason := challenge.Reason(err)
	h.plugin.metrics.challengeCount(metricChallengeFailedPrefix, reason)
	h.record(decision{verdict: policy.Challenge, reason: reasonFailedPref + reason, source: srcChallenge, errKind: reason})
	returnPath = safeReturnPath(returnPath)
	h.servePuzzle(0, 403, returnPath, "That did not work. Please try again.")
}

// verifyFailed answers a malformed verify request with a short 4xx.
func (h *httpContext) verifyFailed(err error, status uint32, extra [][2]string) types.Action {
	reason := challenge.Reason(err)
	if err == errBadMethod {
		reason = "bad_method"
	}
	h.plugin.metrics.challengeCount(metricChallengeFailedPrefix, reason)
	h.record(decision{verdict: policy.Challenge, reason: reasonFailedPref + reason, source: srcChallenge, errKind: reason})
	h.reply(Reply{Status: status, Body: "ipveil: " + strings.ReplaceAll(reason, "_", " ") + "\n", ContentType: "text/plain; charset=utf-8"}, append(extra, [2]string{"cache-control", "no-store"}))
	return types.ActionPause
}

// safeReturnPath keeps a same-origin return path and turns anything else
// (including the empty path of a puzzle that did not verify) into "/".
func safeReturnPath(p string) string {
	if rp, ok := challenge.SafeReturnPath(p); ok {
		return rp
	}
	return "/"
}

func formStatus(err error) uint32 {
	if errors.Is(err, challenge.ErrTooLarge) {
		return 413
	}
	return 400
}

// sharedReplayGuard remembers redeemed puzzles in a fixed number of
// shared-data slots, so that one solved puzzle mints one pass across every
// worker of the process. A slot holds the puzzle id and its expiry; a newer
// puzzle overwrites an expired or colliding one, so shared data never grows.
type sharedReplayGuard struct {
	prefix string
	slots  uint64
	now    time.Time
}

// FirstUse implements challenge.ReplayGuard.
func (g *sharedReplayGuard) FirstUse(id [16]byte, until time.Time) bool {
	key := g.prefix + strconv.FormatUint(binary.LittleEndian.Uint64(id[:8])%g.slots, 10)
	val := make([]byte, 24)
	copy(val, id[:])
	binary.BigEndian.PutUint64(val[16:], uint64(until.Unix()))
	for attempt := 0; attempt < 4; attempt++ {
		old, cas, err := proxywasm.GetSharedData(key)
		if err != nil {
			cas = 0
		} else if len(old) == 24 && [16]byte(old[:16]) == id && g.now.Unix() <= int64(binary.BigEndian.Uint64(old[16:])) {
			return false
		}
		err = proxywasm.SetSharedData(key, val, cas)
		if err == nil {
			return true
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			break
		}
	}
	// Shared data is unwell: refuse rather than risk a second redemption.
	return false
}

// stripPassCookie removes the pass cookie from the Cookie header lines on
// their way upstream: the application has no use for it.
func (h *httpContext) stripPassCookie() {
	c := &h.plugin.cfg.Challenge
	if !c.Interactive || len(h.cookies) == 0 {
		return
	}
	var kept []string
	changed := false
	for _, line := range h.cookies {
		v, removed := challenge.RemoveCookie(line, c.Cookie)
		changed = changed || removed
		if strings.TrimSpace(v) != "" {
			kept = append(kept, v)
		}
	}
	if !changed {
		return
	}
	for range h.cookies {
		if err := proxywasm.RemoveHttpRequestHeader("cookie"); err != nil {
			proxywasm.LogWarnf("ipveil: cannot remove the pass cookie: %v", err)
		}
	}
	if len(kept) > 0 {
		if err := proxywasm.AddHttpRequestHeader("cookie", strings.Join(kept, "; ")); err != nil {
			proxywasm.LogWarnf("ipveil: cannot set the cookie header: %v", err)
		}
	}
}

package filter

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/ipveil/ipveil/challenge"
)

const challengeKeys = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

var tokenRE = regexp.MustCompile(`name="token" value="([A-Za-z0-9_.-]+)"`)

// powEnv starts the filter with the proof-of-work challenge at a low
// difficulty, so that tests solve it fast.
func powEnv(t *testing.T, extra ...string) *env {
	t.Helper()
	t.Setenv("IPVEIL_CHALLENGE_KEYS", challengeKeys)
	cfg := `"challenge": {"kind": "pow", "difficulty": 4, "verify_method": "post"}`
	return newEnv(t, strings.Join(append([]string{cfg}, extra...), ","))
}

// challenged sends a request that the policy challenges and returns the
// puzzle token of the page.
func (e *env) challenged(src, path string, hdrs ...[2]string) (*req, string) {
	e.t.Helper()
	r := e.send(src, path, append([][2]string{{":authority", "shop.example"}}, hdrs...)...)
	if r.callout != nil {
		e.answer(r, 200, fmt.Sprintf(bodyMedium, "x"))
	}
	lr := e.wantReply(r, 429)
	m := tokenRE.FindStringSubmatch(string(lr.Data))
	if m == nil {
		e.t.Fatalf("no puzzle in the page:\n%s", lr.Data)
	}
	return r, m[1]
}

// post sends a verify request with a form body.
func (e *env) post(src, path, host, body string, hdrs ...[2]string) *req {
	e.t.Helper()
	if err := e.host.SetProperty([]string{"source", "address"}, []byte(src)); err != nil {
		e.t.Fatal(err)
	}
	id := e.host.InitializeHttpContext()
	headers := append([][2]string{{":method", "POST"}, {":path", path}, {":authority", host},
		{"content-type", "application/x-www-form-urlencoded"}, {"content-length", fmt.Sprint(len(body))}}, hdrs...)
	r := &req{id: id, action: e.host.CallOnRequestHeaders(id, headers, body == "")}
	if body != "" && e.reply(r) == nil {
		r.action = e.host.CallOnRequestBody(id, []byte(body), true)
	}
	if cs := e.host.GetCalloutAttributesFromContext(id); len(cs) > 0 {
		c := cs[len(cs)-1]
		r.callout = &c
	}
	return r
}

func solvedForm(token string) string {
	return url.Values{"token": {token}, "nonce": {challenge.Solve(token, 4)}}.Encode()
}

func cookieOf(t *testing.T, lr [][2]string) string {
	t.Helper()
	sc := headerValue(lr, "set-cookie")
	if !strings.HasPrefix(sc, "ipveil_pass=") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "Secure") || !strings.Contains(sc, "SameSite=Lax") {
		t.Fatalf("set-cookie %q", sc)
	}
	return strings.SplitN(sc, ";", 2)[0]
}

func TestProofOfWorkEarnsAPass(t *testing.T) {
	e := powEnv(t)
	_, token := e.challenged("192.0.2.44:0", "/cart?id=7")

	v := e.post("192.0.2.44:0", "/.ipveil/verify", "shop.example", solvedForm(token))
	lr := e.wantReply(v, 303)
	if loc := headerValue(lr.Headers, "location"); loc != "/cart?id=7" {
		t.Errorf("location %q", loc)
	}
	cookie := cookieOf(t, lr.Headers)
	if e.state(StateReason) != reasonSolved {
		t.Errorf("reason %q", e.state(StateReason))
	}

	// Back with the pass: the challenge becomes an allow, the pass is not
	// forwarded, other cookies are.
	r := e.send("192.0.2.44:0", "/cart?id=7", [2]string{":authority", "shop.example"}, [2]string{"cookie", "a=1; " + cookie + "; b=2"})
	e.wantContinue(r)
	if e.state(StateReason) != reasonPassed || e.state(StateSource) != srcPass {
		t.Errorf("reason %q source %q", e.state(StateReason), e.state(StateSource))
	}
	if got := e.upstreamHeader(r, "cookie"); len(got) != 1 || got[0] != "a=1; b=2" {
		t.Errorf("upstream cookie %q", got)
	}
	// A neighbour in the same /24 shares the masked network, so the pass
	// holds for it too; another network's pass does not.
	r2 := e.send("192.0.2.45:0", "/", [2]string{":authority", "shop.example"}, [2]string{"cookie", cookie})
	if r2.callout != nil {
		e.answer(r2, 200, fmt.Sprintf(bodyMedium, "x"))
	}
	e.wantContinue(r2)
	r3 := e.send("198.51.100.44:0", "/", [2]string{":authority", "shop.example"}, [2]string{"cookie", cookie})
	if r3.callout != nil {
		e.answer(r3, 200, fmt.Sprintf(bodyMedium, "x"))
	}
	e.wantReply(r3, 429)
	if got := e.counter("ipveil.challenge.pass_rejected.wrong_network"); got != 1 {
		t.Errorf("pass_rejected.wrong_network = %d", got)
	}
	if e.counter("ipveil.challenge.solved") != 1 || e.counter("ipveil.challenge.pass_accepted") != 2 {
		t.Errorf("solved=%d accepted=%d", e.counter("ipveil.challenge.solved"), e.counter("ipveil.challenge.pass_accepted"))
	}
	e.wantNoRawIP([]*req{v, r, r2, r3}, "192.0.2.44", "192.0.2.45", "198.51.100.44")
}

func TestPassNeverOverridesBlock(t *testing.T) {
	e := powEnv(t)
	_, token := e.challenged("203.0.113.7:0", "/")
	lr := e.wantReply(e.post("203.0.113.7:0", "/.ipveil/verify", "shop.example", solvedForm(token)), 303)
	cookie := cookieOf(t, lr.Headers)
	// Now the client's verdict is block (a new lookup after the TTL).
	e.clock.t = e.clock.t.Add(2 * time.Minute)
	r := e.send("203.0.113.7:0", "/", [2]string{":authority", "shop.example"}, [2]string{"cookie", cookie})
	e.answer(r, 200, fmt.Sprintf(bodyTor, "203.0.113.7"))
	e.wantReply(r, 403)
}

func TestForgedExpiredAndReplayedAnswersAreRefused(t *testing.T) {
	e := powEnv(t)
	_, token := e.challenged("192.0.2.44:0", "/")
	form := solvedForm(token)
	e.wantReply(e.post("192.0.2.44:0", "/.ipveil/verify", "shop.example", form), 303)

	// The same solution again: replayed.
	lr := e.wantReply(e.post("192.0.2.44:0", "/.ipveil/verify", "shop.example", form), 403)
	if !tokenRE.Match(lr.Data) {
		t.Error("a refused answer gets a fresh challenge")
	}
	if e.state(StateReason) != reasonFailedPref+"replayed" {
		t.Errorf("reason %q", e.state(StateReason))
	}

	// Tampered token, wrong host, expired puzzle.
	_, token2 := e.challenged("192.0.2.44:0", "/")
	bad := token2[:10] + flip(token2[10]) + token2[11:]
	e.wantReply(e.post("192.0.2.44:0", "/.ipveil/verify", "shop.example", url.Values{"token": {bad}, "nonce": {"1"}}.Encode()), 403)
	e.wantReply(e.post("192.0.2.44:0", "/.ipveil/verify", "evil.example", solvedForm(token2)), 403)
	if e.state(StateReason) != reasonFailedPref+"wrong_host" {
		t.Errorf("reason %q", e.state(StateReason))
	}
	e.clock.t = e.clock.t.Add(time.Hour)
	e.wantReply(e.post("192.0.2.44:0", "/.ipveil/verify", "shop.example", solvedForm(token2)), 403)
	if e.state(StateReason) != reasonFailedPref+"expired" {
		t.Errorf("reason %q", e.state(StateReason))
	}
	// A forged pass cookie is ignored.
	r := e.send("192.0.2.44:0", "/", [2]string{":authority", "shop.example"}, [2]string{"cookie", "ipveil_pass=AAAA.BBBB"})
	if r.callout != nil {
		e.answer(r, 200, fmt.Sprintf(bodyMedium, "x"))
	}
	e.wantReply(r, 429)
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestVerifyBadInput(t *testing.T) {
	e := powEnv(t)
	cases := []struct {
		name   string
		method string
		body   string
		hdrs   [][2]string
		status uint32
	}{
		{"PUT", "PUT", "", nil, 405},
		{"GET where the page posts", "GET", "", nil, 405},
		{"no body", "POST", "", nil, 400},
		{"declared too large", "POST", "token=x", [][2]string{{"content-length", "999999"}}, 413},
		{"not a form", "POST", "%zz=%%", nil, 400},
		{"missing nonce", "POST", "token=abc", nil, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.method != "POST" {
				r := e.send("192.0.2.44:0", "/.ipveil/verify", [2]string{":method", tc.method})
				lr := e.wantReply(r, tc.status)
				if headerValue(lr.Headers, "allow") != "POST" {
					t.Errorf("no Allow header: %v", lr.Headers)
				}
				if r.callout != nil {
					t.Error("the verify path made a lookup")
				}
				return
			}
			var r *req
			if len(tc.hdrs) > 0 {
				if err := e.host.SetProperty([]string{"source", "address"}, []byte("192.0.2.44:0")); err != nil {
					t.Fatal(err)
				}
				id := e.host.InitializeHttpContext()
				r = &req{id: id, action: e.host.CallOnRequestHeaders(id, append([][2]string{{":method", "POST"}, {":path", "/.ipveil/verify"}, {":authority", "shop.example"}}, tc.hdrs...), false)}
			} else {
				r = e.post("192.0.2.44:0", "/.ipveil/verify", "shop.example", tc.body)
			}
			e.wantReply(r, tc.status)
		})
	}
	// A body larger than the limit that arrives without a content-length.
	if err := e.host.SetProperty([]string{"source", "address"}, []byte("192.0.2.44:0")); err != nil {
		t.Fatal(err)
	}
	id := e.host.InitializeHttpContext()
	e.host.CallOnRequestHeaders(id, [][2]string{{":method", "POST"}, {":path", "/.ipveil/verify"}, {":authority", "shop.example"}}, false)
	e.host.CallOnRequestBody(id, []byte(strings.Repeat("a", 20000)), false)
	e.wantReply(&req{id: id}, 413)
}

func TestRuleDifficultyReachesThePage(t *testing.T) {
	t.Setenv("IPVEIL_CHALLENGE_KEYS", challengeKeys)
	e := newEnv(t, `"challenge": {"kind": "pow", "difficulty": 4, "verify_method": "post"}, "policy": {"rules": [{"name": "vpn", "when": {"vpn": true}, "action": "challenge", "difficulty": 7}]}`)
	r := e.send("192.0.2.44:0", "/", [2]string{":authority", "shop.example"})
	e.answer(r, 200, fmt.Sprintf(bodyMedium, "x"))
	lr := e.wantReply(r, 429)
	tok := tokenRE.FindStringSubmatch(string(lr.Data))[1]
	if challenge.LeadingZeroBits(tok, challenge.Solve(tok, 7)) < 7 {
		t.Fatal("solver")
	}
	// The page's puzzle demands 7 bits: a 4-bit answer is refused.
	weak := ""
	for n := 0; ; n++ {
		if z := challenge.LeadingZeroBits(tok, fmt.Sprint(n)); z >= 4 && z < 7 {
			weak = fmt.Sprint(n)
			break
		}
	}
	e.wantReply(e.post("192.0.2.44:0", "/.ipveil/verify", "shop.example", url.Values{"token": {tok}, "nonce": {weak}}.Encode()), 403)
	if e.state(StateReason) != reasonFailedPref+"insufficient_work" {
		t.Errorf("reason %q", e.state(StateReason))
	}
	// The cached verdict keeps the rule's difficulty.
	r2 := e.send("192.0.2.44:0", "/", [2]string{":authority", "shop.example"})
	lr2 := e.wantReply(r2, 429)
	tok2 := tokenRE.FindStringSubmatch(string(lr2.Data))[1]
	e.wantReply(e.post("192.0.2.44:0", "/.ipveil/verify", "shop.example", url.Values{"token": {tok2}, "nonce": {challenge.Solve(tok2, 7)}}.Encode()), 303)
}

func TestTurnstileCaptcha(t *testing.T) {
	t.Setenv("IPVEIL_CHALLENGE_KEYS", challengeKeys)
	t.Setenv("TURNSTILE_SECRET", "s3cret")
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		onError string
		want    uint32
	}{
		{"success", 200, `{"success": true, "hostname": "shop.example", "challenge_ts": "2026-12-03T12:00:00Z"}`, "deny", 303},
		{"token for another site", 200, `{"success": true, "hostname": "evil.example"}`, "deny", 403},
		{"failed", 200, `{"success": false, "error-codes": ["invalid-input-response"]}`, "deny", 403},
		{"provider down, deny", 500, `oops`, "deny", 503},
		{"provider down, pass", 500, `oops`, "pass", 303},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, `"challenge": {"kind": "turnstile", "captcha": {"site_key": "0x4AAA", "secret_env": "TURNSTILE_SECRET", "cluster": "turnstile", "on_error": "`+tc.onError+`"}, "verify_method": "post"}`)
			r := e.send("192.0.2.44:0", "/", [2]string{":authority", "shop.example"})
			e.answer(r, 200, fmt.Sprintf(bodyMedium, "x"))
			lr := e.wantReply(r, 429)
			if !strings.Contains(string(lr.Data), "0x4AAA") || !strings.Contains(string(lr.Data), "challenges.cloudflare.com") {
				t.Fatalf("no Turnstile widget in the page:\n%s", lr.Data)
			}
			ticket := tokenRE.FindStringSubmatch(string(lr.Data))[1]
			v := e.post("192.0.2.44:0", "/.ipveil/verify", "shop.example", url.Values{"token": {ticket}, "cf-turnstile-response": {"XXXX.DUMMY.TOKEN"}}.Encode())
			if v.callout == nil || v.callout.Upstream != "turnstile" {
				t.Fatalf("no siteverify callout: %+v", v.callout)
			}
			if body := string(v.callout.Body); !strings.Contains(body, "secret=s3cret") || !strings.Contains(body, "response=XXXX.DUMMY.TOKEN") || strings.Contains(body, "remoteip") {
				t.Errorf("siteverify body %q", body)
			}
			e.host.CallOnHttpCallResponse(v.callout.CalloutID, [][2]string{{":status", fmt.Sprint(tc.status)}}, nil, []byte(tc.body))
			e.wantReply(v, tc.want)
			if e.host.GetCurrentHttpStreamAction(v.id) != types.ActionPause {
				t.Error("the verify request must never continue upstream")
			}
			e.wantNoRawIP([]*req{r, v}, "192.0.2.44")
		})
	}
}

func TestChallengeConfigErrors(t *testing.T) {
	for _, tc := range []struct{ doc, path string }{
		{`{"kind":"pow"}`, "challenge.keys_env"},
		{`{"kind":"pow","difficulty":40}`, "challenge.difficulty"},
		{`{"kind":"pow","verify_path":"//evil"}`, "challenge.verify_path"},
		{`{"kind":"pow","cookie":{"name":"bad name"}}`, "challenge.cookie.name"},
		{`{"kind":"pow","template":"<p>no placeholder</p>"}`, "challenge.template"},
		{`{"kind":"pow","body":"x"}`, "challenge.body"},
		{`{"kind":"turnstile"}`, "challenge.captcha.site_key"},
		{`{"kind":"hcaptcha","captcha":{"site_key":"k"}}`, "challenge.captcha.cluster"},
		{`{"kind":"recaptcha","captcha":{"site_key":"k","cluster":"c"}}`, "challenge.captcha.secret_env"},
		{`{"kind":"pow","captcha":{"site_key":"k"}}`, "challenge.captcha"},
	} {
		_, err := ParseConfig([]byte(`{"provider":{"cluster":"c"},"challenge":`+tc.doc+`}`), func(n string) (string, bool) {
			if n == "IPVEIL_CHALLENGE_KEYS" && strings.Contains(tc.doc, `"kind":"pow"}`) {
				return "", false
			}
			if n == "IPVEIL_CHALLENGE_KEYS" {
				return challengeKeys, true
			}
			return "x", true
		})
		if err == nil || !strings.Contains(err.Error(), tc.path+":") {
			t.Errorf("%s: want a problem at %s, got %v", tc.doc, tc.path, err)
		}
	}
}

// The default page sends the answer in the query string: it works on every
// Envoy, whatever allow_on_headers_stop_iteration says.
func TestProofOfWorkAnsweredWithGet(t *testing.T) {
	t.Setenv("IPVEIL_CHALLENGE_KEYS", challengeKeys)
	e := newEnv(t, `"challenge": {"kind": "pow", "difficulty": 4}`)
	r, token := e.challenged("192.0.2.44:0", "/x")
	if lr := e.reply(r); !strings.Contains(string(lr.Data), `method="get"`) {
		t.Fatalf("the default page should answer with GET:\n%s", lr.Data)
	}
	v := e.send("192.0.2.44:0", "/.ipveil/verify?"+solvedForm(token), [2]string{":authority", "shop.example"})
	lr := e.wantReply(v, 303)
	if headerValue(lr.Headers, "location") != "/x" {
		t.Errorf("location %q", headerValue(lr.Headers, "location"))
	}
	cookieOf(t, lr.Headers)
	if v.callout != nil {
		t.Error("the verify path made a lookup")
	}
}

// A request waiting for its lookup holds its body back too, so nothing
// reaches the upstream before the verdict.
func TestBodyWaitsForTheVerdict(t *testing.T) {
	e := newEnv(t, "")
	if err := e.host.SetProperty([]string{"source", "address"}, []byte("203.0.113.7:0")); err != nil {
		t.Fatal(err)
	}
	id := e.host.InitializeHttpContext()
	if a := e.host.CallOnRequestHeaders(id, [][2]string{{":method", "POST"}, {":path", "/upload"}, {":authority", "a"}}, false); a != types.ActionPause {
		t.Fatalf("headers: %v", a)
	}
	if a := e.host.CallOnRequestBody(id, []byte("data"), true); a != types.ActionPause {
		t.Fatalf("the body of a request waiting for its verdict must be held, got %v", a)
	}
	cs := e.host.GetCalloutAttributesFromContext(id)
	e.host.CallOnHttpCallResponse(cs[0].CalloutID, [][2]string{{":status", "200"}}, nil, []byte(fmt.Sprintf(bodyTor, "203.0.113.7")))
	e.wantReply(&req{id: id}, 403)
}

func TestVerifyMethodGetRefusesPost(t *testing.T) {
	t.Setenv("IPVEIL_CHALLENGE_KEYS", challengeKeys)
	e := newEnv(t, `"challenge": {"kind": "pow", "difficulty": 4}`)
	lr := e.wantReply(e.post("192.0.2.44:0", "/.ipveil/verify", "shop.example", "token=a&nonce=1"), 405)
	if headerValue(lr.Headers, "allow") != "GET" {
		t.Errorf("allow %q", headerValue(lr.Headers, "allow"))
	}
}

// A stale pass next to a valid one (a host-only and a domain cookie, say)
// must not hide the valid one.
func TestEveryPassCookieCounts(t *testing.T) {
	e := powEnv(t)
	_, token := e.challenged("192.0.2.44:0", "/")
	cookie := cookieOf(t, e.wantReply(e.post("192.0.2.44:0", "/.ipveil/verify", "shop.example", solvedForm(token)), 303).Headers)
	r := e.send("192.0.2.44:0", "/", [2]string{":authority", "shop.example"}, [2]string{"cookie", "ipveil_pass=garbage; " + cookie})
	e.wantContinue(r)
}

package challenge_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/ipveil/ipveil/challenge"
)

// The whole proof-of-work round trip, as the filter does it.
func Example() {
	// From the VM environment, e.g. IPVEIL_CHALLENGE_KEYS; never in plain configuration.
	kr, err := challenge.ParseKeyring("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		panic(err)
	}
	guard := challenge.NewMemoryReplayGuard(4096) // the filter uses shared data instead
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	network, host := "203.0.113.0/24", "shop.example" // masked client, :authority

	// 1. A challenged GET /cart?item=7 without a valid pass gets a page.
	token, _ := challenge.Issue(kr, now, challenge.PuzzleParams{
		TTL: 5 * time.Minute, Difficulty: 12, Network: network, Host: host, ReturnPath: "/cart?item=7",
	})
	page, _ := challenge.RenderPage(challenge.PageData{Token: token, Difficulty: 12}, "")
	_ = page // 429 or 403, text/html, Cache-Control: no-store

	// 2. The browser posts token and nonce to /.ipveil/verify.
	body := []byte("token=" + token + "&nonce=" + challenge.Solve(token, 12))
	tok, nonce, err := challenge.ParseVerifyForm("application/x-www-form-urlencoded", body, 0)
	if err != nil {
		panic(err)
	}
	p, err := challenge.Verify(kr, guard, tok, nonce, now.Add(2*time.Second), network, host)
	if err != nil {
		fmt.Println("fresh challenge, metric reason:", challenge.Reason(err))
		return
	}
	pass, _ := challenge.IssuePass(kr, now, time.Hour, network, host)
	fmt.Println("303 Location:", p.ReturnPath)
	setCookie := challenge.SetCookie(challenge.DefaultCookieName, pass, challenge.CookieOptions{MaxAge: 3600})
	fmt.Println(len(setCookie) > 0)

	// 3. The next challenged request carries the pass.
	value, _ := challenge.CookieValue("theme=dark; ipveil_pass="+pass, challenge.DefaultCookieName)
	fmt.Println("pass:", challenge.VerifyPass(kr, value, now.Add(time.Minute), network, host))

	// Posting the same answer again is refused.
	_, err = challenge.Verify(kr, guard, tok, nonce, now.Add(3*time.Second), network, host)
	fmt.Println("again:", challenge.Reason(err))
	// Output:
	// 303 Location: /cart?item=7
	// true
	// pass: <nil>
	// again: replayed
}

func ExampleSetCookie() {
	fmt.Println(challenge.SetCookie("ipveil_pass", "AgJrMQ.sig", challenge.CookieOptions{MaxAge: 3600}))
	// Output:
	// ipveil_pass=AgJrMQ.sig; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax
}

func ExampleSafeReturnPath() {
	for _, p := range []string{"/cart?item=7", "//evil.example/", "/\\evil.example", "https://evil.example/"} {
		fmt.Println(challenge.SafeReturnPath(p))
	}
	// Output:
	// /cart?item=7 true
	// / false
	// / false
	// / false
}

func ExampleParseKeyring() {
	_, err := challenge.ParseKeyring("k2:c2hvcnQ=,k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	fmt.Println(err)
	// Output:
	// challenge: keys: entry 1 (key id "k2") must decode to 32 to 64 bytes (e.g. openssl rand -base64 32)
}

func ExampleSiteverifyRequest() {
	path, authority, contentType, body := challenge.SiteverifyRequest(challenge.Turnstile, "0x4AAA-secret", "XXXX.DUMMY.TOKEN")
	fmt.Println("POST", path, authority, contentType)
	fmt.Println(string(body))
	err := challenge.ParseSiteverify(challenge.Turnstile, 200,
		[]byte(`{"success":false,"error-codes":["timeout-or-duplicate"]}`), "shop.example")
	fmt.Println(errors.Is(err, challenge.ErrCaptchaFailed), err)
	// Output:
	// POST /turnstile/v0/siteverify challenges.cloudflare.com application/x-www-form-urlencoded
	// secret=0x4AAA-secret&response=XXXX.DUMMY.TOKEN
	// true challenge: the CAPTCHA provider refused the answer; answer with a new challenge (provider error codes: timeout-or-duplicate)
}

package challenge

import (
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

func TestRenderDefaultPage(t *testing.T) {
	page, err := RenderPage(PageData{Token: "tok.en", Difficulty: 18, ReturnPath: "/x"}, "")
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, want := range []string{
		"<title>Checking your connection</title>",
		`<form id="ipveil" method="post" action="/.ipveil/verify" data-difficulty="18">`,
		`<input type="hidden" name="token" value="tok.en">`,
		`<input type="hidden" name="nonce" value="">`,
		"<noscript>", `<meta name="robots" content="noindex, nofollow">`, `<meta name="referrer" content="no-referrer">`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Nothing is loaded from anywhere: no src, no href, no url().
	if regexp.MustCompile(`(?i)\b(src|href)\s*=|url\(|https?://|//[a-z]`).MatchString(strings.ReplaceAll(s, powScript, "")) {
		t.Errorf("page refers to an external resource:\n%s", s)
	}
	if strings.Count(s, "<script") != 1 || strings.Contains(strings.ToLower(s), "document.cookie") {
		t.Error("want exactly one inline script that does not touch cookies")
	}
	if len(page) > 8<<10 {
		t.Errorf("page is %d bytes", len(page))
	}
}

func TestRenderEscapes(t *testing.T) {
	evil := `"><script>alert(1)</script>'&`
	page, err := RenderPage(PageData{
		Token: evil, Title: evil, Message: evil, ReturnPath: "/a?q=" + evil[:2], VerifyPath: "/v" + evil, Difficulty: 99,
	}, "<h1>{{title}}</h1><p>{{message}}</p><a href=\"{{return_path}}\">back</a>{{challenge}}")
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	if strings.Contains(s, "<script>alert") || strings.Contains(s, `"><`) {
		t.Errorf("unescaped value in:\n%s", s)
	}
	if !strings.Contains(s, "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#39;&amp;") {
		t.Errorf("escaped title missing:\n%s", s)
	}
	if !strings.Contains(s, `action="/v&#34;&gt;&lt;script&gt;`) || !strings.Contains(s, `data-difficulty="32"`) {
		t.Errorf("verify path not escaped or difficulty not clamped:\n%s", s)
	}
	if !strings.Contains(s, `<a href="/a?q=&#34;&gt;">back</a>`) {
		t.Errorf("return path not escaped:\n%s", s)
	}
	page, _ = RenderPage(PageData{ReturnPath: "//evil.example", VerifyPath: "https://evil.example/"}, "{{return_path}}|{{challenge}}")
	if s := string(page); !strings.HasPrefix(s, `/|<form id="ipveil" method="post" action="/.ipveil/verify"`) {
		t.Errorf("unsafe paths kept: %.80q", s)
	}
	if got := string(appendEscaped(nil, "a\x00b")); got != "a\uFFFDb" {
		t.Errorf("NUL: %q", got)
	}
}

func TestRenderCaptchaPages(t *testing.T) {
	for _, p := range []Provider{Turnstile, HCaptcha, ReCaptcha} {
		page, err := RenderPage(PageData{Provider: p, Token: "ticket", SiteKey: `0x4AAA"<`, VerifyPath: "/verify-here"}, "")
		if err != nil {
			t.Fatal(err)
		}
		s := string(page)
		for _, want := range []string{
			`<form id="ipveil" method="post" action="/verify-here">`,
			`<input type="hidden" name="token" value="ticket">`,
			`<div class="` + p.info().class + `" data-sitekey="0x4AAA&#34;&lt;" data-callback="ipveilSolved"></div>`,
			`<script src="` + p.ScriptURL() + `" async defer></script>`,
			`function ipveilSolved(){document.getElementById("ipveil").submit()}`,
			`<button type="submit">`, "<noscript>",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("%v page lacks %q", p, want)
			}
		}
		if strings.Contains(s, "ipveilPow") || strings.Contains(s, "data-difficulty") || strings.Contains(s, `name="nonce"`) {
			t.Errorf("%v page carries the proof of work", p)
		}
	}
}

func TestCompileTemplate(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{"no placeholder", "exactly once"},
		{"{{challenge}}{{challenge}}", "exactly once"},
		{"{{ challenge }}{{titel}}", `unknown placeholder {{"titel"}}`},
		{"{{challenge}}{{", `"{{" without "}}"`},
		{"{{challenge}} {{" + strings.Repeat("x", 100) + "}}", "unknown placeholder"},
		{"{{challenge}}" + strings.Repeat(" ", MaxTemplateBytes), "larger than 64 KiB"},
	} {
		_, err := CompileTemplate(tc.tmpl)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CompileTemplate(%.40q) = %v, want %q", tc.tmpl, err, tc.want)
		}
	}
	tm, err := CompileTemplate("<p>{{ title }}</p>{{challenge}}<p>{{message}}</p>")
	if err != nil {
		t.Fatal(err)
	}
	page := string(tm.Render(PageData{Title: "Hi", Token: "t", Difficulty: 3}))
	if !strings.HasPrefix(page, "<p>Hi</p><form") || !strings.HasSuffix(page, "</script>\n<p></p>") {
		t.Errorf("custom template rendered as %q", page)
	}
	if tm.ContentSecurityPolicy(ProofOfWork) != "" {
		t.Error("an operator template gets no built-in policy")
	}
	if _, err := RenderPage(PageData{}, "{{nope}}"); err == nil {
		t.Error("RenderPage accepted a bad template")
	}
}

// The policy's hashes are those of the inline script and style exactly as
// rendered, so browsers run them and nothing else.
func TestContentSecurityPolicy(t *testing.T) {
	tm, _ := CompileTemplate("")
	csp := tm.ContentSecurityPolicy(ProofOfWork)
	page := string(tm.Render(PageData{Token: "t", Difficulty: 4}))
	for _, re := range []string{`<script>([\s\S]*?)</script>`, `<style>([\s\S]*?)</style>`} {
		m := regexp.MustCompile(re).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no %s in page", re)
		}
		sum := sha256.Sum256([]byte(m[1]))
		if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, h) {
			t.Errorf("policy %q lacks %s", csp, h)
		}
	}
	for _, want := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("policy lacks %q", want)
		}
	}
	if tm.ContentSecurityPolicy(Turnstile) != "" {
		t.Error("CAPTCHA pages get no built-in policy")
	}
}

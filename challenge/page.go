package challenge

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// The challenge page's script: a SHA-256 written for this purpose and the
// loop that finds the nonce and submits the form. It holds no per-request
// data (the page passes the token and difficulty in the form), so its
// hash can go into a Content-Security-Policy.
var (
	//go:embed pow.js
	powJS string
	//go:embed page.js
	pageJS string

	powScript = "<script>" + powJS + pageJS + "</script>"
)

// PageData is what a challenge page shows.
type PageData struct {
	// Provider chooses the challenge: ProofOfWork (the zero value) or a
	// CAPTCHA.
	Provider Provider
	// Token is a puzzle from [Issue] (ProofOfWork) or a ticket from
	// [IssueTicket] (CAPTCHA).
	Token string
	// Difficulty is the puzzle's difficulty, as issued.
	Difficulty int
	// VerifyPath is where the answer is posted; "" means
	// [DefaultVerifyPath]. It must be a same-origin path.
	VerifyPath string
	// ReturnPath is where the visitor will land ({{return_path}}); the
	// token carries the authoritative copy.
	ReturnPath string
	// Title is the page title; "" means "Checking your connection".
	Title string
	// Message is an optional line for the visitor, such as "That took too
	// long, please try again." after a failed attempt.
	Message string
	// SiteKey is the CAPTCHA provider's public site key.
	SiteKey string
	// Method is how the page sends the answer: "post" (the default) puts it
	// in an application/x-www-form-urlencoded body, "get" in the query
	// string of VerifyPath. A Proxy-Wasm filter sees a POST body only when
	// Envoy lets it hold the headers (allow_on_headers_stop_iteration);
	// GET works on every Envoy.
	Method string
}

// DefaultTitle is the title of a page without one.
const DefaultTitle = "Checking your connection"

// MaxTemplateBytes is the largest page template.
const MaxTemplateBytes = 64 << 10

// DefaultTemplate is the built-in challenge page: no external resources,
// no cookies, a few hundred bytes of style.
const DefaultTemplate = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>{{title}}</title>
` + defaultStyle + `
</head>
<body>
<main>
<h1>{{title}}</h1>
<p class="message">{{message}}</p>
{{challenge}}
</main>
</body>
</html>
`

const defaultStyle = `<style>body{font:1rem/1.5 system-ui,sans-serif;color:#1d1d1f;background:#fafafa;margin:0}` +
	`main{max-width:34rem;margin:12vh auto;padding:0 1.25rem}h1{font-size:1.5rem;font-weight:600}` +
	`.message{color:#a33}.message:empty{display:none}button{font:inherit;padding:.4rem 1.2rem}</style>`

// Template is a compiled challenge page template. It is immutable and
// safe for concurrent use.
type Template struct {
	parts     []tmplPart
	size      int // bytes of literal text
	isDefault bool
}

type tmplPart struct {
	lit string
	ph  placeholder
}

type placeholder uint8

const (
	phNone placeholder = iota
	phTitle
	phMessage
	phChallenge
	phReturnPath
)

var placeholders = map[string]placeholder{
	"title": phTitle, "message": phMessage, "challenge": phChallenge, "return_path": phReturnPath,
}

var (
	errTemplateSize      = errors.New("challenge: template is larger than 64 KiB")
	errTemplateChallenge = errors.New("challenge: template must contain {{challenge}} exactly once")
)

var defaultTemplate = func() *Template {
	t, err := compileTemplate(DefaultTemplate)
	if err != nil {
		panic(err)
	}
	t.isDefault = true
	return t
}()

// CompileTemplate compiles a page template: HTML in which these
// placeholders are replaced, HTML-escaped, and everything else is kept as
// written:
//
//	{{title}}        PageData.Title
//	{{message}}      PageData.Message (may be empty)
//	{{return_path}}  PageData.ReturnPath, made safe by SafeReturnPath
//	{{challenge}}    the form, script and <noscript> note; required, once
//
// Every "{{" must start one of these; write a literal "{{" as
// "&#123;&#123;". "" compiles [DefaultTemplate]. Compile the operator's
// template once, when the configuration is loaded, and report the error
// there.
func CompileTemplate(s string) (*Template, error) {
	if s == "" {
		return defaultTemplate, nil
	}
	return compileTemplate(s)
}

func compileTemplate(s string) (*Template, error) {
	if len(s) > MaxTemplateBytes {
		return nil, errTemplateSize
	}
	t := &Template{}
	challenges := 0
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			t.parts = append(t.parts, tmplPart{lit: s})
			t.size += len(s)
			break
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return nil, errors.New("challenge: template has \"{{\" without \"}}\" at byte " + strconv.Itoa(i) + " (write a literal {{ as &#123;&#123;)")
		}
		name := strings.TrimSpace(s[i+2 : i+j])
		ph, ok := placeholders[name]
		if !ok {
			if len(name) > 32 {
				name = name[:32] + "…"
			}
			return nil, errors.New("challenge: template has unknown placeholder {{" + strconv.QuoteToASCII(name) +
				"}} (want title, message, return_path or challenge)")
		}
		if ph == phChallenge {
			challenges++
		}
		t.parts = append(t.parts, tmplPart{lit: s[:i], ph: ph})
		t.size += i
		s = s[i+j+2:]
	}
	if challenges != 1 {
		return nil, errTemplateChallenge
	}
	return t, nil
}

// RenderPage renders d with a template (see [CompileTemplate]; "" is the
// built-in page). It compiles the template on every call: in the filter,
// compile once with CompileTemplate and call [Template.Render].
func RenderPage(d PageData, template string) ([]byte, error) {
	t, err := CompileTemplate(template)
	if err != nil {
		return nil, err
	}
	return t.Render(d), nil
}

// Render returns the page for d. Serve it with Content-Type
// "text/html; charset=utf-8" and Cache-Control "no-store".
//
// For ProofOfWork the challenge is a form holding the token, an empty
// nonce field and data-difficulty, and one inline script that finds the
// nonce (see the package documentation) and submits the form, so the
// browser posts application/x-www-form-urlencoded token and nonce to
// VerifyPath and follows the redirect that answers it. For a CAPTCHA the
// form holds the ticket and the provider's widget, whose callback submits
// the form (a Continue button does too).
func (t *Template) Render(d PageData) []byte {
	title := d.Title
	if title == "" {
		title = DefaultTitle
	}
	b := make([]byte, 0, t.size+len(powScript)+len(d.Token)+len(title)+len(d.Message)+len(d.ReturnPath)+768)
	for _, p := range t.parts {
		b = append(b, p.lit...)
		switch p.ph {
		case phTitle:
			b = appendEscaped(b, title)
		case phMessage:
			b = appendEscaped(b, d.Message)
		case phReturnPath:
			rp, _ := SafeReturnPath(d.ReturnPath)
			b = appendEscaped(b, rp)
		case phChallenge:
			b = appendChallenge(b, d)
		}
	}
	return b
}

const noscript = `<noscript><p>This check needs JavaScript. Please enable JavaScript for this site and reload the page.</p></noscript>`

func appendChallenge(b []byte, d PageData) []byte {
	verify := d.VerifyPath
	if v, ok := SafeReturnPath(verify); !ok || v == "/" {
		verify = DefaultVerifyPath
	}
	method := "post"
	if d.Method == "get" {
		method = "get"
	}
	b = append(b, `<form id="ipveil" method="`+method+`" action="`...)
	b = appendEscaped(b, verify)
	if !d.Provider.IsCaptcha() {
		diff := min(max(d.Difficulty, MinDifficulty), MaxDifficulty)
		b = append(b, `" data-difficulty="`...)
		b = strconv.AppendInt(b, int64(diff), 10)
	}
	b = append(b, `">`+"\n"+`<input type="hidden" name="token" value="`...)
	b = appendEscaped(b, d.Token)
	b = append(b, `">`+"\n"...)
	if !d.Provider.IsCaptcha() {
		b = append(b, `<input type="hidden" name="nonce" value="">`+"\n"+
			`<p id="ipveil-status" role="status">Checking your browser. This takes a moment.</p>`+"\n"+
			noscript+"\n</form>\n"...)
		b = append(b, powScript...)
		return append(b, '\n')
	}
	info := d.Provider.info()
	b = append(b, `<div class="`+info.class+`" data-sitekey="`...)
	b = appendEscaped(b, d.SiteKey)
	return append(b, `" data-callback="ipveilSolved"></div>`+"\n"+noscript+"\n"+
		`<p><button type="submit">Continue</button></p>`+"\n</form>\n"+
		`<script src="`+info.script+`" async defer></script>`+"\n"+captchaScript+"\n"...)
}

const captchaScript = `<script>function ipveilSolved(){document.getElementById("ipveil").submit()}</script>`

// appendEscaped appends s escaped for HTML text and quoted attribute
// values.
func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case 0:
			esc = "\uFFFD"
		default:
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

// ContentSecurityPolicy returns a Content-Security-Policy header value for
// pages rendered with this template for provider p: a strict policy
// (inline script and style allowed by hash only, nothing loaded, the form
// may post only to the same origin, no framing) for the built-in template
// with ProofOfWork, and "" otherwise: an operator's template or a
// CAPTCHA's scripts need a policy the operator writes.
func (t *Template) ContentSecurityPolicy(p Provider) string {
	if !t.isDefault || p.IsCaptcha() {
		return ""
	}
	return defaultCSP
}

var defaultCSP = "default-src 'none'; script-src " + cspHash(powScript, "<script>", "</script>") +
	"; style-src " + cspHash(defaultStyle, "<style>", "</style>") +
	"; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func cspHash(element, open, close string) string {
	body := strings.TrimSuffix(strings.TrimPrefix(element, open), close)
	sum := sha256.Sum256([]byte(body))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

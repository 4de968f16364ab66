package challenge

import (
	"strings"

	"github.com/tidwall/gjson"
)

// Provider is the kind of challenge a page asks the visitor to complete:
// ipveil's own proof of work, or a third-party CAPTCHA.
type Provider uint8

const (
	// ProofOfWork is ipveil's own puzzle: no third party is involved.
	ProofOfWork Provider = iota
	// Turnstile is Cloudflare Turnstile.
	Turnstile
	// HCaptcha is hCaptcha.
	HCaptcha
	// ReCaptcha is Google reCAPTCHA v2 (checkbox or invisible).
	ReCaptcha

	providerCount
)

type providerInfo struct {
	name, field, script, class, authority, path string
}

var providers = [providerCount]providerInfo{
	ProofOfWork: {name: "pow"},
	Turnstile: {"turnstile", "cf-turnstile-response", "https://challenges.cloudflare.com/turnstile/v0/api.js",
		"cf-turnstile", "challenges.cloudflare.com", "/turnstile/v0/siteverify"},
	HCaptcha: {"hcaptcha", "h-captcha-response", "https://js.hcaptcha.com/1/api.js",
		"h-captcha", "api.hcaptcha.com", "/siteverify"},
	ReCaptcha: {"recaptcha", "g-recaptcha-response", "https://www.google.com/recaptcha/api.js",
		"g-recaptcha", "www.google.com", "/recaptcha/api/siteverify"},
}

func (p Provider) info() providerInfo {
	if p < providerCount {
		return providers[p]
	}
	return providerInfo{}
}

// ParseProvider returns the provider named "pow", "turnstile", "hcaptcha"
// or "recaptcha".
func ParseProvider(name string) (Provider, bool) {
	for i, info := range providers {
		if info.name == name {
			return Provider(i), true
		}
	}
	return 0, false
}

// String returns the provider's configuration name, such as "turnstile".
func (p Provider) String() string {
	if n := p.info().name; n != "" {
		return n
	}
	return "unknown"
}

// IsCaptcha reports whether p is a third-party CAPTCHA.
func (p Provider) IsCaptcha() bool { return p != ProofOfWork && p < providerCount }

// ResponseField is the form field the provider's widget puts its answer
// in: "cf-turnstile-response", "h-captcha-response" or
// "g-recaptcha-response" ("" for ProofOfWork).
func (p Provider) ResponseField() string { return p.info().field }

// ScriptURL is the provider's widget script, which the CAPTCHA page loads.
func (p Provider) ScriptURL() string { return p.info().script }

// SiteverifyAuthority is the host of the provider's siteverify API; the
// filter's callout cluster must reach it over TLS on port 443.
func (p Provider) SiteverifyAuthority() string { return p.info().authority }

// SiteverifyPath is the path of the provider's siteverify API.
func (p Provider) SiteverifyPath() string { return p.info().path }

// SiteverifyRequest returns the HTTP callout that checks a CAPTCHA answer
// with the provider: a POST to path on authority with the given content
// type and body (secret and response, form-encoded). It returns empty
// values for ProofOfWork.
//
// It never sends "remoteip", which every provider accepts as an optional
// field: that would hand the visitor's raw address to a third party, and
// ipveil sends it nowhere but to the reputation lookup. The visitor's
// browser does talk to the provider directly when it loads the widget;
// ipveil adds nothing to that.
func SiteverifyRequest(p Provider, secret, token string) (path, authority, contentType string, body []byte) {
	if !p.IsCaptcha() {
		return "", "", "", nil
	}
	b := make([]byte, 0, len("secret=&response=")+len(secret)*3+len(token)*3)
	b = append(b, "secret="...)
	b = appendFormEscaped(b, secret)
	b = append(b, "&response="...)
	b = appendFormEscaped(b, token)
	return p.SiteverifyPath(), p.SiteverifyAuthority(), "application/x-www-form-urlencoded", b
}

func appendFormEscaped(b []byte, s string) []byte {
	const hexdigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b = append(b, c)
		case c == ' ':
			b = append(b, '+')
		default:
			b = append(b, '%', hexdigits[c>>4], hexdigits[c&15])
		}
	}
	return b
}

// ParseSiteverify interprets the provider's answer to a
// [SiteverifyRequest]: status is the callout's :status (Envoy reports a
// timeout as 504, no healthy host as 503; pass 0 for a reset), body its
// body, expectedHost the challenged request's :authority (a port is
// ignored).
//
// It returns nil when the answer is a JSON object with "success": true
// and a "hostname" equal to expectedHost, ignoring ASCII case. Otherwise:
//
//   - [ErrProviderDown] for a non-2xx status, a body that is not a JSON
//     object with a boolean "success", or the provider's "internal-error";
//   - a [*CaptchaError] (matching [ErrCaptchaFailed]) with the provider's
//     "error-codes" when "success" is false, such as
//     "timeout-or-duplicate" (expired or used answer) or
//     "invalid-input-secret" (the configured secret is wrong);
//   - [ErrWrongHost] when the answer was solved on another site that uses
//     the same site key, or carries no hostname.
func ParseSiteverify(p Provider, status int, body []byte, expectedHost string) error {
	if !p.IsCaptcha() || status < 200 || status > 299 || !gjson.ValidBytes(body) {
		return ErrProviderDown
	}
	r := gjson.ParseBytes(body)
	if !r.IsObject() {
		return ErrProviderDown
	}
	success := r.Get("success")
	if success.Type != gjson.True && success.Type != gjson.False {
		return ErrProviderDown
	}
	if !success.Bool() {
		var codes []string
		for _, c := range r.Get("error-codes").Array() {
			if c.Type != gjson.String {
				continue
			}
			if c.Str == "internal-error" {
				return ErrProviderDown
			}
			if len(codes) < 8 && safeCode(c.Str) {
				codes = append(codes, c.Str)
			}
		}
		return &CaptchaError{Codes: codes}
	}
	h := r.Get("hostname")
	if h.Type != gjson.String || h.Str == "" || !strings.EqualFold(strings.TrimSuffix(h.Str, "."), hostOnly(expectedHost)) {
		return ErrWrongHost
	}
	return nil
}

// safeCode reports whether an error code is short and made of
// [A-Za-z0-9_-] only, so it can go into logs and metric names.
func safeCode(s string) bool {
	return s != "" && len(s) <= 64 && validCodeChars(s)
}

func validCodeChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isKeyIDByte(s[i]) {
			return false
		}
	}
	return true
}

// hostOnly strips a port, IPv6 brackets and a trailing dot from an
// authority.
func hostOnly(authority string) string {
	h := authority
	if strings.HasPrefix(h, "[") {
		if end := strings.IndexByte(h, ']'); end > 0 {
			h = h[1:end]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

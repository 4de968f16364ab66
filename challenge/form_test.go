package challenge

import (
	"net/url"
	"strings"
	"testing"
)

const formType = "application/x-www-form-urlencoded"

func TestParseVerifyForm(t *testing.T) {
	for _, tc := range []struct {
		name, ct, body string
		max            int
		token, nonce   string
		err            error
	}{
		{"plain", formType, "token=abc.def&nonce=123", 0, "abc.def", "123", nil},
		{"charset", "Application/X-WWW-Form-Urlencoded; charset=UTF-8", "nonce=1&token=t", 0, "t", "1", nil},
		{"escapes", formType, "token=a%2Eb%2d+c&nonce=%31", 0, "a.b- c", "1", nil},
		{"extra fields", formType, "x=1&token=t&&y&nonce=9&z=", 0, "t", "9", nil},
		{"duplicates: first wins", formType, "token=a&token=b&nonce=1&nonce=2", 0, "a", "1", nil},
		{"encoded name", formType, "%74oken=t&nonce=1", 0, "t", "1", nil},
		{"missing nonce", formType, "token=t", 0, "", "", ErrMissingField},
		{"empty nonce", formType, "token=t&nonce=", 0, "", "", ErrMissingField},
		{"empty body", formType, "", 0, "", "", ErrMissingField},
		{"no value", formType, "token&nonce", 0, "", "", ErrMissingField},
		{"json", "application/json", `{"token":"t","nonce":"1"}`, 0, "", "", ErrBadForm},
		{"multipart", "multipart/form-data; boundary=x", "token=t&nonce=1", 0, "", "", ErrBadForm},
		{"no content type", "", "token=t&nonce=1", 0, "", "", ErrBadForm},
		{"bad escape", formType, "token=%zz&nonce=1", 0, "", "", ErrBadForm},
		{"short escape", formType, "token=t&nonce=1%", 0, "", "", ErrBadForm},
		{"short escape 2", formType, "token=t&nonce=1%4", 0, "", "", ErrBadForm},
		{"bad escape elsewhere", formType, "token=t&nonce=1&x=%", 0, "", "", ErrBadForm},
		{"at the limit", formType, "token=t&nonce=1", 15, "t", "1", nil},
		{"over the limit", formType, "token=t&nonce=1", 14, "", "", ErrTooLarge},
		{"default limit", formType, "token=" + strings.Repeat("a", DefaultMaxFormBytes), 0, "", "", ErrTooLarge},
	} {
		tok, nonce, err := ParseVerifyForm(tc.ct, []byte(tc.body), tc.max)
		if tok != tc.token || nonce != tc.nonce || err != tc.err {
			t.Errorf("%s: ParseVerifyForm = %q, %q, %v; want %q, %q, %v", tc.name, tok, nonce, err, tc.token, tc.nonce, tc.err)
		}
	}
}

func TestParseCaptchaForm(t *testing.T) {
	body := "token=T&cf-turnstile-response=CF&h-captcha-response=H&g-recaptcha-response=G"
	for p, want := range map[Provider]string{Turnstile: "CF", HCaptcha: "H", ReCaptcha: "G"} {
		tok, resp, err := ParseCaptchaForm(p, formType, []byte(body), 0)
		if tok != "T" || resp != want || err != nil {
			t.Errorf("%v: %q %q %v", p, tok, resp, err)
		}
		if _, _, err := ParseCaptchaForm(p, formType, []byte("token=T"), 0); err != ErrMissingField {
			t.Errorf("%v without answer: %v", p, err)
		}
	}
	if _, _, err := ParseCaptchaForm(ProofOfWork, formType, []byte(body), 0); err != ErrMissingField {
		t.Errorf("ProofOfWork: %v", err)
	}
}

func TestSafeReturnPath(t *testing.T) {
	good := []string{"/", "/a", "/a/b?c=d&e=%2F%2F", "/.ipveil/x", "/a//b", "/a/../../b", "/%41", "/javascript:alert(1)",
		"/?next=https://evil.example", "/#frag", "/~user", "/" + strings.Repeat("a", MaxReturnPathLen-1)}
	bad := []string{"", "a", "//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example", "\\/evil.example",
		"https://evil.example", "http:/evil.example", "javascript:alert(1)", "/%2F/evil.example", "/%2fevil.example",
		"/%5Cevil.example", "/%5c", "/%", "/a%2", "/a%zz", "/%%41", " /a", "/a b", "/a\tb", "/\t/evil.example", "/a\r\nSet-Cookie: x=y", "/a\x00",
		"/a\x7f", "/caf\xc3\xa9", "/a\\b", "/" + strings.Repeat("a", MaxReturnPathLen), "./a", "?a", "#a", "\x00/a"}
	for _, p := range good {
		if got, ok := SafeReturnPath(p); !ok || got != p {
			t.Errorf("SafeReturnPath(%q) = %q, %v; want it kept", p, got, ok)
		}
	}
	for _, p := range bad {
		if got, ok := SafeReturnPath(p); ok || got != "/" {
			t.Errorf("SafeReturnPath(%q) = %q, %v; want \"/\", false", p, got, ok)
		}
	}
	for _, p := range append(good, bad...) {
		checkSameOrigin(t, p)
	}
}

// checkSameOrigin asserts that SafeReturnPath's answer, resolved against a
// page the way a browser resolves a Location header, stays on its origin.
func checkSameOrigin(t *testing.T, in string) {
	t.Helper()
	out, ok := SafeReturnPath(in)
	if !ok && out != "/" || ok && out != in {
		t.Fatalf("SafeReturnPath(%q) = %q, %v", in, out, ok)
	}
	if out == "" || out[0] != '/' || len(out) > 1 && (out[1] == '/' || out[1] == '\\') || strings.ContainsAny(out, "\\\r\n\t ") {
		t.Fatalf("SafeReturnPath(%q) = %q: not a same-origin path", in, out)
	}
	base, _ := url.Parse("https://shop.example/a/b")
	ref, err := url.Parse(out)
	if err != nil {
		t.Fatalf("SafeReturnPath(%q) = %q, which does not parse: %v", in, out, err)
	}
	if ref.Scheme != "" || ref.Host != "" || ref.User != nil {
		t.Fatalf("SafeReturnPath(%q) = %q names a scheme or host", in, out)
	}
	if u := base.ResolveReference(ref); u.Host != "shop.example" || u.Scheme != "https" {
		t.Fatalf("SafeReturnPath(%q) = %q resolves to %v", in, out, u)
	}
}

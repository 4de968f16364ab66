package challenge

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestProviders(t *testing.T) {
	for _, tc := range []struct {
		name                           string
		p                              Provider
		field, script, authority, path string
	}{
		{"pow", ProofOfWork, "", "", "", ""},
		{"turnstile", Turnstile, "cf-turnstile-response", "https://challenges.cloudflare.com/turnstile/v0/api.js",
			"challenges.cloudflare.com", "/turnstile/v0/siteverify"},
		{"hcaptcha", HCaptcha, "h-captcha-response", "https://js.hcaptcha.com/1/api.js", "api.hcaptcha.com", "/siteverify"},
		{"recaptcha", ReCaptcha, "g-recaptcha-response", "https://www.google.com/recaptcha/api.js", "www.google.com",
			"/recaptcha/api/siteverify"},
	} {
		p, ok := ParseProvider(tc.name)
		if !ok || p != tc.p || p.String() != tc.name || p.ResponseField() != tc.field || p.ScriptURL() != tc.script ||
			p.SiteverifyAuthority() != tc.authority || p.SiteverifyPath() != tc.path || p.IsCaptcha() != (tc.p != ProofOfWork) {
			t.Errorf("%s: %v %v", tc.name, p, ok)
		}
	}
	if _, ok := ParseProvider("Turnstile"); ok {
		t.Error("provider names are case-sensitive")
	}
	if Provider(99).String() != "unknown" || Provider(99).IsCaptcha() || Provider(99).ResponseField() != "" {
		t.Error("Provider(99)")
	}
}

func TestSiteverifyRequest(t *testing.T) {
	secret := "0x4AAA&secret=+/ x"
	token := "XXXX.DUMMY.TOKEN+/=&remoteip=1.2.3.4"
	for _, p := range []Provider{Turnstile, HCaptcha, ReCaptcha} {
		path, authority, ct, body := SiteverifyRequest(p, secret, token)
		if path != p.SiteverifyPath() || authority != p.SiteverifyAuthority() || ct != "application/x-www-form-urlencoded" {
			t.Errorf("%v: %q %q %q", p, path, authority, ct)
		}
		v, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatalf("%v: body %q: %v", p, body, err)
		}
		want := url.Values{"secret": {secret}, "response": {token}}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("%v: body %q decodes to %v, want %v", p, body, v, want)
		}
		if strings.Contains(string(body), "remoteip=") {
			t.Errorf("%v: body %q sends remoteip", p, body)
		}
	}
	if path, _, _, body := SiteverifyRequest(ProofOfWork, "s", "t"); path != "" || body != nil {
		t.Error("ProofOfWork has no siteverify")
	}
}

func TestParseSiteverify(t *testing.T) {
	for _, tc := range []struct {
		file   string
		p      Provider
		status int
		host   string
		want   error
		codes  []string
	}{
		{"turnstile_success.json", Turnstile, 200, "shop.example", nil, nil},
		{"turnstile_success.json", Turnstile, 200, "SHOP.example:8443", nil, nil},
		{"turnstile_success.json", Turnstile, 200, "shop.example.", nil, nil},
		{"turnstile_success.json", Turnstile, 200, "other.example", ErrWrongHost, nil},
		{"turnstile_success.json", Turnstile, 200, "", ErrWrongHost, nil},
		{"turnstile_success.json", Turnstile, 503, "shop.example", ErrProviderDown, nil},
		{"turnstile_success.json", Turnstile, 0, "shop.example", ErrProviderDown, nil},
		{"turnstile_invalid.json", Turnstile, 200, "shop.example", ErrCaptchaFailed, []string{"invalid-input-response"}},
		{"turnstile_duplicate.json", Turnstile, 200, "shop.example", ErrCaptchaFailed, []string{"timeout-or-duplicate"}},
		{"turnstile_internal_error.json", Turnstile, 200, "shop.example", ErrProviderDown, nil},
		{"turnstile_other_host.json", Turnstile, 200, "shop.example", ErrWrongHost, nil},
		{"hcaptcha_success.json", HCaptcha, 200, "shop.example", nil, nil},
		{"hcaptcha_seen.json", HCaptcha, 200, "shop.example", ErrCaptchaFailed, []string{"invalid-or-already-seen-response"}},
		{"hcaptcha_bad_secret.json", HCaptcha, 200, "shop.example", ErrCaptchaFailed, []string{"invalid-input-secret", "sitekey-secret-mismatch"}},
		{"recaptcha_success.json", ReCaptcha, 200, "shop.example", nil, nil},
		{"recaptcha_success.json", ReCaptcha, 200, "[::1]:443", ErrWrongHost, nil},
		{"recaptcha_duplicate.json", ReCaptcha, 200, "shop.example", ErrCaptchaFailed, []string{"timeout-or-duplicate"}},
		{"recaptcha_test_key.json", ReCaptcha, 200, "shop.example", ErrWrongHost, nil},
		{"recaptcha_no_hostname.json", ReCaptcha, 200, "shop.example", ErrWrongHost, nil},
		{"provider_html_error.txt", ReCaptcha, 200, "shop.example", ErrProviderDown, nil},
		{"recaptcha_success.json", ProofOfWork, 200, "shop.example", ErrProviderDown, nil},
	} {
		body, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		err = ParseSiteverify(tc.p, tc.status, body, tc.host)
		if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("%s %v %d %q: %v, want %v", tc.file, tc.p, tc.status, tc.host, err, tc.want)
			continue
		}
		var ce *CaptchaError
		if errors.As(err, &ce) && !reflect.DeepEqual(ce.Codes, tc.codes) {
			t.Errorf("%s: codes %q, want %q", tc.file, ce.Codes, tc.codes)
		}
	}
	for _, body := range []string{``, `null`, `[]`, `"success"`, `{}`, `{"success":"true"}`, `{"success":1}`,
		`{"success":true`, `{"success":true,"hostname":"shop.example"}garbage`} {
		if err := ParseSiteverify(Turnstile, 200, []byte(body), "shop.example"); err != ErrProviderDown {
			t.Errorf("body %q: %v, want ErrProviderDown", body, err)
		}
	}
	// Codes are filtered before they can reach a log or a metric name.
	err := ParseSiteverify(HCaptcha, 200, []byte(`{"success":false,"error-codes":["ok-code","bad code","<script>",1,`+
		`"`+strings.Repeat("x", 65)+`","a","b","c","d","e","f","g","h"]}`), "shop.example")
	var ce *CaptchaError
	if !errors.As(err, &ce) || strings.Join(ce.Codes, ",") != "ok-code,a,b,c,d,e,f,g" {
		t.Errorf("filtered codes: %v", err)
	}
	if Reason(err) != "captcha_failed" || !strings.Contains(err.Error(), "ok-code") {
		t.Errorf("CaptchaError: %q %q", Reason(err), err)
	}
	if (&CaptchaError{}).Error() != ErrCaptchaFailed.Error() {
		t.Error("CaptchaError without codes")
	}
}

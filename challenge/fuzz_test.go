package challenge

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: Verify never panics and accepts only the one token this test
// signed, with a nonce that solves it.
func FuzzVerify(f *testing.F) {
	kr := mustKeyring(f, "k2:"+testKey2+",k1:"+testKey1)
	// A fixed puzzle id, so that every fuzzing worker knows the same token.
	tok, err := issueWithID(kr, testNow, kindPuzzle, testParams(4), [16]byte{1, 2, 3})
	if err != nil {
		f.Fatal(err)
	}
	nonce := Solve(tok, 4)
	f.Add(tok, nonce)
	f.Add(tok, "0")
	f.Add(tok+"A", nonce)
	f.Add(strings.Replace(tok, ".", "..", 1), nonce)
	f.Add("", "")
	f.Add("AQ.AA", "1")
	f.Add("AQJrMQ."+strings.Repeat("A", 43), "00000000000000000000")
	f.Fuzz(func(t *testing.T, token, n string) {
		p, err := Verify(kr, nil, token, n, testNow, testNet, testHost)
		if err == nil {
			if token != tok || LeadingZeroBits(token, n) < 4 {
				t.Fatalf("Verify accepted token %q nonce %q", token, n)
			}
			if rp, ok := SafeReturnPath(p.ReturnPath); !ok || rp != p.ReturnPath {
				t.Fatalf("unsafe return path %q", p.ReturnPath)
			}
		} else if Reason(err) == "error" {
			t.Fatalf("untyped error %v", err)
		}
		if _, err := VerifyTicket(kr, nil, token, testNow, testNet, testHost); err == nil {
			t.Fatalf("VerifyTicket accepted %q", token)
		}
	})
}

// FuzzVerifyPass: VerifyPass never panics and accepts only the pass this
// test issued.
func FuzzVerifyPass(f *testing.F) {
	kr := mustKeyring(f, "k2:"+testKey2+",k1:"+testKey1)
	pass := mustPass(f, kr, time.Hour)
	f.Add(pass)
	f.Add(pass[:len(pass)-1] + "B")
	f.Add(strings.ToUpper(pass))
	f.Add("")
	f.Add(".")
	f.Add("Ag.")
	f.Add("AgJrMQ." + strings.Repeat("_", 43))
	f.Fuzz(func(t *testing.T, value string) {
		err := VerifyPass(kr, value, testNow, testNet, testHost)
		if err == nil && value != pass {
			t.Fatalf("VerifyPass accepted %q", value)
		}
		if err != nil && Reason(err) == "error" {
			t.Fatalf("untyped error %v", err)
		}
		checkB64(t, value)
	})
}

// FuzzCookieValue: CookieValue and RemoveCookie never panic, return only
// what the header holds, and agree with each other.
func FuzzCookieValue(f *testing.F) {
	for _, s := range []string{"ipveil_pass=abc", `a=1; ipveil_pass="x.y"; b=2`, "ipveil_pass=1;ipveil_pass=2", ";=;", "ipveil_pass", `ipveil_pass="`, " \t ipveil_pass \t = \t v \t "} {
		f.Add(s, "ipveil_pass")
	}
	f.Add("=x", "")
	f.Fuzz(func(t *testing.T, header, name string) {
		v, ok := CookieValue(header, name)
		if ok && (!strings.Contains(header, v) || strings.Contains(v, ";") || name == "") {
			t.Fatalf("CookieValue(%q, %q) = %q", header, name, v)
		}
		rest, removed := RemoveCookie(header, name)
		if removed != ok && !(ok && name == "") {
			t.Fatalf("CookieValue found %v, RemoveCookie removed %v in %q", ok, removed, header)
		}
		if _, again := CookieValue(rest, name); again && removed {
			t.Fatalf("RemoveCookie(%q, %q) = %q still holds it", header, name, rest)
		}
		if ValidCookieName(name) && validCookieValue(v) && !strings.ContainsAny(v, "\"") {
			if got, ok := CookieValue(name+"="+v, name); !ok || got != v {
				t.Fatalf("round trip of %q=%q: %q %v", name, v, got, ok)
			}
		}
	})
}

// FuzzParseVerifyForm: the parser never panics, honours the limit, and
// reads the same first values as net/url where both accept the body.
func FuzzParseVerifyForm(f *testing.F) {
	f.Add(formType, []byte("token=abc.def&nonce=123"), 0)
	f.Add(formType+"; charset=utf-8", []byte("nonce=%31&token=a+b&token=c"), 100)
	f.Add(formType, []byte("token=%&nonce=1"), 0)
	f.Add("text/plain", []byte("token=t&nonce=1"), 0)
	f.Add(formType, []byte("&&=&token&nonce="), 5)
	f.Fuzz(func(t *testing.T, ct string, body []byte, max int) {
		tok, nonce, err := ParseVerifyForm(ct, body, max)
		limit := max
		if limit <= 0 {
			limit = DefaultMaxFormBytes
		}
		if err != nil {
			if tok != "" || nonce != "" || Reason(err) == "error" {
				t.Fatalf("error %v with values %q %q", err, tok, nonce)
			}
			if len(body) > limit && err != ErrTooLarge {
				t.Fatalf("body of %d bytes over limit %d: %v", len(body), limit, err)
			}
			return
		}
		if tok == "" || nonce == "" || len(body) > limit {
			t.Fatalf("accepted %q %q from %d bytes (limit %d)", tok, nonce, len(body), limit)
		}
		if q, uerr := url.ParseQuery(string(body)); uerr == nil && q.Get("token") != tok || uerr == nil && q.Get("nonce") != nonce {
			t.Fatalf("net/url reads %q %q, ParseVerifyForm %q %q", q.Get("token"), q.Get("nonce"), tok, nonce)
		}
	})
}

// FuzzSafeReturnPath: the answer is always a same-origin path.
func FuzzSafeReturnPath(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//evil", "/\\evil", "/%2f%2fevil", "https://evil", "/\r\n", "\\\\evil", "/%5C", "/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		checkSameOrigin(t, p)
	})
}

// FuzzParseSiteverify: only a 2xx JSON success for the right host passes.
func FuzzParseSiteverify(f *testing.F) {
	f.Add([]byte(`{"success":true,"hostname":"shop.example"}`), "shop.example", 200)
	f.Add([]byte(`{"success":false,"error-codes":["timeout-or-duplicate"]}`), "shop.example", 200)
	f.Add([]byte(`{"success":true,"hostname":"a"}`), "A:1", 299)
	f.Fuzz(func(t *testing.T, body []byte, host string, status int) {
		err := ParseSiteverify(Turnstile, status, body, host)
		if err == nil && (status < 200 || status > 299 || !strings.Contains(string(body), "true")) {
			t.Fatalf("accepted status %d body %q", status, body)
		}
		if err != nil && Reason(err) == "error" {
			t.Fatalf("untyped error %v", err)
		}
	})
}

// FuzzParseKeyring: errors never repeat key material. A valid key id (at
// most 16 characters, shorter than any key) is named on purpose.
func FuzzParseKeyring(f *testing.F) {
	f.Add("k1:" + testKey1)
	f.Add("k1:" + testKey1 + ",k1:" + testKey2)
	f.Add(testKey1 + ":" + testKey2)
	f.Add("k:" + testKey1[:30])
	f.Fuzz(func(t *testing.T, s string) {
		_, err := ParseKeyring(s)
		if err == nil {
			return
		}
		for _, e := range strings.Split(s, ",") {
			idPart, keyPart, _ := strings.Cut(e, ":")
			for _, secret := range []string{strings.TrimSpace(keyPart), strings.TrimSpace(idPart)} {
				if len(secret) >= 16 && !validKeyID(secret) && strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q repeats %q", err, secret)
				}
			}
		}
	})
}

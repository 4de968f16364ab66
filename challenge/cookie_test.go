package challenge

import (
	"net/http"
	"testing"
)

func TestSetCookie(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		o           CookieOptions
		want        string
	}{
		{"ipveil_pass", "abc.def", CookieOptions{MaxAge: 3600},
			"ipveil_pass=abc.def; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"},
		{"__Host-ipveil", "v", CookieOptions{Path: "/"},
			"__Host-ipveil=v; Path=/; HttpOnly; Secure; SameSite=Lax"},
		{"p", "v", CookieOptions{Path: "/app", Domain: "example.com", MaxAge: -1},
			"p=v; Path=/app; Domain=example.com; Max-Age=0; HttpOnly; Secure; SameSite=Lax"},
		{"p", "v", CookieOptions{Path: "/a;Domain=evil", Domain: "evil.com; x", Insecure: true},
			"p=v; Path=/; HttpOnly; SameSite=Lax"},
		{"p", "v", CookieOptions{Path: "/a\r\nX: y"}, "p=v; Path=/; HttpOnly; Secure; SameSite=Lax"},
		{"bad name", "v", CookieOptions{}, ""},
		{"", "v", CookieOptions{}, ""},
		{"p", "v;x", CookieOptions{}, ""},
		{"p", "v\r\n", CookieOptions{}, ""},
	} {
		if got := SetCookie(tc.name, tc.value, tc.o); got != tc.want {
			t.Errorf("SetCookie(%q, %q, %+v) =\n  %q\nwant\n  %q", tc.name, tc.value, tc.o, got, tc.want)
		}
	}
	// Go's own cookie parser reads it back.
	h := http.Header{"Set-Cookie": {SetCookie(DefaultCookieName, "abc.def", CookieOptions{MaxAge: 60})}}
	c := (&http.Response{Header: h}).Cookies()
	if len(c) != 1 || c[0].Value != "abc.def" || !c[0].HttpOnly || !c[0].Secure || c[0].SameSite != http.SameSiteLaxMode || c[0].MaxAge != 60 {
		t.Errorf("net/http reads %+v", c)
	}
}

func TestCookieValue(t *testing.T) {
	for _, tc := range []struct {
		header, name, want string
		ok                 bool
	}{
		{"ipveil_pass=abc", "ipveil_pass", "abc", true},
		{"a=1; ipveil_pass=abc; b=2", "ipveil_pass", "abc", true},
		{"a=1;ipveil_pass=abc;b=2", "ipveil_pass", "abc", true},
		{"  ipveil_pass = abc  ", "ipveil_pass", "abc", true},
		{"\tipveil_pass=abc\t;x=y", "ipveil_pass", "abc", true},
		{`ipveil_pass="abc"`, "ipveil_pass", "abc", true},
		{`ipveil_pass="`, "ipveil_pass", `"`, true},
		{`ipveil_pass=""`, "ipveil_pass", "", true},
		{"ipveil_pass=first; ipveil_pass=second", "ipveil_pass", "first", true},
		{"ipveil_pass=", "ipveil_pass", "", true},
		{"ipveil_pass=a=b", "ipveil_pass", "a=b", true},
		{"x_ipveil_pass=abc", "ipveil_pass", "", false},
		{"ipveil_pass_x=abc", "ipveil_pass", "", false},
		{"IPVEIL_PASS=abc", "ipveil_pass", "", false},
		{"ipveil_pass", "ipveil_pass", "", false},
		{"noequals; ipveil_pass=v", "ipveil_pass", "v", true},
		{";;;", "ipveil_pass", "", false},
		{"", "ipveil_pass", "", false},
		{"=abc", "", "", false},
		// RFC 6265 separates pairs with ';' only; a comma belongs to the value.
		{"a=1, ipveil_pass=abc", "ipveil_pass", "", false},
		{"ipveil_pass=abc, a=1", "ipveil_pass", "abc, a=1", true},
	} {
		got, ok := CookieValue(tc.header, tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("CookieValue(%q, %q) = %q, %v; want %q, %v", tc.header, tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if n := testing.AllocsPerRun(100, func() { CookieValue("a=1; b=2; ipveil_pass=x.y", "ipveil_pass") }); n != 0 {
		t.Errorf("CookieValue allocates %v times", n)
	}
}

func TestRemoveCookie(t *testing.T) {
	for _, tc := range []struct {
		header, want string
		removed      bool
	}{
		{"ipveil_pass=abc", "", true},
		{"a=1; ipveil_pass=abc; b=2", "a=1; b=2", true},
		{"a=1;ipveil_pass=abc;ipveil_pass=d;b=2", "a=1; b=2", true},
		{"a=1; b=2", "a=1; b=2", false},
		{"a=ipveil_pass", "a=ipveil_pass", false},
		{"a=1;; ipveil_pass=x", "a=1", true},
	} {
		got, removed := RemoveCookie(tc.header, "ipveil_pass")
		if got != tc.want || removed != tc.removed {
			t.Errorf("RemoveCookie(%q) = %q, %v; want %q, %v", tc.header, got, removed, tc.want, tc.removed)
		}
	}
}

package challenge

import (
	"strconv"
	"strings"
)

// DefaultCookieName is the suggested name of the pass cookie.
const DefaultCookieName = "ipveil_pass"

// CookieOptions are the attributes of the pass cookie.
type CookieOptions struct {
	// Path scopes the cookie; "" means "/", which is what a pass needs.
	// A path with characters not allowed in a cookie attribute is
	// replaced by "/".
	Path string
	// MaxAge is the cookie's lifetime in seconds; set it to the pass TTL.
	// 0 leaves it out (a session cookie, still bounded by the pass's own
	// expiry); a negative value writes Max-Age=0, which deletes it.
	MaxAge int
	// Domain, when set, shares the cookie with subdomains. "" (host-only)
	// is the safer default, and allows the "__Host-" name prefix. A value
	// that is not a plain domain name is left out.
	Domain string
	// Insecure leaves out the Secure attribute. Only for development
	// over plain HTTP on a name other than localhost: browsers refuse to
	// store a Secure cookie received over plain HTTP, so the visitor
	// would be challenged again and again.
	Insecure bool
}

// ValidCookieName reports whether name is a valid cookie name (an RFC 6265
// token). Check the configured name with it when loading configuration.
func ValidCookieName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\' {
			return false
		}
	}
	return true
}

// SetCookie returns the value of a Set-Cookie response header that stores
// value under name:
//
//	ipveil_pass=VALUE; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax
//
// HttpOnly keeps it from page scripts; Secure means browsers send it only
// over HTTPS, or to localhost (and store it only when it arrives that
// way); SameSite=Lax keeps it off cross-site subrequests and POSTs while
// a visitor following a link from another site still carries it. It
// returns "" if name is not a valid cookie name ([ValidCookieName]) or
// value holds characters a cookie value cannot (a pass never does).
func SetCookie(name, value string, o CookieOptions) string {
	if !ValidCookieName(name) || !validCookieValue(value) {
		return ""
	}
	path := o.Path
	if path == "" || !validCookieAttr(path) {
		path = "/"
	}
	var b strings.Builder
	b.Grow(len(name) + len(value) + len(path) + len(o.Domain) + 64)
	b.WriteString(name)
	b.WriteByte('=')
	b.WriteString(value)
	b.WriteString("; Path=")
	b.WriteString(path)
	if o.Domain != "" && validDomain(o.Domain) {
		b.WriteString("; Domain=")
		b.WriteString(o.Domain)
	}
	switch {
	case o.MaxAge > 0:
		b.WriteString("; Max-Age=")
		b.WriteString(strconv.Itoa(o.MaxAge))
	case o.MaxAge < 0:
		b.WriteString("; Max-Age=0")
	}
	b.WriteString("; HttpOnly")
	if !o.Insecure {
		b.WriteString("; Secure")
	}
	b.WriteString("; SameSite=Lax")
	return b.String()
}

func validCookieAttr(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == ';' {
			return false
		}
	}
	return true
}

func validDomain(d string) bool {
	if len(d) > 253 {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// CookieValue finds the cookie name in a Cookie request header and returns
// its value. It accepts what browsers and other clients send: pairs
// separated by ';' with or without spaces, a value in double quotes (the
// quotes are removed), pairs without '=' (skipped). Names are
// case-sensitive. When name appears more than once the first one counts,
// as browsers put the most specific cookie first. It never panics and
// does not allocate.
//
// A request may carry several Cookie headers (HTTP/2 splits them): call it
// on each in order and take the first hit.
func CookieValue(cookieHeader, name string) (string, bool) {
	if name == "" {
		return "", false
	}
	s := cookieHeader
	for s != "" {
		var part string
		part, s, _ = strings.Cut(s, ";")
		k, v, ok := strings.Cut(part, "=")
		if !ok || trimOWS(k) != name {
			continue
		}
		v = trimOWS(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v, true
	}
	return "", false
}

// RemoveCookie returns the Cookie request header without every cookie
// named name, and whether one was removed. The remaining pairs are joined
// with "; ". When the result is "" the caller should remove the header.
// Use it so that the upstream never sees the pass (it holds the masked
// network).
func RemoveCookie(cookieHeader, name string) (string, bool) {
	if name == "" || !strings.Contains(cookieHeader, name) {
		return cookieHeader, false
	}
	var b strings.Builder
	removed := false
	s := cookieHeader
	for s != "" {
		var part string
		part, s, _ = strings.Cut(s, ";")
		k, _, ok := strings.Cut(part, "=")
		if ok && trimOWS(k) == name {
			removed = true
			continue
		}
		if part = trimOWS(part); part == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(part)
	}
	if !removed {
		return cookieHeader, false
	}
	return b.String(), true
}

// trimOWS trims spaces and tabs.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

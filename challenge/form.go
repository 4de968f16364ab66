package challenge

import "strings"

// DefaultMaxFormBytes is the body limit the form parsers apply when given
// a limit <= 0. It fits a puzzle token with the longest return path and
// the largest CAPTCHA answers.
const DefaultMaxFormBytes = 16 << 10

// DefaultVerifyPath is the path the challenge page posts its answer to.
const DefaultVerifyPath = "/.ipveil/verify"

// ParseVerifyForm reads the proof-of-work answer the challenge page posts:
// an application/x-www-form-urlencoded body with the fields "token" and
// "nonce". contentType is the request's Content-Type header (parameters
// such as charset are ignored); body is the whole body, which the caller
// has buffered up to maxBytes (<= 0 means [DefaultMaxFormBytes]).
//
// It returns [ErrTooLarge] for a longer body, [ErrBadForm] for another
// content type or a malformed percent escape, and [ErrMissingField] when
// a field is absent or empty. When a field is repeated the first one
// counts. The values are returned as decoded, unchecked: [Verify] checks
// them.
func ParseVerifyForm(contentType string, body []byte, maxBytes int) (token, nonce string, err error) {
	v, err := parseForm(contentType, body, maxBytes, "token", "nonce")
	if err != nil {
		return "", "", err
	}
	return v[0], v[1], nil
}

// ParseCaptchaForm reads what a CAPTCHA page posts: the ticket in "token"
// and the provider's answer in its response field
// ([Provider.ResponseField]). Errors and limits are those of
// [ParseVerifyForm]. For [ProofOfWork] it returns [ErrMissingField].
func ParseCaptchaForm(p Provider, contentType string, body []byte, maxBytes int) (token, response string, err error) {
	field := p.ResponseField()
	if field == "" {
		return "", "", ErrMissingField
	}
	v, err := parseForm(contentType, body, maxBytes, "token", field)
	if err != nil {
		return "", "", err
	}
	return v[0], v[1], nil
}

func parseForm(contentType string, body []byte, maxBytes int, a, b string) ([2]string, error) {
	var out [2]string
	if maxBytes <= 0 {
		maxBytes = DefaultMaxFormBytes
	}
	if len(body) > maxBytes {
		return out, ErrTooLarge
	}
	mt, _, _ := strings.Cut(contentType, ";")
	if !strings.EqualFold(strings.TrimSpace(mt), "application/x-www-form-urlencoded") {
		return out, ErrBadForm
	}
	var found [2]bool
	s := string(body)
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, ok := formUnescape(k)
		if !ok {
			return out, ErrBadForm
		}
		val, ok := formUnescape(v)
		if !ok {
			return out, ErrBadForm
		}
		for i, name := range [2]string{a, b} {
			if key == name && !found[i] {
				found[i] = true
				out[i] = val
			}
		}
	}
	if out[0] == "" || out[1] == "" {
		return [2]string{}, ErrMissingField
	}
	return out, nil
}

// formUnescape decodes '+' and %XX as in application/x-www-form-urlencoded.
func formUnescape(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			h, l := unhex(s[i+1]), unhex(s[i+2])
			if h > 15 || l > 15 {
				return "", false
			}
			b = append(b, h<<4|l)
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b), true
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// SafeReturnPath returns p and true if p is a same-origin path to
// redirect to, and "/" and false otherwise. A safe path:
//
//   - starts with exactly one '/' (not "//" or "/\", which browsers read
//     as another host), and not with an encoded second slash ("/%2F",
//     "/%5C");
//   - holds only printable ASCII other than '\' (no controls, spaces, DEL
//     or non-ASCII bytes, so no header injection and no scheme), and '%'
//     only as the start of a %XX escape;
//   - is at most [MaxReturnPathLen] bytes.
//
// A query is kept. It is applied to every return path before it is
// signed into a puzzle and again after verification, so no open redirect
// is possible through ipveil.
func SafeReturnPath(p string) (string, bool) {
	if len(p) == 0 || len(p) > MaxReturnPathLen || p[0] != '/' {
		return "/", false
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return "/", false
	}
	if len(p) >= 4 && p[1] == '%' && (p[2] == '2' && (p[3]|0x20) == 'f' || p[2] == '5' && (p[3]|0x20) == 'c') {
		return "/", false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "/", false
		}
		if p[i] == '%' && (i+2 >= len(p) || unhex(p[i+1]) > 15 || unhex(p[i+2]) > 15) {
			return "/", false
		}
	}
	return p, true
}

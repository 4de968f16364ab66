package anonymize

import "strings"

// MaskHeaderValue masks a header that carries a single client address, such as
// X-Real-IP, True-Client-IP, CF-Connecting-IP or X-Envoy-External-Address. The
// value is trimmed of spaces and tabs and parsed with [ParseHostPort]; a port
// is dropped. A value that does not parse gives [Placeholder].
func (m Masker) MaskHeaderValue(s string) string {
	a, err := ParseHostPort(trimOWS(s))
	if err != nil {
		return Placeholder
	}
	return m.String(a)
}

// MaskXFF masks every element of an X-Forwarded-For value. Elements are
// separated by commas and trimmed of spaces and tabs; empty elements are
// dropped; "unknown" (in any case) is kept as "unknown"; every other element
// is parsed with [ParseHostPort] and replaced by its masked network, with any
// port and brackets dropped, or by [Placeholder] when it does not parse. The
// result is joined with ", ":
//
//	"203.0.113.7:4711, [2001:db8::1]:443,, junk" → "203.0.113.0/24, 2001:db8::/64, invalid"
//
// An empty or all-empty value gives "".
func (m Masker) MaskXFF(v string) string {
	var buf [128]byte
	out := buf[:0]
	first := true
	for rest := v; ; {
		elem, tail, more := strings.Cut(rest, ",")
		elem = trimOWS(elem)
		if elem != "" {
			if !first {
				out = append(out, ", "...)
			}
			first = false
			if strings.EqualFold(elem, "unknown") {
				out = append(out, "unknown"...)
			} else if a, err := ParseHostPort(elem); err == nil {
				out = m.AppendTo(out, a)
			} else {
				out = append(out, Placeholder...)
			}
		}
		if !more {
			break
		}
		rest = tail
	}
	return string(out)
}

// SplitXFF splits an X-Forwarded-For value into its elements, trimmed of
// spaces and tabs, with empty elements dropped. The elements are returned
// unparsed and in order (the client that connected first is leftmost); the
// caller picks the rightmost one it does not trust and parses it with
// [ParseHostPort]. It returns nil for a value with no elements.
func SplitXFF(v string) []string {
	n := strings.Count(v, ",") + 1
	var out []string
	for rest := v; ; {
		elem, tail, more := strings.Cut(rest, ",")
		if elem = trimOWS(elem); elem != "" {
			if out == nil {
				out = make([]string, 0, n)
			}
			out = append(out, elem)
		}
		if !more {
			return out
		}
		rest = tail
	}
}

// trimOWS trims HTTP optional white space (spaces and horizontal tabs).
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

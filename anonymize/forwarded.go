package anonymize

import (
	"errors"
	"fmt"
	"strings"
)

// HiddenNode replaces every RFC 7239 obfuscated node identifier (a for= or
// by= value such as _hidden or _SEVKISEK) in [Masker.MaskForwarded] output.
//
// Obfuscated identifiers are not addresses, but they are not kept either: a
// proxy may use one stable identifier per client, which links that client's
// requests across logs just as an address would, and their syntax
// ("_" followed by letters, digits, ".", "_" and "-") can hold an address
// verbatim, as in _192.0.2.1. HiddenNode is itself a valid obfuscated
// identifier, so the header stays valid and still says that the hop was
// hidden on purpose.
const HiddenNode = "_hidden"

// ErrForwarded reports a malformed RFC 7239 Forwarded header. The errors
// returned by [ParseForwarded] match it with [errors.Is] and name the problem
// and the element (counting from 1), never the text.
var ErrForwarded = errors.New("anonymize: malformed Forwarded header")

type forwardedError struct{ msg string }

func (e *forwardedError) Error() string        { return "anonymize: " + e.msg }
func (e *forwardedError) Is(target error) bool { return target == ErrForwarded }

var (
	errFwdPair      = &forwardedError{"malformed Forwarded parameter (want name=value, name a token)"}
	errFwdValue     = &forwardedError{"malformed Forwarded value (want a token or a quoted string, then ; or ,)"}
	errFwdQuote     = &forwardedError{"unterminated or invalid quoted string in Forwarded value"}
	errFwdDuplicate = &forwardedError{"parameter repeated within one Forwarded element"}
)

// ForwardedElement is one element of an RFC 7239 Forwarded header: the
// for=, by=, host= and proto= parameters of one hop, with quoted strings
// unquoted. An absent parameter is "". Extension parameters are not kept.
// Parse For and By with [ParseNode].
type ForwardedElement struct {
	For   string
	By    string
	Host  string
	Proto string
}

// ParseForwarded parses an RFC 7239 Forwarded header value into its
// elements, in order (the client that connected first is leftmost). Parameter
// names are case-insensitive; values are tokens or quoted strings with
// backslash escapes. As a concession to senders that forget to quote, an
// unquoted value may also contain ':', '[' and ']' (for=[2001:db8::1]:80);
// values are otherwise strict. Spaces and tabs are allowed around ',' and
// ';'. Empty elements are skipped. A parameter given twice in one element,
// or any syntax error, fails the whole header with an error matching
// [ErrForwarded]: a caller deciding which hop to trust should then not trust
// the header at all.
func ParseForwarded(v string) ([]ForwardedElement, error) {
	var (
		out     []ForwardedElement
		cur     ForwardedElement
		seen    uint8
		curElem = -1
		err     error
	)
	flush := func() {
		if seen != 0 {
			out = append(out, cur)
		}
		cur, seen = ForwardedElement{}, 0
	}
	scanForwarded(v, func(p fwdPair) bool {
		if p.elem != curElem {
			flush()
			curElem = p.elem
		}
		if p.err != nil {
			err = fmt.Errorf("%w (element %d)", p.err, len(out)+1)
			return false
		}
		var bit uint8
		var dst *string
		switch {
		case strings.EqualFold(p.name, "for"):
			bit, dst = 1, &cur.For
		case strings.EqualFold(p.name, "by"):
			bit, dst = 2, &cur.By
		case strings.EqualFold(p.name, "host"):
			bit, dst = 4, &cur.Host
		case strings.EqualFold(p.name, "proto"):
			bit, dst = 8, &cur.Proto
		default:
			bit = 16 // extension: syntax-checked, then ignored
		}
		if bit != 16 && seen&bit != 0 {
			err = fmt.Errorf("%w (element %d)", errFwdDuplicate, len(out)+1)
			return false
		}
		seen |= bit
		if dst != nil {
			*dst = p.unquote()
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	flush()
	return out, nil
}

// MaskForwarded masks an RFC 7239 Forwarded header value:
//
//   - for= and by= values are masked like [Masker.String], with any port
//     dropped; "unknown" is kept; an obfuscated identifier becomes
//     [HiddenNode]; a value that does not parse, or is malformed, becomes
//     [Placeholder];
//   - host= and proto= are kept;
//   - extension parameters and malformed parameters are dropped: they are
//     free text and might hold an address;
//   - elements left empty are dropped.
//
// The result is valid RFC 7239, with lower-case parameter names, values
// quoted where they are not tokens, ";" between parameters and ", " between
// elements:
//
//	for="[2001:db8::1]:4711";proto=https, for=192.0.2.7;by=_x
//	→ for="2001:db8::/64";proto=https, for="192.0.2.0/24";by=_hidden
//
// A value with no elements gives "".
func (m Masker) MaskForwarded(v string) string {
	var buf [128]byte
	out := buf[:0]
	curElem := -1
	pairs := 0       // pairs written in the current element
	anyElem := false // an element has been written
	scanForwarded(v, func(p fwdPair) bool {
		if p.elem != curElem {
			curElem, pairs = p.elem, 0
		}
		var name string
		switch {
		case strings.EqualFold(p.name, "for"):
			name = "for"
		case strings.EqualFold(p.name, "by"):
			name = "by"
		case strings.EqualFold(p.name, "host"):
			name = "host"
		case strings.EqualFold(p.name, "proto"):
			name = "proto"
		default:
			return true
		}
		if p.err != nil && (name == "host" || name == "proto") {
			return true
		}
		if pairs == 0 {
			if anyElem {
				out = append(out, ", "...)
			}
			anyElem = true
		} else {
			out = append(out, ';')
		}
		pairs++
		out = append(out, name...)
		out = append(out, '=')
		if name == "host" || name == "proto" {
			return appendValue(&out, p.unquote())
		}
		if p.err != nil {
			out = append(out, Placeholder...)
			return true
		}
		val := p.unquote()
		switch nodeKind(val) {
		case nodeUnknown:
			out = append(out, "unknown"...)
		case nodeObfuscated:
			out = append(out, HiddenNode...)
		default:
			a, err := parseHostPort(stripObfPort(val), false)
			if err != nil {
				out = append(out, Placeholder...)
				break
			}
			var tmp [64]byte
			masked := m.AppendTo(tmp[:0], a)
			if isToken(masked) {
				out = append(out, masked...)
			} else {
				out = append(out, '"')
				out = append(out, masked...)
				out = append(out, '"')
			}
		}
		return true
	})
	return string(out)
}

// appendValue appends v as an RFC 7239 value: a token as is, anything else as
// a quoted string.
func appendValue(out *[]byte, v string) bool {
	if isToken(v) {
		*out = append(*out, v...)
		return true
	}
	b := append(*out, '"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, v[i])
	}
	*out = append(b, '"')
	return true
}

// fwdPair is one name=value pair found by scanForwarded.
type fwdPair struct {
	elem   int    // index of the element (counting empty ones)
	name   string // as written; may be "" when err != nil
	value  string // as written, quotes included when quoted
	quoted bool
	err    error
}

// unquote returns the value with quoting and escapes removed. It allocates
// only when the value has escapes.
func (p *fwdPair) unquote() string {
	if !p.quoted {
		return p.value
	}
	v := p.value[1 : len(p.value)-1]
	if strings.IndexByte(v, '\\') < 0 {
		return v
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b = append(b, v[i])
	}
	return string(b)
}

// scanForwarded calls fn for every pair of a Forwarded value, in order, until
// fn returns false. Malformed pairs are reported with err set, and scanning
// resumes at the next ';' or ',' outside a quoted string.
func scanForwarded(v string, fn func(fwdPair) bool) {
	elem := 0
	i := 0
	for {
		i = skipOWS(v, i)
		if i >= len(v) {
			return
		}
		switch v[i] {
		case ',':
			elem++
			i++
			continue
		case ';':
			i++
			continue
		}
		start := i
		for i < len(v) && isTchar(v[i]) {
			i++
		}
		p := fwdPair{elem: elem, name: v[start:i]}
		if p.name == "" || i >= len(v) || v[i] != '=' {
			p.err = errFwdPair
			i = skipToDelim(v, i)
			if !fn(p) {
				return
			}
			continue
		}
		i++ // '='
		if i < len(v) && v[i] == '"' {
			end, ok := scanQuoted(v, i)
			if !ok {
				p.err = errFwdQuote
				if end < 0 {
					fn(p)
					return // unterminated: the rest of v is inside the quotes
				}
			}
			p.value, p.quoted = v[i:end], true
			i = end
		} else {
			vs := i
			for i < len(v) && isValueChar(v[i]) {
				i++
			}
			p.value = v[vs:i]
			if p.value == "" {
				p.err = errFwdValue
			}
		}
		if k := skipOWS(v, i); k < len(v) && v[k] != ',' && v[k] != ';' {
			if p.err == nil {
				p.err = errFwdValue
			}
			i = skipToDelim(v, k)
		} else {
			i = k
		}
		if !fn(p) {
			return
		}
	}
}

// scanQuoted scans the quoted string starting at v[i] == '"'. It returns the
// index just past the closing quote and whether every character was valid, or
// -1 when the string is not terminated.
func scanQuoted(v string, i int) (int, bool) {
	ok := true
	for i++; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			return i + 1, ok
		case c == '\\':
			i++
			if i >= len(v) {
				return -1, false
			}
			if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
				ok = false
			}
		case c < 0x20 && c != '\t' || c == 0x7f:
			ok = false
		}
	}
	return -1, false
}

// skipToDelim returns the index of the next ',' or ';' outside a quoted
// string, or len(v).
func skipToDelim(v string, i int) int {
	for i < len(v) {
		switch v[i] {
		case ',', ';':
			return i
		case '"':
			end, _ := scanQuoted(v, i)
			if end < 0 {
				return len(v)
			}
			i = end
		default:
			i++
		}
	}
	return i
}

func skipOWS(v string, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	return i
}

// isTchar reports whether c is an RFC 9110 token character.
func isTchar(c byte) bool {
	if isDigit(c) || isAlpha(c) {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isValueChar reports whether c may appear in an unquoted value: a token
// character, or ':', '[' or ']' from senders that forget to quote nodes.
func isValueChar(c byte) bool {
	return isTchar(c) || c == ':' || c == '[' || c == ']'
}

func isToken[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

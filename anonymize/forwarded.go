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

var (
	errFwdPair      = &detailError{"malformed Forwarded parameter (want name=value, name a token)", ErrForwarded}
	errFwdValue     = &detailError{"malformed Forwarded value (want a token or a quoted string, then ; or ,)", ErrForwarded}
	errFwdQuote     = &detailError{"unterminated or invalid quoted string in Forwarded value", ErrForwarded}
	errFwdDuplicate = &detailError{"parameter repeated within one Forwarded element", ErrForwarded}
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
// ';'. Empty elements are skipped; an element with only extension parameters
// is kept, with every field empty, so that hops can still be counted. A
// parameter given twice in one element, or any syntax error, fails the whole
// header with an error matching [ErrForwarded]: a caller deciding which hop
// to trust should then not trust the header at all.
func ParseForwarded(v string) ([]ForwardedElement, error) {
	var (
		out     []ForwardedElement
		cur     ForwardedElement
		seen    uint8
		curElem = -1
	)
	sc := fwdScanner{v: v}
	for {
		p, ok := sc.next()
		if !ok || p.elem != curElem {
			if seen != 0 {
				out = append(out, cur)
			}
			cur, seen, curElem = ForwardedElement{}, 0, p.elem
		}
		if !ok {
			return out, nil
		}
		if p.err != nil {
			return nil, fmt.Errorf("%w (element %d)", p.err, len(out)+1)
		}
		var bit uint8
		var dst *string
		switch canonicalParam(p.name) {
		case "for":
			bit, dst = 1, &cur.For
		case "by":
			bit, dst = 2, &cur.By
		case "host":
			bit, dst = 4, &cur.Host
		case "proto":
			bit, dst = 8, &cur.Proto
		default:
			seen |= 16 // extension: syntax-checked, then ignored
			continue
		}
		if seen&bit != 0 {
			return nil, fmt.Errorf("%w (element %d)", errFwdDuplicate, len(out)+1)
		}
		seen |= bit
		*dst = p.unquote()
	}
}

// canonicalParam returns the lower-case name of a parameter this package
// knows, or "".
func canonicalParam(name string) string {
	for _, n := range [...]string{"for", "by", "host", "proto"} {
		if strings.EqualFold(name, n) {
			return n
		}
	}
	return ""
}

// MaskForwarded masks an RFC 7239 Forwarded header value:
//
//   - for= and by= values are masked like [Masker.String], with any port
//     dropped; "unknown" is kept; an obfuscated identifier becomes
//     [HiddenNode]; a value that does not parse, or is malformed, becomes
//     [Placeholder];
//   - host= and proto= are kept, re-quoted as needed; malformed ones are
//     dropped;
//   - extension parameters, pairs without a valid name, and repeats of a
//     parameter already seen in the element are dropped: they are free text
//     (or ambiguous) and might hold an address;
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
	var buf [256]byte
	out := buf[:0]
	curElem := -1
	var seen uint8   // parameters written in the current element
	anyElem := false // an element has been written
	sc := fwdScanner{v: v}
	for {
		p, ok := sc.next()
		if !ok {
			break
		}
		if p.elem != curElem {
			curElem, seen = p.elem, 0
		}
		name := canonicalParam(p.name)
		var bit uint8
		switch name {
		case "for":
			bit = 1
		case "by":
			bit = 2
		case "host", "proto":
			if p.err != nil {
				continue
			}
			bit = 4
			if name == "proto" {
				bit = 8
			}
		default:
			continue
		}
		if seen&bit != 0 {
			continue
		}
		if seen == 0 {
			if anyElem {
				out = append(out, ", "...)
			}
			anyElem = true
		} else {
			out = append(out, ';')
		}
		seen |= bit
		out = append(out, name...)
		out = append(out, '=')
		if bit >= 4 {
			out = appendValue(out, p.unquote())
			continue
		}
		out = m.appendNode(out, p)
	}
	return string(out)
}

// appendNode appends the masked form of a for= or by= value.
func (m Masker) appendNode(out []byte, p fwdPair) []byte {
	if p.err != nil {
		return append(out, Placeholder...)
	}
	val := p.unquote()
	switch nodeKind(val) {
	case nodeUnknown:
		return append(out, "unknown"...)
	case nodeObfuscated:
		return append(out, HiddenNode...)
	}
	a, err := parseHostPort(stripObfPort(val), false)
	if err != nil {
		return append(out, Placeholder...)
	}
	// Masked text is never a token: it holds '/' and, for IPv6, ':'.
	out = append(out, '"')
	out = m.AppendTo(out, a)
	return append(out, '"')
}

// appendValue appends v as an RFC 7239 value: a token as is, anything else as
// a quoted string.
func appendValue(out []byte, v string) []byte {
	if isToken(v) {
		return append(out, v...)
	}
	out = append(out, '"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, v[i])
	}
	return append(out, '"')
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

// fwdScanner walks the pairs of a Forwarded value, in order. Malformed pairs
// are reported with err set, and scanning resumes at the next ';' or ','
// outside a quoted string.
type fwdScanner struct {
	v    string
	i    int
	elem int
}

// next returns the next pair, or false at the end of the value.
func (sc *fwdScanner) next() (fwdPair, bool) {
	v, i := sc.v, sc.i
	for {
		i = skipOWS(v, i)
		if i >= len(v) {
			sc.i = i
			return fwdPair{elem: sc.elem + 1}, false
		}
		switch v[i] {
		case ',':
			sc.elem++
			i++
			continue
		case ';':
			i++
			continue
		}
		break
	}
	start := i
	for i < len(v) && isTchar(v[i]) {
		i++
	}
	p := fwdPair{elem: sc.elem, name: v[start:i]}
	if p.name == "" || i >= len(v) || v[i] != '=' {
		p.err = errFwdPair
		sc.i = skipToDelim(v, i)
		return p, true
	}
	i++ // '='
	if i < len(v) && v[i] == '"' {
		end, ok := scanQuoted(v, i)
		if end < 0 {
			// Unterminated: the rest of v is inside the quotes.
			p.err = errFwdQuote
			sc.i = len(v)
			return p, true
		}
		if !ok {
			p.err = errFwdQuote
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
	sc.i = i
	return p, true
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

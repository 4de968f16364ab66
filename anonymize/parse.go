package anonymize

import (
	"net/netip"
	"strings"
)

// ParseIP parses a bare IP address taken from a request header.
//
// It accepts dotted-decimal IPv4 (four octets 0-255, no leading zeros, no
// octal, hexadecimal or shortened forms) and RFC 4291 IPv6, and returns
// IPv4-mapped IPv6 addresses unmapped (::ffff:192.0.2.1 gives 192.0.2.1).
// It rejects the empty string ([ErrEmpty]), zones such as fe80::1%eth0
// ([ErrZone]) and anything else ([ErrSyntax]), including surrounding white
// space, which it does not trim. Errors never contain s.
//
// ParseIP does not allocate.
func ParseIP(s string) (netip.Addr, error) {
	return parseAddr(s, false)
}

// ParseHostPort parses an address that may carry a port, as found in an
// X-Forwarded-For element or an RFC 7239 for= value after unquoting. It
// accepts
//
//	192.0.2.1   192.0.2.1:8080   2001:db8::1   [2001:db8::1]   [2001:db8::1]:8080
//
// A port, when present, must be 1 to 5 decimal digits with a value of at most
// 65535 ([ErrPort]); it is checked and discarded. Only IPv6 addresses may be
// bracketed. Zones are rejected ([ErrZone]) and IPv4-mapped addresses are
// returned unmapped, as by [ParseIP]. Errors never contain s.
//
// ParseHostPort does not allocate.
func ParseHostPort(s string) (netip.Addr, error) {
	return parseHostPort(s, false)
}

// ParsePeer parses Envoy's source.address property, the effective client
// address Envoy computed: 192.0.2.1:5678 or [2001:db8::1]:443, with port 0
// when Envoy took the address from X-Forwarded-For. It accepts the same forms
// as [ParseHostPort], but drops a zone instead of rejecting it: a zone here
// came from the kernel, not from the client. (A zone that is empty or holds
// spaces, control characters, '%' or brackets is still rejected, as
// [ErrSyntax].) IPv4-mapped addresses are returned unmapped. A pipe or other
// non-IP address gives [ErrSyntax].
//
// ParsePeer does not allocate.
func ParsePeer(s string) (netip.Addr, error) {
	return parseHostPort(s, true)
}

// ParseNode parses the value of an RFC 7239 Forwarded for= or by= parameter,
// after unquoting: the forms of [ParseHostPort], where the port may also be
// an obfuscated port such as _a1 (RFC 7239 section 6.3). It returns
// [ErrUnknown] for the node "unknown" and [ErrObfuscated] for an obfuscated
// node identifier such as _hidden, so that a caller can tell these from
// malformed values ([ErrSyntax], [ErrZone], [ErrPort]). Errors never contain
// s.
func ParseNode(s string) (netip.Addr, error) {
	switch nodeKind(s) {
	case nodeUnknown:
		return netip.Addr{}, ErrUnknown
	case nodeObfuscated:
		return netip.Addr{}, ErrObfuscated
	}
	return parseHostPort(stripObfPort(s), false)
}

const (
	nodeAddr = iota
	nodeUnknown
	nodeObfuscated
)

// nodeKind classifies an RFC 7239 node by its name part.
func nodeKind(s string) int {
	name := s
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		name = s[:i]
	}
	switch {
	case strings.EqualFold(name, "unknown"):
		return nodeUnknown
	case len(name) > 0 && name[0] == '_':
		return nodeObfuscated
	}
	return nodeAddr
}

// stripObfPort removes an RFC 7239 obfuscated port (":_xyz") from a node.
func stripObfPort(s string) string {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || i+1 >= len(s) || s[i+1] != '_' {
		return s
	}
	if s[0] != '[' && strings.IndexByte(s[:i], ':') >= 0 {
		return s // unbracketed IPv6: the colon is part of the address
	}
	if s[0] == '[' && s[i-1] != ']' {
		return s
	}
	if !isObfuscated(s[i+1:]) {
		return s
	}
	return s[:i]
}

// isObfuscated reports whether s is an RFC 7239 obfnode or obfport:
// "_" 1*( ALPHA / DIGIT / "." / "_" / "-" ).
func isObfuscated(s string) bool {
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(isAlpha(c) || isDigit(c) || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func parseHostPort(s string, dropZone bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, ErrEmpty
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, errBrackets
		}
		host, rest := s[1:end], s[end+1:]
		if strings.IndexByte(host, ':') < 0 {
			// Empty, or an IPv4 address in brackets: not a URI IP-literal.
			if host == "" {
				return netip.Addr{}, ErrEmpty
			}
			return netip.Addr{}, errBrackets
		}
		a, err := parseAddr(host, dropZone)
		if err != nil {
			return netip.Addr{}, err
		}
		if rest != "" {
			if rest[0] != ':' {
				if strings.IndexByte(rest, ']') >= 0 || strings.IndexByte(rest, '[') >= 0 {
					return netip.Addr{}, errBrackets
				}
				return netip.Addr{}, errHostPort
			}
			if !validPort(rest[1:]) {
				return netip.Addr{}, ErrPort
			}
		}
		return a, nil
	}
	if strings.IndexByte(s, ']') >= 0 || strings.IndexByte(s, '[') >= 0 {
		return netip.Addr{}, errBrackets
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		// Exactly one colon: IPv4 address and port.
		host, port := s[:i], s[i+1:]
		if host == "" {
			return netip.Addr{}, ErrEmpty
		}
		a, err := parseAddr(host, dropZone)
		if err != nil {
			return netip.Addr{}, err
		}
		if !validPort(port) {
			return netip.Addr{}, ErrPort
		}
		return a, nil
	}
	return parseAddr(s, dropZone)
}

// parseAddr parses a bare address, rejecting or dropping a zone.
func parseAddr(s string, dropZone bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, ErrEmpty
	}
	if i := strings.IndexByte(s, '%'); i >= 0 {
		// Parse only what precedes the zone: the zone itself is never
		// looked at, interned or copied.
		a, err := netip.ParseAddr(s[:i])
		if err != nil || !a.Is6() {
			return netip.Addr{}, syntaxErrorFor(s[:i])
		}
		if !dropZone {
			return netip.Addr{}, ErrZone
		}
		if !validZone(s[i+1:]) {
			return netip.Addr{}, errZoneSyntax
		}
		return a.Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, syntaxErrorFor(s)
	}
	return a.Unmap(), nil
}

// validZone reports whether a zone that is about to be dropped at least looks
// like one: non-empty printable ASCII without spaces, '%' or brackets.
func validZone(z string) bool {
	if z == "" {
		return false
	}
	for i := 0; i < len(z); i++ {
		c := z[i]
		if c <= ' ' || c >= 0x7f || c == '%' || c == '[' || c == ']' {
			return false
		}
	}
	return true
}

// syntaxErrorFor picks the most helpful fixed error for text that failed to
// parse, without keeping any of it.
func syntaxErrorFor(s string) error {
	if s == "" {
		return ErrEmpty
	}
	if strings.IndexByte(s, ':') >= 0 {
		return errIPv6Syntax
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || c == '.' || c == 'x' || c == 'X' || isHex(c)) {
			return ErrSyntax
		}
	}
	return errIPv4Syntax
}

// validPort reports whether s is 1 to 5 decimal digits with a value of at most
// 65535.
func validPort(s string) bool {
	if len(s) == 0 || len(s) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }
func isHex(c byte) bool   { return isDigit(c) || ('a' <= c|0x20 && c|0x20 <= 'f') }

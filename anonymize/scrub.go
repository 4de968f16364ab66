package anonymize

import "net/netip"

// ScrubText returns line with every IPv4 and IPv6 address it contains replaced
// by replace(addr), where addr is unmapped (::ffff:192.0.2.1 is passed as
// 192.0.2.1) and has no zone. replace is typically [Masker.String] or
// [Pseudonymizer.Pseudonym]. It is meant for log lines: common and combined
// log format, JSON lines, Envoy's default access-log format, key=value logs.
//
// It finds dotted-decimal IPv4 (leading zeros tolerated: 192.168.001.010 is
// found too), compressed and expanded IPv6, IPv6 with an embedded IPv4
// (::ffff:192.0.2.1), addresses followed by a port (192.0.2.1:5678) and
// bracketed IPv6 with or without a port ([2001:db8::1]:443).
//
// Ports are dropped together with the address, because a source port next to
// a masked address and a time is what carrier-grade NAT logs need to name a
// subscriber; brackets and quotes around the address are kept. With
// [DefaultMasker.String]:
//
//	peer=192.0.2.1:5678             → peer=192.0.2.0/24
//	"client":"[2001:db8::1]:443"    → "client":"[2001:db8::/64]"
//	for="[2001:db8::1]"             → for="[2001:db8::/64]"
//
// An unbracketed IPv6 address followed by :port is ambiguous (2001:db8::1:443
// is itself a valid address) and is replaced whole.
//
// Text that only looks similar is left alone: times (10:32:45, and the
// 10/Oct/2000:13:55:36 of common log format), three-part versions (1.2.3),
// numbers with more than four dotted parts (1.2.3.4.5), MAC addresses and
// fingerprints written as colon-separated hex pairs, "::" alone (the
// unspecified address, which no client has), and "::" glued to words as in
// std::string or Class::method. Text that is a valid address is replaced even
// when it was meant otherwise: a four-part version such as 1.2.3.4, or a
// standalone a::b. Percent-encoded addresses (2001%3Adb8%3A%3A1) are not
// found.
//
// ScrubText returns line itself, without allocating, when it finds nothing.
func ScrubText(line string, replace func(netip.Addr) string) string {
	var out []byte
	var ms []scrubMatch
	copied := 0
	i := 0
	for i < len(line) {
		if !isRunChar(line[i]) {
			i++
			continue
		}
		j := i
		for j < len(line) && isRunChar(line[j]) {
			j++
		}
		next := j
		if hexPairs(line[i:j]) {
			i = next
			continue
		}
		ms = scanRun(line, i, j, i, j, ms[:0])
		for _, m := range ms {
			if out == nil {
				out = make([]byte, 0, len(line)+16)
			}
			out = append(out, line[copied:m.start]...)
			out = append(out, replace(m.addr)...)
			end := m.end
			if m.portEnd > 0 {
				end = m.portEnd
			} else if end == j && m.start > 0 && line[m.start-1] == '[' &&
				j+1 < len(line) && line[j] == ']' && line[j+1] == ':' {
				if pe := portEnd(line, j+2); pe > 0 {
					out = append(out, ']')
					end = pe
					next = pe
				}
			}
			copied = end
		}
		i = next
	}
	if out == nil {
		return line
	}
	return string(append(out, line[copied:]...))
}

type scrubMatch struct {
	start, end int
	addr       netip.Addr
	v4tail     bool // the text ends in a dotted quad, so a following ":digits" is a port
	portEnd    int  // when > 0, a port follows and ends here
}

// scanRun appends to ms the addresses found in line[lo:hi], a part of the run
// line[i:j] of characters that can make up an address, in order and without
// overlap. Where a match is overlapped by a later one that reaches further,
// the later one wins, so that no tail of a longer address is left behind, and
// what precedes it is scanned again on its own.
func scanRun(line string, i, j, lo, hi int, ms []scrubMatch) []scrubMatch {
	k := lo
	for k < hi {
		m, ok := firstMatch(line, i, j, k, hi)
		if !ok {
			break
		}
		first := m
		for t := first.start + 1; t < first.end; t++ {
			if m2, ok := matchAt(line, i, j, t, hi); ok && m2.end > m.end {
				m = m2
			}
		}
		if m.start != first.start {
			// Nothing starting before first.start matched with the end at
			// hi; with the end at m.start, only a match ending exactly
			// there is new, and it starts at most maxV6Text earlier.
			ms = scanRun(line, i, j, max(k, m.start-maxV6Text), m.start, ms)
		}
		if m.v4tail && m.end < hi && line[m.end] == ':' {
			if pe := portEnd(line, m.end+1); pe > 0 && pe <= hi {
				m.portEnd = pe
			}
		}
		ms = append(ms, m)
		k = max(m.end, m.portEnd)
	}
	return ms
}

// firstMatch returns the match in line[k:hi] with the smallest start.
func firstMatch(line string, i, j, k, hi int) (scrubMatch, bool) {
	for s := k; s < hi; s++ {
		if m, ok := matchAt(line, i, j, s, hi); ok {
			return m, true
		}
	}
	return scrubMatch{}, false
}

// matchAt returns the longest address starting at s and ending by hi, in the
// run line[i:j].
func matchAt(line string, i, j, s, hi int) (scrubMatch, bool) {
	var best scrubMatch
	found := false
	if s == i || line[s-1] == ':' {
		if m, ok := matchV6(line, i, j, s, hi); ok {
			best, found = m, true
		}
	}
	if isDigit(line[s]) && (s == i || !isDigit(line[s-1]) && line[s-1] != '.') {
		if m, ok := matchV4(line, j, s, hi); ok && (!found || m.end > best.end) {
			best, found = m, true
		}
	}
	return best, found
}

// maxV6Text is the length of the longest IPv6 text form,
// ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255.
const maxV6Text = 45

func matchV6(line string, i, j, s, hi int) (scrubMatch, bool) {
	// "::" glued to a word (std::string, Class::method) is not an address.
	if s == i && i > 0 && isWordChar(line[i-1]) {
		return scrubMatch{}, false
	}
	// An address has at most 8 colons (1:2:3:4:5:6:7:: or ::2:3:4:5:6:7:8),
	// so no candidate reaches past a ninth.
	limit, colons := s, 0
	for limit < min(hi, s+maxV6Text) {
		if line[limit] == ':' {
			if colons == 8 {
				break
			}
			colons++
		}
		limit++
	}
	for e := limit; e >= s+2; e-- {
		if e < hi && line[e] != ':' && line[e] != '.' {
			continue // would cut a group or an octet in two
		}
		if e == j && j < len(line) && isWordChar(line[j]) {
			continue
		}
		text := line[s:e]
		if countColons(text) < 2 || text == "::" {
			continue
		}
		a, err := netip.ParseAddr(text)
		if err != nil {
			continue
		}
		v4tail := false
		for p := len(text) - 1; p >= 0 && text[p] != ':'; p-- {
			if text[p] == '.' {
				v4tail = true
			}
		}
		return scrubMatch{start: s, end: e, addr: a.Unmap(), v4tail: v4tail}, true
	}
	return scrubMatch{}, false
}

// matchV4 matches four decimal octets of 1 to 3 digits, each at most 255,
// ending by hi and not followed by another digit or by ".digit".
func matchV4(line string, j, s, hi int) (scrubMatch, bool) {
	var b [4]byte
	p := s
	for n := range 4 {
		if n > 0 {
			if p >= hi || line[p] != '.' {
				return scrubMatch{}, false
			}
			p++
		}
		v, d := 0, 0
		for p < hi && d < 3 && isDigit(line[p]) {
			v = v*10 + int(line[p]-'0')
			p++
			d++
		}
		if d == 0 || v > 255 {
			return scrubMatch{}, false
		}
		b[n] = byte(v)
	}
	if p < j && (isDigit(line[p]) || line[p] == '.' && p+1 < j && isDigit(line[p+1])) {
		return scrubMatch{}, false
	}
	return scrubMatch{start: s, end: p, addr: netip.AddrFrom4(b), v4tail: true}, true
}

// portEnd returns the index after a port of 1 to 5 digits (at most 65535)
// starting at line[p], or 0 when there is none. The port must not run on into
// more hexadecimal digits, colons, or ".digit".
func portEnd(line string, p int) int {
	e := p
	for e < len(line) && e-p < 6 && isDigit(line[e]) {
		e++
	}
	if !validPort(line[p:e]) {
		return 0
	}
	if e < len(line) {
		c := line[e]
		if isHex(c) || c == ':' || c == '.' && e+1 < len(line) && isDigit(line[e+1]) {
			return 0
		}
	}
	return e
}

// hexPairs reports whether run is a colon-separated list of at least six
// two-digit hexadecimal groups, such as a MAC address, an EUI-64 or a
// certificate fingerprint. An IPv6 address written that way would lie in the
// reserved ::/8 block, so such runs are not searched for addresses.
func hexPairs(run string) bool {
	if len(run) < 17 || (len(run)+1)%3 != 0 {
		return false
	}
	for k := 0; k < len(run); k++ {
		if k%3 == 2 {
			if run[k] != ':' {
				return false
			}
		} else if !isHex(run[k]) {
			return false
		}
	}
	return true
}

// isRunChar reports whether c can be part of an address's text.
func isRunChar(c byte) bool { return isHex(c) || c == ':' || c == '.' }

func isWordChar(c byte) bool { return isAlpha(c) || isDigit(c) || c == '_' }

func countColons(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			n++
		}
	}
	return n
}

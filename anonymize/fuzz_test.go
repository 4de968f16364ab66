package anonymize

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// fixedMessages holds every error text the parsers may return: errors are
// fixed values and never carry input.
var fixedMessages = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range []error{
		ErrEmpty, ErrSyntax, ErrZone, ErrPort, ErrUnknown, ErrObfuscated,
		errIPv4Syntax, errIPv6Syntax, errBrackets, errHostPort, errZoneSyntax,
	} {
		m[e.Error()] = true
	}
	return m
}()

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1", "192.0.2.1:80", "[2001:db8::1]:443", "::ffff:192.0.2.1", "fe80::1%eth0",
		"[fe80::1%eth0]:80", "01.2.3.4", "0x7f.1", "unknown", "_hidden:_p", "[192.0.2.1]", "",
		"192.0.2.43:_p", "2001:db8::1:443", "[::1]:", "1.2.3.4%x:80",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parsers := []struct {
			name string
			f    func(string) (netip.Addr, error)
		}{{"ParseIP", ParseIP}, {"ParseHostPort", ParseHostPort}, {"ParsePeer", ParsePeer}, {"ParseNode", ParseNode}}
		var res [4]netip.Addr
		var errs [4]error
		for i, p := range parsers {
			a, err := p.f(s)
			res[i], errs[i] = a, err
			if err != nil {
				if !fixedMessages[err.Error()] {
					t.Fatalf("%s(%q): error %q is not a fixed message", p.name, s, err)
				}
				if a.IsValid() {
					t.Fatalf("%s(%q) returned %v with an error", p.name, s, a)
				}
				continue
			}
			if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
				t.Fatalf("%s(%q) = %v: invalid, mapped or zoned", p.name, s, a)
			}
			if p.name != "ParsePeer" && strings.ContainsRune(s, '%') {
				t.Fatalf("%s(%q) accepted a zone", p.name, s)
			}
			if strings.ContainsAny(s, " \t\r\n") {
				t.Fatalf("%s(%q) accepted white space", p.name, s)
			}
		}
		if errs[0] == nil {
			want, err := netip.ParseAddr(s)
			if err != nil || want.Unmap() != res[0] {
				t.Fatalf("ParseIP(%q) = %v, netip says %v, %v", s, res[0], want, err)
			}
			if errs[1] != nil || res[1] != res[0] {
				t.Fatalf("ParseIP(%q) = %v but ParseHostPort = %v, %v", s, res[0], res[1], errs[1])
			}
		}
		if errs[1] == nil {
			if errs[2] != nil || res[2] != res[1] {
				t.Fatalf("ParseHostPort(%q) = %v but ParsePeer = %v, %v", s, res[1], res[2], errs[2])
			}
			if errs[3] != nil || res[3] != res[1] {
				t.Fatalf("ParseHostPort(%q) = %v but ParseNode = %v, %v", s, res[1], res[3], errs[3])
			}
		}
	})
}

// FuzzMask checks that masking never keeps host bits: the masked network
// holds the address, its address has every bit past the prefix length zero,
// the length never exceeds the Masker's, an embedded IPv4 address keeps at
// most V4Bits, and the text of the whole input never shows unless the input
// had no host bits to begin with.
func FuzzMask(f *testing.F) {
	for _, s := range []string{
		"203.0.113.7", "::ffff:192.0.2.1", "::192.0.2.1", "2001:db8:1:2:3:4:5:6", "2002:c000:201::1",
		"2001:0:4136:e378:8000:63bf:3fff:fdd2", "64:ff9b::c000:201", "64:ff9b:1:c000:2:100::",
		"::ffff:0:c000:201", "2001:db8::5efe:c000:201", "::", "::1", "::2",
	} {
		b := netip.MustParseAddr(s).AsSlice()
		f.Add(b, uint8(24), uint8(64))
		f.Add(b, uint8(32), uint8(128))
		f.Add(b, uint8(16), uint8(48))
	}
	f.Fuzz(func(t *testing.T, b []byte, v4, v6 uint8) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		m := Masker{V4Bits: int(v4) % 33, V6Bits: int(v6) % 129}
		p := m.Prefix(a)
		s := m.String(a)
		if !p.IsValid() || s != p.String() {
			t.Fatalf("%v: Prefix %v, String %q", a, p, s)
		}
		if p.Masked() != p {
			t.Fatalf("%v: %v keeps host bits", a, p)
		}
		u := a.Unmap()
		b16 := u.As16()
		v4c, compat := ipv4Compatible(&b16)
		switch {
		case u.Is4():
			if want := netip.PrefixFrom(u, m.V4Bits).Masked(); p != want {
				t.Fatalf("%v: %v, want %v", a, p, want)
			}
		case compat:
			if want := netip.PrefixFrom(v4c, m.V4Bits).Masked(); p != want {
				t.Fatalf("%v (IPv4-compatible): %v, want %v", a, p, want)
			}
		default:
			if !p.Contains(u) || p.Bits() > m.V6Bits {
				t.Fatalf("%v: %v does not contain it or is longer than /%d", a, p, m.V6Bits)
			}
			if off := embeddedIPv4Offset(&b16); off >= 0 && p.Bits() > off+m.V4Bits {
				t.Fatalf("%v: %v keeps more than %d bits of the IPv4 at offset %d", a, p, m.V4Bits, off)
			}
		}
		hostBits := p.Addr() != u
		if hostBits {
			for _, form := range []string{u.String(), u.StringExpanded(), a.String()} {
				if strings.Contains(s, form) {
					t.Fatalf("masked %q shows the input %q", s, form)
				}
			}
		}
	})
}

func FuzzMaskXFF(f *testing.F) {
	for _, s := range []string{
		"203.0.113.7, 198.51.100.23", "[2001:db8::1]:443,unknown,,junk", " 192.0.2.1:80 ,\t::ffff:192.0.2.1",
		"1.2.3.4, 11.2.3.40", "fe80::1%eth0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		out := DefaultMasker.MaskXFF(v)
		in := SplitXFF(v)
		var outElems []string
		if out != "" {
			outElems = strings.Split(out, ", ")
		}
		if len(outElems) != len(in) {
			t.Fatalf("MaskXFF(%q) = %q: %d elements for %d", v, out, len(outElems), len(in))
		}
		for i, e := range outElems {
			switch e {
			case "unknown", Placeholder:
				continue
			}
			p, err := netip.ParsePrefix(e)
			if err != nil || p.Masked() != p || (p.Addr().Is4() && p.Bits() != 24) || (p.Addr().Is6() && p.Bits() > 64) {
				t.Fatalf("MaskXFF(%q): element %q is not a masked network", v, e)
			}
			a, err := ParseHostPort(in[i])
			if err != nil {
				t.Fatalf("MaskXFF(%q): %q masked to %q but does not parse", v, in[i], e)
			}
			if DefaultMasker.Prefix(a) != p {
				t.Fatalf("MaskXFF(%q): element %d is %q, want %v", v, i, e, DefaultMasker.Prefix(a))
			}
			if p.Addr() != a && strings.Contains(e, a.String()) {
				t.Fatalf("MaskXFF(%q): element %q shows %v", v, e, a)
			}
		}
	})
}

func FuzzForwarded(f *testing.F) {
	for _, s := range []string{
		`for=192.0.2.60;proto=http;by=203.0.113.43`, `for="[2001:db8:cafe::17]:4711"`,
		`For="_gazonk", for=unknown;host="a\"b"`, `for="192.0.2.1`, `for=192.0.2.1;for=x, ,;ext="1,2"`,
		`for=[2001:db8::1]:80;by="192.0.2.43:_p"`, `host="x\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if _, err := ParseForwarded(v); err != nil {
			if !errors.Is(err, ErrForwarded) {
				t.Fatalf("ParseForwarded(%q): error %v does not match ErrForwarded", v, err)
			}
			msg := err.Error()
			if i := strings.LastIndex(msg, " (element "); i < 0 || !fixedForwardedMessage(msg[:i]) {
				t.Fatalf("ParseForwarded(%q): unexpected error text %q", v, msg)
			}
		}
		out := DefaultMasker.MaskForwarded(v)
		if out == "" {
			return
		}
		elems, err := ParseForwarded(out)
		if err != nil {
			t.Fatalf("MaskForwarded(%q) = %q, not valid RFC 7239: %v", v, out, err)
		}
		for _, e := range elems {
			for _, node := range []string{e.For, e.By} {
				switch node {
				case "", "unknown", HiddenNode, Placeholder:
					continue
				}
				p, err := netip.ParsePrefix(node)
				if err != nil || p.Masked() != p {
					t.Fatalf("MaskForwarded(%q) = %q: node %q is not a masked network", v, out, node)
				}
			}
		}
		if again := DefaultMasker.MaskForwarded(out); again != out {
			// Masking twice changes networks into Placeholder, but must
			// keep the structure: same number of elements.
			e2, err := ParseForwarded(again)
			if err != nil || len(e2) != len(elems) {
				t.Fatalf("MaskForwarded is not stable on %q: %q", out, again)
			}
		}
	})
}

func fixedForwardedMessage(s string) bool {
	for _, e := range []error{errFwdPair, errFwdValue, errFwdQuote, errFwdDuplicate} {
		if e.Error() == s {
			return true
		}
	}
	return false
}

// FuzzScrub checks that scrubbing is a fixed point (a scrubbed line has
// nothing left to scrub) and that replace is only ever given valid,
// unmapped, zone-less addresses.
func FuzzScrub(f *testing.F) {
	for _, s := range []string{
		`203.0.113.7 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5`,
		`{"client":"[2001:db8:1::7]:51234","peer":"203.0.113.7:4711","xff":"::ffff:198.51.100.23"}`,
		`[2026-12-03T10:32:45.123Z] "GET / HTTP/1.1" 200 - 0 17 3 2 "203.0.113.7,10.0.0.1" "10.0.0.5:8080"`,
		"c:2001:db8:1:2:3:4:5:6", "1:2:3:4:5:6:7:8:9:a", "1.2.3.4.5 ::ffff:1.2.3.4:80 [::1]:0",
		"std::string e::f 00:1a:2b:3c:4d:5e", "1.2.3.4cafe::1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		out := ScrubText(line, func(a netip.Addr) string {
			if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
				t.Fatalf("ScrubText(%q) passed %v to replace", line, a)
			}
			return "X"
		})
		again := ScrubText(out, func(a netip.Addr) string {
			t.Fatalf("ScrubText(%q) = %q, which still holds %v", line, out, a)
			return ""
		})
		if again != out {
			t.Fatalf("second pass changed %q to %q", out, again)
		}
	})
}

// FuzzScrubPlanted plants an address, in one of its textual forms, between
// two arbitrary strings, and checks that it does not survive scrubbing.
func FuzzScrubPlanted(f *testing.F) {
	f.Add("GET /", "HTTP/1.1", []byte{203, 0, 113, 7}, uint8(0), uint16(4711))
	f.Add(`{"a":`, `}`, netip.MustParseAddr("2001:db8::1").AsSlice(), uint8(3), uint16(443))
	f.Add("x", "y", netip.MustParseAddr("2001:db8:1:2:3:4:5:6").AsSlice(), uint8(4), uint16(0))
	f.Fuzz(func(t *testing.T, prefix, suffix string, b []byte, form uint8, port uint16) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		a = a.Unmap()
		if a == netip.IPv6Unspecified() {
			return // "::" alone is not an address anyone has; left alone
		}
		var texts []string
		if a.Is4() {
			mapped := "::ffff:" + a.String()
			texts = []string{a.String(), a.String() + ":" + strconv.Itoa(int(port)), mapped, "[" + mapped + "]:" + strconv.Itoa(int(port))}
		} else {
			texts = []string{a.String(), a.StringExpanded(), strings.ToUpper(a.String()), "[" + a.String() + "]:" + strconv.Itoa(int(port)), "[" + a.String() + "]"}
		}
		text := texts[int(form)%len(texts)]
		if hexPairs(a.String()) && !strings.Contains(text, a.StringExpanded()) {
			// 12:34:56:78:9a:bc:de:f0 reads as an EUI-64 and lies in the
			// reserved ::/8, where no client address can be: left alone.
			return
		}
		wants := []string{a.String()}
		if a.Is6() {
			wants = append(wants, a.StringExpanded())
		}
		for _, w := range wants {
			if strings.Contains(prefix, w) || strings.Contains(suffix, w) {
				return
			}
		}
		seps := []string{" ", `"`, "=", ",", "(", ")", "'", "<", ">", "\t", "|"}
		sep1, sep2 := seps[len(prefix)%len(seps)], seps[len(suffix)%len(seps)]
		line := prefix + sep1 + text + sep2 + suffix
		found := false
		out := ScrubText(line, func(x netip.Addr) string {
			if x == a {
				found = true
			}
			return "X"
		})
		if !found {
			t.Fatalf("ScrubText(%q) did not find %v", line, a)
		}
		for _, w := range wants {
			if strings.Contains(out, w) {
				t.Fatalf("ScrubText(%q) = %q still shows %s", line, out, w)
			}
		}
	})
}

func FuzzPseudonym(f *testing.F) {
	f.Add([]byte{192, 0, 2, 1})
	f.Add(netip.MustParseAddr("2001:db8::1").AsSlice())
	p, err := NewPseudonymizer("k1", map[string]string{"k1": pfxKeyHex, "k0": detKeyHex})
	if err != nil {
		f.Fatal(err)
	}
	d, err := NewPseudonymizer("k0", map[string]string{"k0": detKeyHex})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		a = a.Unmap()
		for _, ps := range []*Pseudonymizer{p, d} {
			s := ps.Pseudonym(a)
			back, err := p.Reveal(s) // p holds both keys
			if err != nil || back != a {
				t.Fatalf("Reveal(Pseudonym(%v) = %q) = %v, %v", a, s, back, err)
			}
		}
		e, _ := netip.ParseAddr(strings.TrimPrefix(p.Pseudonym(a), "k1:"))
		if e.Is4() != a.Is4() {
			t.Fatalf("ipcrypt-pfx changed the family of %v: %v", a, e)
		}
	})
}

func FuzzOpen(f *testing.F) {
	pub, priv, _ := GenerateKeyPair()
	s, _ := NewSealer("k1", pub)
	o, _ := NewOpener("k1", priv)
	tok, _ := s.Seal(netip.MustParseAddr("192.0.2.1"))
	f.Add(tok)
	f.Add("k1.")
	f.Add("k2." + tok[3:])
	f.Fuzz(func(t *testing.T, token string) {
		a, err := o.Open(token)
		if err == nil {
			// Only the genuine token opens: HPKE is authenticated and
			// the encoding strict.
			if token != tok || a != netip.MustParseAddr("192.0.2.1") {
				t.Fatalf("Open(%q) = %v", token, a)
			}
			return
		}
		if err != ErrToken && err != ErrKeyMismatch {
			t.Fatalf("Open(%q): unexpected error %v", token, err)
		}
	})
}

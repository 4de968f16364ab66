package anonymize

import (
	"net/netip"
	"testing"
)

func TestMaskerString(t *testing.T) {
	full6 := Masker{V4Bits: 24, V6Bits: 128}
	cases := []struct {
		m    Masker
		in   string // "" means the zero Addr
		want string
	}{
		// IPv4.
		{DefaultMasker, "203.0.113.7", "203.0.113.0/24"},
		{DefaultMasker, "203.0.113.0", "203.0.113.0/24"},
		{DefaultMasker, "255.255.255.255", "255.255.255.0/24"},
		{DefaultMasker, "0.0.0.0", "0.0.0.0/24"},
		{StrongMasker, "203.0.113.7", "203.0.0.0/16"},
		{Masker{32, 128}, "203.0.113.7", "203.0.113.7/32"},
		{Masker{0, 0}, "203.0.113.7", "0.0.0.0/0"},
		{Masker{1, 1}, "203.0.113.7", "128.0.0.0/1"},
		{Masker{25, 64}, "203.0.113.200", "203.0.113.128/25"},

		// IPv4-mapped IPv6 is masked as IPv4, never as ::/64.
		{DefaultMasker, "::ffff:192.0.2.1", "192.0.2.0/24"},
		{StrongMasker, "::ffff:192.0.2.1", "192.0.0.0/16"},
		{full6, "::ffff:192.0.2.1", "192.0.2.0/24"},

		// IPv4-compatible (deprecated) is masked as IPv4 too.
		{DefaultMasker, "::192.0.2.1", "192.0.2.0/24"},
		{full6, "::192.0.2.1", "192.0.2.0/24"},
		{DefaultMasker, "::0.0.0.2", "0.0.0.0/24"},
		{DefaultMasker, "::", "::/64"},
		{DefaultMasker, "::1", "::/64"},
		{full6, "::1", "::1/128"},

		// Plain IPv6.
		{DefaultMasker, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{DefaultMasker, "2001:db8:1:2::", "2001:db8:1:2::/64"},
		{StrongMasker, "2001:db8:1:2:3:4:5:6", "2001:db8:1::/48"},
		{Masker{24, 56}, "2001:db8:1:2ff:3:4:5:6", "2001:db8:1:200::/56"},
		{DefaultMasker, "fe80::1%eth0", "fe80::/64"},
		{DefaultMasker, "ff02::1", "ff02::/64"},

		// 6to4 2002:AABB:CCDD::/48 carrying 192.0.2.1: offset 16.
		{DefaultMasker, "2002:c000:201::1", "2002:c000:200::/40"},
		{DefaultMasker, "2002:c000:201:1234:5678:9abc:def0:1", "2002:c000:200::/40"},
		{StrongMasker, "2002:c000:201::1", "2002:c000::/32"},
		{full6, "2002:c000:201::1", "2002:c000:200::/40"},
		{Masker{24, 32}, "2002:c000:201::1", "2002:c000::/32"},

		// Teredo 2001:0:SSSS:SSSS:flags:port:client: server at offset 32,
		// the obfuscated client address and port in the low bits.
		{DefaultMasker, "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136:e300::/56"},
		{StrongMasker, "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136::/48"},
		{full6, "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136:e300::/56"},
		// 2001:db8:: is not Teredo.
		{full6, "2001:db8::1", "2001:db8::1/128"},

		// NAT64 well-known prefix: offset 96.
		{DefaultMasker, "64:ff9b::192.0.2.1", "64:ff9b::/64"},
		{DefaultMasker, "64:ff9b::c000:201", "64:ff9b::/64"},
		{full6, "64:ff9b::192.0.2.1", "64:ff9b::c000:200/120"},
		{Masker{16, 128}, "64:ff9b::192.0.2.1", "64:ff9b::c000:0/112"},

		// NAT64 local-use 64:ff9b:1::/48: assumed at offset 48.
		{DefaultMasker, "64:ff9b:1:c000:2:100::", "64:ff9b:1:c000::/64"},
		// (the u-octet at bits 64-71 means /72 keeps only 16 bits of the IPv4)
		{full6, "64:ff9b:1:c000:2:100::", "64:ff9b:1:c000::/72"},
		{Masker{32, 128}, "64:ff9b:1:c000:2:100::", "64:ff9b:1:c000:2::/80"},
		{StrongMasker, "64:ff9b:1:c000:2:100::", "64:ff9b:1::/48"},
		// 64:ff9b:2:: is neither.
		{full6, "64:ff9b:2::1", "64:ff9b:2::1/128"},

		// SIIT IPv4-translated ::ffff:0:a.b.c.d: offset 96.
		{DefaultMasker, "::ffff:0:192.0.2.1", "::/64"},
		{full6, "::ffff:0:192.0.2.1", "::ffff:0:c000:200/120"},

		// ISATAP interface identifiers: offset 96.
		{DefaultMasker, "2001:db8:1:2:0:5efe:192.0.2.1", "2001:db8:1:2::/64"},
		{full6, "2001:db8:1:2:0:5efe:192.0.2.1", "2001:db8:1:2:0:5efe:c000:200/120"},
		{full6, "2001:db8:1:2:200:5efe:192.0.2.1", "2001:db8:1:2:200:5efe:c000:200/120"},

		// Invalid address, invalid Masker.
		{DefaultMasker, "", Placeholder},
		{Masker{33, 64}, "192.0.2.1", Placeholder},
		{Masker{24, 129}, "2001:db8::1", Placeholder},
		{Masker{-1, 64}, "192.0.2.1", Placeholder},
	}
	for _, c := range cases {
		var a netip.Addr
		if c.in != "" {
			a = netip.MustParseAddr(c.in)
		}
		if got := c.m.String(a); got != c.want {
			t.Errorf("Masker%v.String(%s) = %s, want %s", c.m, c.in, got, c.want)
		}
		p := c.m.Prefix(a)
		if c.want == Placeholder {
			if p.IsValid() {
				t.Errorf("Masker%v.Prefix(%s) = %v, want invalid", c.m, c.in, p)
			}
			continue
		}
		if p.String() != c.want {
			t.Errorf("Masker%v.Prefix(%s) = %v, want %s", c.m, c.in, p, c.want)
		}
		if p != p.Masked() {
			t.Errorf("Masker%v.Prefix(%s) = %v keeps host bits", c.m, c.in, p)
		}
	}
}

func TestNewMasker(t *testing.T) {
	for _, c := range []struct {
		v4, v6 int
		ok     bool
	}{
		{24, 64, true}, {0, 0, true}, {32, 128, true}, {16, 48, true},
		{-1, 64, false}, {33, 64, false}, {24, -1, false}, {24, 129, false},
	} {
		m, err := NewMasker(c.v4, c.v6)
		if (err == nil) != c.ok {
			t.Errorf("NewMasker(%d, %d) error = %v, want ok=%v", c.v4, c.v6, err, c.ok)
		}
		if err == nil && (m.V4Bits != c.v4 || m.V6Bits != c.v6) {
			t.Errorf("NewMasker(%d, %d) = %+v", c.v4, c.v6, m)
		}
	}
	if DefaultMasker != (Masker{24, 64}) || StrongMasker != (Masker{16, 48}) {
		t.Errorf("presets changed: %+v %+v", DefaultMasker, StrongMasker)
	}
}

func TestMaskAllocs(t *testing.T) {
	a := netip.MustParseAddr("2001:db8:1:2:3:4:5:6")
	if n := testing.AllocsPerRun(100, func() { DefaultMasker.Prefix(a) }); n != 0 {
		t.Errorf("Prefix allocates %v times", n)
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { DefaultMasker.AppendTo(buf[:0], a) }); n != 0 {
		t.Errorf("AppendTo allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = DefaultMasker.String(a) }); n > 1 {
		t.Errorf("String allocates %v times", n)
	}
}

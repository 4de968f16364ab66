package anonymize

import (
	"net/netip"
	"strings"
	"testing"
)

var (
	benchV4   = netip.MustParseAddr("203.0.113.7")
	benchV6   = netip.MustParseAddr("2001:db8:1:2:3:4:5:6")
	benchSink string
	benchAddr netip.Addr
)

func BenchmarkParseHostPort(b *testing.B) {
	for _, s := range []string{"203.0.113.7", "203.0.113.7:4711", "[2001:db8:1:2:3:4:5:6]:443"} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchAddr, _ = ParseHostPort(s)
			}
		})
	}
}

func BenchmarkMask(b *testing.B) {
	buf := make([]byte, 0, 64)
	for name, a := range map[string]netip.Addr{"v4": benchV4, "v6": benchV6} {
		b.Run("String/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchSink = DefaultMasker.String(a)
			}
		})
		b.Run("AppendTo/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf = DefaultMasker.AppendTo(buf[:0], a)
			}
		})
	}
}

func BenchmarkMaskXFF(b *testing.B) {
	for name, v := range map[string]string{
		"1":     "203.0.113.7",
		"3":     "203.0.113.7, 198.51.100.23:4711, [2001:db8::1]:443",
		"10mix": "203.0.113.7, unknown, 10.0.0.1, junk, 2001:db8::1, 10.0.0.2, 10.0.0.3, ::ffff:192.0.2.1, 10.0.0.4, 10.0.0.5",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchSink = DefaultMasker.MaskXFF(v)
			}
		})
	}
}

func BenchmarkMaskForwarded(b *testing.B) {
	v := `for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"`
	b.ReportAllocs()
	for b.Loop() {
		benchSink = DefaultMasker.MaskForwarded(v)
	}
}

func BenchmarkPseudonym(b *testing.B) {
	p, _ := NewPseudonymizer("k1", map[string]string{"k1": pfxKeyHex})
	d, _ := NewPseudonymizer("k0", map[string]string{"k0": detKeyHex})
	for _, c := range []struct {
		name string
		p    *Pseudonymizer
		a    netip.Addr
	}{{"pfx/v4", p, benchV4}, {"pfx/v6", p, benchV6}, {"deterministic/v4", d, benchV4}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchSink = c.p.Pseudonym(c.a)
			}
		})
	}
}

func BenchmarkSeal(b *testing.B) {
	pub, _, _ := GenerateKeyPair()
	s, _ := NewSealer("k1", pub)
	b.ReportAllocs()
	for b.Loop() {
		benchSink, _ = s.Seal(benchV4)
	}
}

func BenchmarkScrubText(b *testing.B) {
	line := `[2026-12-03T10:32:45.123Z] "GET /status HTTP/1.1" 200 - 0 17 3 2 "203.0.113.7,10.0.0.1" "curl/8.5.0" "0f5b6c9e-7dec-11d0-a765-00a0c91e6bf6" "api.example.com" "[2001:db8::5]:8080"`
	b.ReportAllocs()
	for b.Loop() {
		benchSink = ScrubText(line, DefaultMasker.String)
	}
}

// Runs of address characters that are not addresses must cost time linear in
// their length.
func BenchmarkScrubTextPathological(b *testing.B) {
	for name, line := range map[string]string{
		"colons":  strings.Repeat("1:", 10000),
		"zeros":   strings.Repeat("::0:", 5000),
		"dotted":  strings.Repeat("1.2.3.4:", 2500),
		"hexdots": strings.Repeat("a.b:c", 4000),
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				benchSink = ScrubText(line, DefaultMasker.String)
			}
		})
	}
}

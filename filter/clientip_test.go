package filter

import (
	"net/netip"
	"testing"
)

func TestResolveClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	xff := func(vals ...string) [][2]string {
		var h [][2]string
		for _, v := range vals {
			h = append(h, [2]string{"x-forwarded-for", v})
		}
		return h
	}
	fwd := func(vals ...string) [][2]string {
		var h [][2]string
		for _, v := range vals {
			h = append(h, [2]string{"forwarded", v})
		}
		return h
	}
	cases := []struct {
		name    string
		cfg     ClientIPConfig
		src     string
		headers [][2]string
		want    string
		why     ResolveReason
	}{
		// source.address, Envoy's effective client address.
		{name: "source v4", src: "192.0.2.10:0", want: "192.0.2.10"},
		{name: "source v4 with port", src: "192.0.2.10:53210", want: "192.0.2.10"},
		{name: "source v6 bracketed", src: "[2001:db8::7]:443", want: "2001:db8::7"},
		{name: "source v4-mapped unmapped", src: "[::ffff:192.0.2.10]:80", want: "192.0.2.10"},
		{name: "source missing", src: "", why: ReasonNoPeer},
		{name: "source garbage", src: "not-an-address", why: ReasonBadPeer},
		{name: "source unspecified", src: "0.0.0.0:0", why: ReasonUnspecifiedAddr},
		{name: "source ignores xff", src: "192.0.2.10:1", headers: xff("203.0.113.7"), want: "192.0.2.10"},

		// X-Forwarded-For with trusted hops.
		{name: "xff no hops takes rightmost", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("203.0.113.7, 198.51.100.1"), want: "198.51.100.1"},
		{name: "xff one hop", cfg: ClientIPConfig{Source: SourceXFF, TrustedHops: 1}, headers: xff("203.0.113.7, 198.51.100.1"), want: "203.0.113.7"},
		{name: "xff spoofed left part ignored", cfg: ClientIPConfig{Source: SourceXFF, TrustedHops: 1}, headers: xff("garbage, 1.2.3.4, 203.0.113.7, 10.1.1.1"), want: "203.0.113.7"},
		{name: "xff lines joined in order", cfg: ClientIPConfig{Source: SourceXFF, TrustedHops: 1}, headers: xff("203.0.113.7", "10.1.1.1"), want: "203.0.113.7"},
		{name: "xff lines joined, hop spans lines", cfg: ClientIPConfig{Source: SourceXFF, TrustedHops: 2}, headers: xff("203.0.113.7, 10.0.0.2", "10.1.1.1"), want: "203.0.113.7"},
		{name: "xff too few entries", cfg: ClientIPConfig{Source: SourceXFF, TrustedHops: 2}, headers: xff("203.0.113.7"), why: ReasonTooFewHops},
		{name: "xff missing", cfg: ClientIPConfig{Source: SourceXFF}, why: ReasonHeaderMissing},
		{name: "xff only empty elements", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff(" , ,"), why: ReasonHeaderMissing},
		{name: "xff empty elements dropped", cfg: ClientIPConfig{Source: SourceXFF, TrustedHops: 1}, headers: xff("203.0.113.7,, ,10.1.1.1"), want: "203.0.113.7"},
		{name: "xff whitespace", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("  203.0.113.7\t "), want: "203.0.113.7"},
		{name: "xff port", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("203.0.113.7:8080"), want: "203.0.113.7"},
		{name: "xff bracketed v6 with port", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("[2001:db8::7]:8080"), want: "2001:db8::7"},
		{name: "xff bare v6", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("2001:db8::7"), want: "2001:db8::7"},
		{name: "xff mapped v6", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("::ffff:203.0.113.7"), want: "203.0.113.7"},
		{name: "xff unknown", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("unknown"), why: ReasonUnknownClient},
		{name: "xff obfuscated", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("_hidden"), why: ReasonUnknownClient},
		{name: "xff zone rejected", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("fe80::1%eth0"), why: ReasonMalformed},
		{name: "xff leading zero rejected", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("203.0.113.07"), why: ReasonMalformed},
		{name: "xff octal-looking rejected", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("0203.0.113.7"), why: ReasonMalformed},
		{name: "xff hex rejected", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("0xcb.0.113.7"), why: ReasonMalformed},
		{name: "xff short form rejected", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("127.1"), why: ReasonMalformed},
		{name: "xff garbage where needed", cfg: ClientIPConfig{Source: SourceXFF, TrustedHops: 1}, headers: xff("evil, 10.1.1.1"), why: ReasonMalformed},
		{name: "xff unspecified", cfg: ClientIPConfig{Source: SourceXFF}, headers: xff("0.0.0.0"), why: ReasonUnspecifiedAddr},

		// X-Forwarded-For with trusted CIDRs.
		{name: "xff cidrs skip trusted", cfg: ClientIPConfig{Source: SourceXFF, TrustedCIDRs: trusted}, headers: xff("1.2.3.4, 203.0.113.7, 10.0.0.2, 10.9.9.9"), want: "203.0.113.7"},
		{name: "xff cidrs v6 trusted", cfg: ClientIPConfig{Source: SourceXFF, TrustedCIDRs: trusted}, headers: xff("2001:db8::7, 2001:db8:ffff::1"), want: "2001:db8::7"},
		{name: "xff cidrs all trusted takes leftmost", cfg: ClientIPConfig{Source: SourceXFF, TrustedCIDRs: trusted}, headers: xff("10.0.0.3, 10.0.0.2"), want: "10.0.0.3"},
		{name: "xff hops then cidrs", cfg: ClientIPConfig{Source: SourceXFF, TrustedHops: 1, TrustedCIDRs: trusted}, headers: xff("203.0.113.7, 10.0.0.2, 198.51.100.9"), want: "203.0.113.7"},
		{name: "xff cidrs malformed trusted entry stops", cfg: ClientIPConfig{Source: SourceXFF, TrustedCIDRs: trusted}, headers: xff("203.0.113.7, junk, 10.0.0.2"), why: ReasonMalformed},

		// RFC 7239 Forwarded.
		{name: "forwarded simple", cfg: ClientIPConfig{Source: SourceForwarded}, headers: fwd("for=203.0.113.7"), want: "203.0.113.7"},
		{name: "forwarded one hop", cfg: ClientIPConfig{Source: SourceForwarded, TrustedHops: 1}, headers: fwd(`for=203.0.113.7;proto=https, for="[2001:db8::1]:4711"`), want: "203.0.113.7"},
		{name: "forwarded quoted v6", cfg: ClientIPConfig{Source: SourceForwarded}, headers: fwd(`for="[2001:db8::7]"`), want: "2001:db8::7"},
		{name: "forwarded case-insensitive name", cfg: ClientIPConfig{Source: SourceForwarded}, headers: fwd(`For=203.0.113.7`), want: "203.0.113.7"},
		{name: "forwarded lines joined", cfg: ClientIPConfig{Source: SourceForwarded, TrustedHops: 1}, headers: fwd("for=203.0.113.7", "for=10.0.0.1"), want: "203.0.113.7"},
		{name: "forwarded unknown", cfg: ClientIPConfig{Source: SourceForwarded}, headers: fwd("for=unknown"), why: ReasonUnknownClient},
		{name: "forwarded obfuscated", cfg: ClientIPConfig{Source: SourceForwarded}, headers: fwd("for=_gazonk"), why: ReasonUnknownClient},
		{name: "forwarded missing for", cfg: ClientIPConfig{Source: SourceForwarded}, headers: fwd("proto=https"), why: ReasonMalformed},
		{name: "forwarded missing", cfg: ClientIPConfig{Source: SourceForwarded}, why: ReasonHeaderMissing},

		// A named header from trusted peers.
		{name: "header from trusted peer", cfg: ClientIPConfig{Source: SourceHeader, Header: "cf-connecting-ip", TrustedCIDRs: trusted}, src: "10.0.0.5:1234", headers: [][2]string{{"cf-connecting-ip", "203.0.113.7"}}, want: "203.0.113.7"},
		{name: "header from untrusted peer ignored", cfg: ClientIPConfig{Source: SourceHeader, Header: "cf-connecting-ip", TrustedCIDRs: trusted}, src: "198.51.100.2:1234", headers: [][2]string{{"cf-connecting-ip", "203.0.113.7"}}, want: "198.51.100.2"},
		{name: "header missing from trusted peer", cfg: ClientIPConfig{Source: SourceHeader, Header: "cf-connecting-ip", TrustedCIDRs: trusted}, src: "10.0.0.5:1234", why: ReasonHeaderMissing},
		{name: "header repeated", cfg: ClientIPConfig{Source: SourceHeader, Header: "cf-connecting-ip", TrustedCIDRs: trusted}, src: "10.0.0.5:1234", headers: [][2]string{{"cf-connecting-ip", "203.0.113.7"}, {"cf-connecting-ip", "198.51.100.1"}}, why: ReasonHeaderRepeated},
		{name: "header list rejected", cfg: ClientIPConfig{Source: SourceHeader, Header: "cf-connecting-ip", TrustedCIDRs: trusted}, src: "10.0.0.5:1234", headers: [][2]string{{"cf-connecting-ip", "203.0.113.7, 198.51.100.1"}}, why: ReasonMalformed},
		{name: "header zone rejected", cfg: ClientIPConfig{Source: SourceHeader, Header: "x-real-ip", TrustedCIDRs: trusted}, src: "10.0.0.5:1234", headers: [][2]string{{"x-real-ip", "fe80::1%25eth0"}}, why: ReasonMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.Source == "" {
				cfg.Source = SourceAddress
			}
			got, why := ResolveClientIP(&cfg, &RequestAddrs{SourceAddress: tc.src, Headers: tc.headers})
			if why != tc.why {
				t.Fatalf("reason = %q, want %q (address %v)", why, tc.why, got)
			}
			if tc.why != "" {
				if got.IsValid() {
					t.Fatalf("returned %v with a failure reason", got)
				}
				return
			}
			if got.String() != tc.want {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
		})
	}
}

// FuzzResolveClientIP feeds arbitrary header chains through every source:
// resolution never panics, and an address it returns is always valid,
// unmapped, zone-free and present in the input.
func FuzzResolveClientIP(f *testing.F) {
	f.Add("203.0.113.7, 10.0.0.1", `for="[2001:db8::1]:80";proto=http`, "192.0.2.1:80", 1)
	f.Add("unknown,,_x", "for=unknown", "[::ffff:1.2.3.4]:0", 0)
	f.Add("1.2.3.4:99999", `for="\"`, "", 3)
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, xff, fwd, src string, hops int) {
		if hops < 0 || hops > 32 {
			hops = 1
		}
		headers := [][2]string{{"x-forwarded-for", xff}, {"forwarded", fwd}, {"x-real-ip", xff}}
		for _, cfg := range []ClientIPConfig{
			{Source: SourceAddress},
			{Source: SourceXFF, TrustedHops: hops},
			{Source: SourceXFF, TrustedHops: hops, TrustedCIDRs: trusted},
			{Source: SourceForwarded, TrustedHops: hops},
			{Source: SourceHeader, Header: "x-real-ip", TrustedCIDRs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}},
		} {
			a, why := ResolveClientIP(&cfg, &RequestAddrs{SourceAddress: src, Headers: headers})
			if why != "" {
				if a.IsValid() {
					t.Fatalf("%s: address with a failure reason", cfg.Source)
				}
				continue
			}
			if !a.IsValid() || a.Is4In6() || a.Zone() != "" || a.IsUnspecified() {
				t.Fatalf("%s: bad address %v", cfg.Source, a)
			}
		}
	})
}

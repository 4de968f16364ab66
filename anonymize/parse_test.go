package anonymize

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

type parseCase struct {
	in   string
	want string // address text, or "" when an error is expected
	err  error
}

func runParseCases(t *testing.T, name string, parse func(string) (netip.Addr, error), cases []parseCase) {
	t.Helper()
	for _, c := range cases {
		got, err := parse(c.in)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s(%q) = %v, %v; want error %v", name, c.in, got, err, c.err)
			}
			if got.IsValid() {
				t.Errorf("%s(%q) returned address %v with an error", name, c.in, got)
			}
			if len(c.in) >= 4 && c.err != ErrUnknown && strings.Contains(err.Error(), c.in) {
				t.Errorf("%s(%q): error %q echoes the input", name, c.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s(%q) error: %v", name, c.in, err)
			continue
		}
		if want := netip.MustParseAddr(c.want); got != want {
			t.Errorf("%s(%q) = %v, want %v", name, c.in, got, want)
		}
		if got.Is4In6() || got.Zone() != "" {
			t.Errorf("%s(%q) = %v: still mapped or zoned", name, c.in, got)
		}
	}
}

// Forms every parser rejects the same way.
var commonRejects = []parseCase{
	{in: "", err: ErrEmpty},
	{in: " 192.0.2.1", err: ErrSyntax},
	{in: "192.0.2.1 ", err: ErrSyntax},
	{in: "192.0.2.1\n", err: ErrSyntax},
	{in: "\t2001:db8::1", err: ErrSyntax},
	// Leading zeros, octal, hexadecimal and short IPv4 forms.
	{in: "010.0.0.1", err: ErrSyntax},
	{in: "192.0.2.01", err: ErrSyntax},
	{in: "0177.0.0.1", err: ErrSyntax},
	{in: "0x7f.0.0.1", err: ErrSyntax},
	{in: "0x7f000001", err: ErrSyntax},
	{in: "127.1", err: ErrSyntax},
	{in: "127.0.1", err: ErrSyntax},
	{in: "2130706433", err: ErrSyntax},
	{in: "1.2.3", err: ErrSyntax},
	{in: "1.2.3.4.5", err: ErrSyntax},
	{in: "256.0.0.1", err: ErrSyntax},
	{in: "1.2.3.-4", err: ErrSyntax},
	{in: "1..2.3", err: ErrSyntax},
	{in: "::ffff:01.2.3.4", err: ErrSyntax},
	{in: "::ffff:1.2.3", err: ErrSyntax},
	// IPv6 nonsense.
	{in: "2001:db8:::1", err: ErrSyntax},
	{in: "2001:db8::1::2", err: ErrSyntax},
	{in: "1:2:3:4:5:6:7:8:9", err: ErrSyntax},
	{in: "2001:db8::g", err: ErrSyntax},
	{in: "12345::1", err: ErrSyntax},
	{in: "localhost", err: ErrSyntax},
	{in: "example.com", err: ErrSyntax},
	{in: "unknown", err: ErrSyntax},
	{in: "/tmp/envoy.sock", err: ErrSyntax},
	// Zones on header values.
	{in: "fe80::1%25eth0", err: ErrZone},
	{in: "192.0.2.1%eth0", err: ErrSyntax},
}

func TestParseIP(t *testing.T) {
	cases := []parseCase{
		{in: "192.0.2.1", want: "192.0.2.1"},
		{in: "0.0.0.0", want: "0.0.0.0"},
		{in: "255.255.255.255", want: "255.255.255.255"},
		{in: "::ffff:192.0.2.1", want: "192.0.2.1"},
		{in: "::FFFF:c000:0201", want: "192.0.2.1"},
		{in: "2001:db8::1", want: "2001:db8::1"},
		{in: "2001:DB8::1", want: "2001:db8::1"},
		{in: "2001:0db8:0000:0000:0000:0000:0000:0001", want: "2001:db8::1"},
		{in: "::", want: "::"},
		{in: "::192.0.2.1", want: "::c000:201"},
		{in: "fe80::1%eth0", err: ErrZone},
		{in: "fe80::1%", err: ErrZone},
		{in: "[2001:db8::1]", err: ErrSyntax},
		{in: "192.0.2.1:80", err: ErrSyntax},
		{in: "2001:db8::1/64", err: ErrSyntax},
	}
	runParseCases(t, "ParseIP", ParseIP, append(cases, commonRejects...))
}

func TestParseHostPort(t *testing.T) {
	cases := []parseCase{
		{in: "192.0.2.1", want: "192.0.2.1"},
		{in: "192.0.2.1:8080", want: "192.0.2.1"},
		{in: "192.0.2.1:0", want: "192.0.2.1"},
		{in: "192.0.2.1:65535", want: "192.0.2.1"},
		{in: "192.0.2.1:00080", want: "192.0.2.1"},
		{in: "2001:db8::1", want: "2001:db8::1"},
		{in: "[2001:db8::1]", want: "2001:db8::1"},
		{in: "[2001:db8::1]:443", want: "2001:db8::1"},
		{in: "[::ffff:192.0.2.1]:80", want: "192.0.2.1"},
		{in: "::ffff:192.0.2.1", want: "192.0.2.1"},
		// Unbracketed IPv6 with a "port" is just a longer IPv6 address.
		{in: "2001:db8::1:443", want: "2001:db8::1:443"},

		{in: "192.0.2.1:", err: ErrPort},
		{in: "192.0.2.1:65536", err: ErrPort},
		{in: "192.0.2.1:123456", err: ErrPort},
		{in: "192.0.2.1:8o", err: ErrPort},
		{in: "192.0.2.1:+80", err: ErrPort},
		{in: "192.0.2.1:-1", err: ErrPort},
		{in: "192.0.2.1: 80", err: ErrPort},
		{in: "[2001:db8::1]:", err: ErrPort},
		{in: "[2001:db8::1]:99999", err: ErrPort},
		{in: "[2001:db8::1]:_obf", err: ErrPort},
		{in: "[2001:db8::1", err: ErrSyntax},
		{in: "2001:db8::1]", err: ErrSyntax},
		{in: "[2001:db8::1]]", err: ErrSyntax},
		{in: "[[2001:db8::1]]", err: ErrSyntax},
		{in: "[2001:db8::1]x", err: ErrSyntax},
		{in: "[2001:db8::1] :80", err: ErrSyntax},
		{in: "[192.0.2.1]", err: ErrSyntax},
		{in: "[192.0.2.1]:80", err: ErrSyntax},
		{in: "[]", err: ErrEmpty},
		{in: "[]:80", err: ErrEmpty},
		{in: ":80", err: ErrEmpty},
		{in: "[fe80::1%eth0]:80", err: ErrZone},
		{in: "fe80::1%eth0", err: ErrZone},
		{in: "192.0.2.1:80:90", err: ErrSyntax},
		{in: "example.com:80", err: ErrSyntax},
		{in: "unknown", err: ErrSyntax},
	}
	runParseCases(t, "ParseHostPort", ParseHostPort, append(cases, commonRejects...))
}

func TestParsePeer(t *testing.T) {
	cases := []parseCase{
		{in: "192.0.2.1:5678", want: "192.0.2.1"},
		{in: "192.0.2.1:0", want: "192.0.2.1"},
		{in: "[2001:db8::1]:443", want: "2001:db8::1"},
		{in: "[2001:db8::1]:0", want: "2001:db8::1"},
		{in: "[::ffff:192.0.2.1]:0", want: "192.0.2.1"},
		{in: "[fe80::1%eth0]:443", want: "fe80::1"},
		{in: "[fe80::1%2]:443", want: "fe80::1"},
		{in: "fe80::1%eth0", want: "fe80::1"},
		{in: "fe80::1%25eth0", want: "fe80::1"},
		{in: "192.0.2.1", want: "192.0.2.1"},
		{in: "192.0.2.1%eth0:80", err: ErrSyntax},
		{in: "fe80::1%", err: ErrSyntax},
		{in: "[fe80::1%]:80", err: ErrSyntax},
		{in: "[fe80::1%eth 0]:80", err: ErrSyntax},
		{in: "fe80::1%eth0%1", err: ErrSyntax},
		{in: "@envoy_admin", err: ErrSyntax},
		{in: "192.0.2.1:65536", err: ErrPort},
	}
	var rejects []parseCase
	for _, c := range commonRejects {
		if c.err != ErrZone {
			rejects = append(rejects, c)
		}
	}
	runParseCases(t, "ParsePeer", ParsePeer, append(cases, rejects...))
}

func TestParseNode(t *testing.T) {
	cases := []parseCase{
		{in: "192.0.2.43", want: "192.0.2.43"},
		{in: "192.0.2.43:47011", want: "192.0.2.43"},
		{in: "192.0.2.43:_port1", want: "192.0.2.43"},
		{in: "[2001:db8:cafe::17]", want: "2001:db8:cafe::17"},
		{in: "[2001:db8:cafe::17]:4711", want: "2001:db8:cafe::17"},
		{in: "[2001:db8:cafe::17]:_p", want: "2001:db8:cafe::17"},
		{in: "unknown", err: ErrUnknown},
		{in: "UNKNOWN", err: ErrUnknown},
		{in: "unknown:80", err: ErrUnknown},
		{in: "_hidden", err: ErrObfuscated},
		{in: "_SEVKISEK", err: ErrObfuscated},
		{in: "_192.0.2.1", err: ErrObfuscated},
		{in: "_hidden:_port", err: ErrObfuscated},
		{in: "192.0.2.43:_", err: ErrPort},
		{in: "192.0.2.43:_a b", err: ErrPort},
		{in: "[fe80::1%eth0]", err: ErrZone},
		{in: "", err: ErrEmpty},
	}
	runParseCases(t, "ParseNode", ParseNode, cases)
}

// Parsing a valid address must not allocate: it runs on every request.
// (Rejecting one allocates once, inside net/netip.)
func TestParseAllocs(t *testing.T) {
	for _, s := range []string{"192.0.2.1", "192.0.2.1:80", "[2001:db8::1]:443", "::ffff:192.0.2.1"} {
		for name, f := range map[string]func(string) (netip.Addr, error){
			"ParseHostPort": ParseHostPort, "ParsePeer": ParsePeer,
		} {
			if n := testing.AllocsPerRun(100, func() { f(s) }); n != 0 {
				t.Errorf("%s(%q) allocates %v times", name, s, n)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { ParsePeer("[fe80::1%eth0]:443") }); n != 0 {
		t.Errorf("ParsePeer with a zone allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { ParseIP("2001:db8::1") }); n != 0 {
		t.Errorf("ParseIP allocates %v times", n)
	}
}

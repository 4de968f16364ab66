package anonymize

import (
	"net/netip"
	"testing"
)

func tagAddr(a netip.Addr) string { return "<" + a.String() + ">" }

func TestScrubText(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"nothing", "GET /index.html HTTP/1.1 200", "GET /index.html HTTP/1.1 200"},
		{"empty", "", ""},
		{
			"common log format",
			`203.0.113.7 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`,
			`<203.0.113.7> - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`,
		},
		{
			"combined log format, IPv6",
			`2001:db8::5 - - [03/Dec/2026:10:32:45 +0000] "GET /a?v=1.2.3 HTTP/2.0" 404 0 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.6099.71"`,
			`<2001:db8::5> - - [03/Dec/2026:10:32:45 +0000] "GET /a?v=1.2.3 HTTP/2.0" 404 0 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.6099.71"`,
		},
		{
			"Envoy default access log",
			`[2026-12-03T10:32:45.123Z] "GET /status HTTP/1.1" 200 - 0 17 3 2 "203.0.113.7,10.0.0.1" "curl/8.5.0" "0f5b6c9e-7dec-11d0-a765-00a0c91e6bf6" "api.example.com" "10.0.0.5:8080"`,
			`[2026-12-03T10:32:45.123Z] "GET /status HTTP/1.1" 200 - 0 17 3 2 "<203.0.113.7>,<10.0.0.1>" "curl/8.5.0" "0f5b6c9e-7dec-11d0-a765-00a0c91e6bf6" "api.example.com" "<10.0.0.5>"`,
		},
		{
			"JSON line",
			`{"ts":"2026-12-03T10:32:45Z","client":"[2001:db8:1::7]:51234","peer":"203.0.113.7:4711","xff":"::ffff:198.51.100.23","v":"1.2.3","dur":0.125}`,
			`{"ts":"2026-12-03T10:32:45Z","client":"[<2001:db8:1::7>]","peer":"<203.0.113.7>","xff":"<198.51.100.23>","v":"1.2.3","dur":0.125}`,
		},
		{
			"expanded and upper-case IPv6",
			`src=2001:0DB8:0000:0000:0000:0000:0000:0001 dst=FE80::1%eth0`,
			`src=<2001:db8::1> dst=<fe80::1>%eth0`,
		},
		{"bracketed without port", "from [2001:db8::1] to [::1]", "from [<2001:db8::1>] to [<::1>]"},
		{"mapped with port", "peer ::ffff:192.0.2.1:80 closed", "peer <192.0.2.1> closed"},
		{"bracketed mapped with port", "peer [::ffff:192.0.2.1]:80 closed", "peer [<192.0.2.1>] closed"},
		{"ipv4 port at end", "peer 192.0.2.1:65535", "peer <192.0.2.1>"},
		{"ipv4 port too big kept", "peer 192.0.2.1:65536", "peer <192.0.2.1>:65536"},
		{"sentence end", "blocked 192.0.2.1. Next", "blocked <192.0.2.1>. Next"},
		{"trailing colon", "client 2001:db8::1: reset", "client <2001:db8::1>: reset"},
		{"key with colon", "ip:2001:db8::1 ip:192.0.2.1", "ip:<2001:db8::1> ip:<192.0.2.1>"},
		{"hex key glued by colon", "c:2001:db8:1:2:3:4:5:6", "c:<2001:db8:1:2:3:4:5:6>"},
		{"leading zeros", "x=192.168.001.010", "x=<192.168.1.10>"},
		{"several", "a 1.1.1.1 b 8.8.8.8,9.9.9.9;2001:db8::1|::2", "a <1.1.1.1> b <8.8.8.8>,<9.9.9.9>;<2001:db8::1>|<::2>"},
		{"reverse DNS name", "ptr 4.3.2.1.in-addr.arpa", "ptr <4.3.2.1>.in-addr.arpa"},
		{"ipv4 after letters", "v1.2.3.4", "v<1.2.3.4>"},

		// Left alone.
		{"times", "10:32:45 and 2026-12-03T10:32:45.999999Z", "10:32:45 and 2026-12-03T10:32:45.999999Z"},
		{"versions", "go1.26.8 v1.2.3 1.2.3 OID 1.2.3.4.5 2.5.4.3.1", "go1.26.8 v1.2.3 1.2.3 OID 1.2.3.4.5 2.5.4.3.1"},
		{"octet too big", "999.1.1.1 1.2.3.256", "999.1.1.1 1.2.3.256"},
		{"mac", "hw 00:1a:2b:3c:4d:5e", "hw 00:1a:2b:3c:4d:5e"},
		{"c++ and rust paths", "std::string Class::method core::panic Data::Dumper", "std::string Class::method core::panic Data::Dumper"},
		{"hex pairs", "mac 00:1a:2b:3c:4d:5e eui 00:11:22:ff:fe:33:44:55 sha256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89", "mac 00:1a:2b:3c:4d:5e eui 00:11:22:ff:fe:33:44:55 sha256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"},
		{"double colon alone", "x :: y", "x :: y"},
		{"uuid", "0f5b6c9e-7dec-11d0-a765-00a0c91e6bf6", "0f5b6c9e-7dec-11d0-a765-00a0c91e6bf6"},
		{"durations", "took 0.125s 12.5ms", "took 0.125s 12.5ms"},

		// Valid addresses, even if they were not meant as such.
		{"standalone a::b", "e::f a::b", "<e::f> <a::b>"},
		{"too many groups: the longest tail that is an address", "1:2:3:4:5:6:7:8:9:a", "1:2:<3:4:5:6:7:8:9:a>"},
	} {
		if got := ScrubText(c.in, tagAddr); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

func TestScrubTextWithMasker(t *testing.T) {
	in := `203.0.113.7 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "curl" [2001:db8:1:2::7]:443`
	want := `203.0.113.0/24 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "curl" [2001:db8:1:2::/64]`
	if got := ScrubText(in, DefaultMasker.String); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestScrubTextNoAllocWhenClean(t *testing.T) {
	line := `[2026-12-03T10:32:45.123Z] "GET /status HTTP/1.1" 200 - 0 17 3 2 "-" "curl/8.5.0"`
	if n := testing.AllocsPerRun(100, func() { ScrubText(line, tagAddr) }); n != 0 {
		t.Errorf("ScrubText of a clean line allocates %v times", n)
	}
}

func TestScrubTextDocExamples(t *testing.T) {
	for in, want := range map[string]string{
		`peer=192.0.2.1:5678`:          `peer=192.0.2.0/24`,
		`"client":"[2001:db8::1]:443"`: `"client":"[2001:db8::/64]"`,
		`for="[2001:db8::1]"`:          `for="[2001:db8::/64]"`,
	} {
		if got := ScrubText(in, DefaultMasker.String); got != want {
			t.Errorf("ScrubText(%s) = %s, want %s", in, got, want)
		}
	}
}

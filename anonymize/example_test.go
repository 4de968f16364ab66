package anonymize_test

import (
	"fmt"
	"net/netip"

	"github.com/ipveil/ipveil/anonymize"
)

func ExampleParseHostPort() {
	for _, s := range []string{"203.0.113.7:4711", "[::ffff:192.0.2.1]:443", "fe80::1%eth0", "010.0.0.1"} {
		a, err := anonymize.ParseHostPort(s)
		fmt.Println(a, err)
	}
	// Output:
	// 203.0.113.7 <nil>
	// 192.0.2.1 <nil>
	// invalid IP anonymize: address has a zone suffix (%...), which is not accepted from request headers
	// invalid IP anonymize: malformed IPv4 address (want four decimal octets 0-255 without leading zeros)
}

func ExampleMasker_String() {
	m := anonymize.DefaultMasker
	for _, s := range []string{"203.0.113.7", "::ffff:192.0.2.1", "2001:db8:1:2:3:4:5:6", "2002:c000:201::1"} {
		fmt.Println(m.String(netip.MustParseAddr(s)))
	}
	fmt.Println(m.String(netip.Addr{}))
	fmt.Println(anonymize.StrongMasker.String(netip.MustParseAddr("203.0.113.7")))
	// Output:
	// 203.0.113.0/24
	// 192.0.2.0/24
	// 2001:db8:1:2::/64
	// 2002:c000:200::/40
	// invalid
	// 203.0.0.0/16
}

func ExampleMasker_MaskXFF() {
	fmt.Println(anonymize.DefaultMasker.MaskXFF("203.0.113.7:4711, [2001:db8::1]:443,, unknown, junk"))
	// Output: 203.0.113.0/24, 2001:db8::/64, unknown, invalid
}

func ExampleMasker_MaskForwarded() {
	fmt.Println(anonymize.DefaultMasker.MaskForwarded(`for="[2001:db8::1]:4711";proto=https, for=192.0.2.7;by=_x;secret=1`))
	// Output: for="2001:db8::/64";proto=https, for="192.0.2.0/24";by=_hidden
}

func ExamplePseudonymizer() {
	p, err := anonymize.NewPseudonymizer("k1", map[string]string{
		"k1": "0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301",
	})
	if err != nil {
		panic(err)
	}
	s := p.Pseudonym(netip.MustParseAddr("192.0.2.1"))
	a, _ := p.Reveal(s)
	fmt.Println(s, a)
	// Output: k1:100.115.72.131 192.0.2.1
}

func ExampleSealer() {
	pub, priv, _ := anonymize.GenerateKeyPair() // the operator keeps priv
	s, _ := anonymize.NewSealer("audit1", pub)  // the proxy gets pub
	token, _ := s.Seal(netip.MustParseAddr("203.0.113.7"))

	o, _ := anonymize.NewOpener("audit1", priv)
	a, _ := o.Open(token)
	fmt.Println(len(token), a)
	// Output: 93 203.0.113.7
}

func ExampleScrubText() {
	line := `203.0.113.7 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "[2001:db8::5]:443"`
	fmt.Println(anonymize.ScrubText(line, anonymize.DefaultMasker.String))
	// Output: 203.0.113.0/24 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "[2001:db8::/64]"
}

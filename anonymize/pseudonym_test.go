package anonymize

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

const (
	pfxKeyHex = "0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301"
	detKeyHex = "0123456789abcdeffedcba9876543210"
)

func TestPseudonymizer(t *testing.T) {
	p, err := NewPseudonymizer("k1", map[string]string{"k1": pfxKeyHex, "k0": detKeyHex})
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyID() != "k1" {
		t.Errorf("KeyID = %q", p.KeyID())
	}
	for in, want := range map[string]string{
		// The draft's ipcrypt-pfx vectors, with the key id in front.
		"192.0.2.1":        "k1:100.115.72.131",
		"::ffff:192.0.2.1": "k1:100.115.72.131",
		"0.0.0.0":          "k1:151.82.155.134",
		"2001:db8::1":      "k1:c180:5dd4:2587:3524:30ab:fa65:6ab6:f88",
	} {
		got := p.Pseudonym(netip.MustParseAddr(in))
		if got != want {
			t.Errorf("Pseudonym(%s) = %s, want %s", in, got, want)
		}
		back, err := p.Reveal(got)
		if err != nil || back != netip.MustParseAddr(in).Unmap() {
			t.Errorf("Reveal(%s) = %v, %v; want %s", got, back, err, in)
		}
	}
	if got := p.Pseudonym(netip.Addr{}); got != Placeholder {
		t.Errorf("Pseudonym(invalid) = %q", got)
	}

	// An old key reveals the pseudonyms it made; the draft's
	// ipcrypt-deterministic vector 1.
	if a, err := p.Reveal("k0:bde9:6789:d353:824c:d7c6:f58a:6bd2:26eb"); err != nil || a != netip.MustParseAddr("0.0.0.0") {
		t.Errorf("Reveal with old key = %v, %v", a, err)
	}
	old, err := NewPseudonymizer("k0", map[string]string{"k0": detKeyHex})
	if err != nil {
		t.Fatal(err)
	}
	if got := old.Pseudonym(netip.MustParseAddr("0.0.0.0")); got != "k0:bde9:6789:d353:824c:d7c6:f58a:6bd2:26eb" {
		t.Errorf("deterministic pseudonym = %s", got)
	}

	for _, bad := range []string{"", "k1", "k1:", "k1:junk", "k9:192.0.2.1", "k 1:192.0.2.1", ":192.0.2.1", "k1:fe80::1%eth0"} {
		if a, err := p.Reveal(bad); err == nil || !errors.Is(err, ErrPseudonym) {
			t.Errorf("Reveal(%q) = %v, %v; want an ErrPseudonym", bad, a, err)
		} else if len(bad) > 3 && strings.Contains(err.Error(), bad) {
			t.Errorf("Reveal(%q): error %q echoes the input", bad, err)
		}
	}
}

func TestPseudonymizerKeys(t *testing.T) {
	secret := "0123456789abcdeffedcba98765432101032547698badcfeefcdab896745230g"
	for _, c := range []struct {
		name    string
		current string
		keys    map[string]string
		ok      bool
	}{
		{"pfx", "a", map[string]string{"a": pfxKeyHex}, true},
		{"deterministic with spaces", "a", map[string]string{"a": " " + detKeyHex + "\n"}, true},
		{"upper-case hex", "a", map[string]string{"a": strings.ToUpper(pfxKeyHex)}, true},
		{"no keys", "a", nil, false},
		{"current missing", "b", map[string]string{"a": pfxKeyHex}, false},
		{"current invalid", "", map[string]string{"a": pfxKeyHex}, false},
		{"bad key id", "a:b", map[string]string{"a:b": pfxKeyHex}, false},
		{"long key id", strings.Repeat("k", 33), map[string]string{strings.Repeat("k", 33): pfxKeyHex}, false},
		{"short key", "a", map[string]string{"a": pfxKeyHex[:62]}, false},
		{"not hex", "a", map[string]string{"a": secret}, false},
		{"zero key", "a", map[string]string{"a": strings.Repeat("0", 64)}, false},
		{"equal halves", "a", map[string]string{"a": detKeyHex + detKeyHex}, false},
	} {
		_, err := NewPseudonymizer(c.current, c.keys)
		if (err == nil) != c.ok {
			t.Errorf("%s: error = %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil {
			for _, k := range c.keys {
				if len(k) > 8 && strings.Contains(err.Error(), strings.TrimSpace(k)[:8]) {
					t.Errorf("%s: error %q shows the key", c.name, err)
				}
			}
		}
	}
}

// ipcrypt-pfx preserves prefixes: addresses sharing n leading bits give
// pseudonyms sharing n leading bits (and, with overwhelming probability, no
// more).
func TestIPCryptPfxPreservesPrefixes(t *testing.T) {
	c, err := NewIPCryptPfx(mustHex(t, pfxKeyHex))
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("2001:db8:1:2:3:4:5:6")
	b := netip.MustParseAddr("2001:db8:1:2:ffff::")
	ea, eb := c.Encrypt(a), c.Encrypt(b)
	if !netip.PrefixFrom(ea, 64).Contains(eb) {
		t.Errorf("%s and %s share a /64, pseudonyms %s and %s do not", a, b, ea, eb)
	}
	if netip.PrefixFrom(ea, 72).Contains(eb) && !netip.PrefixFrom(a, 72).Contains(b) {
		t.Errorf("pseudonyms share more than the inputs")
	}
	if c.Encrypt(netip.Addr{}).IsValid() || c.Decrypt(netip.Addr{}).IsValid() {
		t.Errorf("invalid address encrypted")
	}
}

func TestIPCryptKeys(t *testing.T) {
	if _, err := NewIPCryptDeterministic(make([]byte, 15)); err == nil {
		t.Error("15-byte deterministic key accepted")
	}
	if _, err := NewIPCryptPfx(make([]byte, 16)); err == nil {
		t.Error("16-byte pfx key accepted")
	}
	if _, err := NewIPCryptPfx(make([]byte, 32)); err == nil {
		t.Error("pfx key with equal halves accepted")
	}
	if _, err := NewIPCryptND(make([]byte, 32)); err == nil {
		t.Error("32-byte nd key accepted")
	}
	if _, err := NewIPCryptNDX(make([]byte, 16)); err == nil {
		t.Error("16-byte ndx key accepted")
	}
}

func TestIPCryptNonDeterministicRoundTrip(t *testing.T) {
	nd, _ := NewIPCryptND(mustHex(t, detKeyHex))
	ndx, _ := NewIPCryptNDX(mustHex(t, pfxKeyHex))
	for _, s := range []string{"192.0.2.1", "2001:db8::1", "::"} {
		a := netip.MustParseAddr(s)
		c1, c2 := nd.Encrypt(nil, a), nd.Encrypt(nil, a)
		if len(c1) != 24 || string(c1) == string(c2) {
			t.Errorf("nd(%s): %x and %x", s, c1, c2)
		}
		if got, err := nd.Decrypt(c1); err != nil || got != a {
			t.Errorf("nd round trip %s = %v, %v", s, got, err)
		}
		x1, x2 := ndx.Encrypt(nil, a), ndx.Encrypt(nil, a)
		if len(x1) != 32 || string(x1) == string(x2) {
			t.Errorf("ndx(%s): %x and %x", s, x1, x2)
		}
		if got, err := ndx.Decrypt(x1); err != nil || got != a {
			t.Errorf("ndx round trip %s = %v, %v", s, got, err)
		}
	}
	if out := nd.Encrypt(nil, netip.Addr{}); len(out) != 0 {
		t.Error("nd encrypted an invalid address")
	}
	if out := ndx.Encrypt(nil, netip.Addr{}); len(out) != 0 {
		t.Error("ndx encrypted an invalid address")
	}
	if _, err := nd.Decrypt(make([]byte, 23)); err == nil {
		t.Error("nd decrypted 23 bytes")
	}
	if _, err := ndx.Decrypt(make([]byte, 24)); err == nil {
		t.Error("ndx decrypted 24 bytes")
	}
}

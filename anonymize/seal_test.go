package anonymize

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestSealRoundTrip(t *testing.T) {
	pub, priv, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer("audit-2026", pub)
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOpener("audit-2026", priv)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != "audit-2026" || o.KeyID() != "audit-2026" {
		t.Errorf("key ids %q %q", s.KeyID(), o.KeyID())
	}
	for _, in := range []string{"192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "fe80::1%eth0", "::", "255.255.255.255"} {
		a := netip.MustParseAddr(in)
		tok, err := s.Seal(a)
		if err != nil {
			t.Fatalf("Seal(%s): %v", in, err)
		}
		if !strings.HasPrefix(tok, "audit-2026.") || len(tok) != len("audit-2026.")+86 {
			t.Errorf("token %q has the wrong shape", tok)
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("token %q is not printable ASCII", tok)
			}
		}
		if strings.Contains(tok, a.WithZone("").Unmap().String()) {
			t.Errorf("token %q shows the address", tok)
		}
		tok2, _ := s.Seal(a)
		if tok2 == tok {
			t.Errorf("two seals of %s are equal", in)
		}
		got, err := o.Open(tok)
		if want := a.WithZone("").Unmap(); err != nil || got != want {
			t.Errorf("Open(Seal(%s)) = %v, %v; want %v", in, got, err, want)
		}
		if id, ok := SealedKeyID(tok); !ok || id != "audit-2026" {
			t.Errorf("SealedKeyID = %q, %v", id, ok)
		}
	}
	if _, err := s.Seal(netip.Addr{}); err == nil {
		t.Error("sealed an invalid address")
	}
}

func TestSealFailures(t *testing.T) {
	pub, priv, _ := GenerateKeyPair()
	_, priv2, _ := GenerateKeyPair()
	s, _ := NewSealer("k1", pub)
	tok, _ := s.Seal(netip.MustParseAddr("192.0.2.1"))

	wrongKey, _ := NewOpener("k1", priv2)
	if _, err := wrongKey.Open(tok); !errors.Is(err, ErrToken) {
		t.Errorf("wrong key: %v", err)
	}

	otherID, _ := NewOpener("k2", priv)
	if _, err := otherID.Open(tok); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("other key id: %v", err)
	}
	// The key id is bound into the seal: relabelling a token does not help.
	if _, err := otherID.Open("k2" + strings.TrimPrefix(tok, "k1")); !errors.Is(err, ErrToken) {
		t.Errorf("relabelled token: %v", err)
	}

	o, _ := NewOpener("k1", priv)
	body := []byte(tok)
	for i := len("k1."); i < len(body); i++ {
		tampered := append([]byte(nil), body...)
		if tampered[i] == 'A' {
			tampered[i] = 'B'
		} else {
			tampered[i] = 'A'
		}
		if a, err := o.Open(string(tampered)); err == nil {
			t.Fatalf("tampered token (byte %d) opened to %v", i, a)
		}
	}
	for _, bad := range []string{"", "k1", "k1.", "k1.!!!!", tok + "A", tok[:len(tok)-1], "k1." + strings.Repeat("A", 86), ".abc", "k 1.abc"} {
		if a, err := o.Open(bad); err == nil {
			t.Errorf("Open(%q) = %v", bad, a)
		} else if len(bad) > 8 && strings.Contains(err.Error(), bad[3:8]) {
			t.Errorf("Open error %q echoes the token", err)
		}
	}
}

func TestSealKeyEncodings(t *testing.T) {
	pub, priv, _ := GenerateKeyPair()
	raw, _ := base64.StdEncoding.DecodeString(pub)
	rawPriv, _ := base64.StdEncoding.DecodeString(priv)
	o, err := NewOpener("k", hex.EncodeToString(rawPriv))
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{
		pub,
		" " + pub + "\n",
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		hex.EncodeToString(raw),
		strings.ToUpper(hex.EncodeToString(raw)),
	} {
		s, err := NewSealer("k", enc)
		if err != nil {
			t.Errorf("NewSealer(%q): %v", enc, err)
			continue
		}
		tok, _ := s.Seal(netip.MustParseAddr("2001:db8::7"))
		if a, err := o.Open(tok); err != nil || a != netip.MustParseAddr("2001:db8::7") {
			t.Errorf("key encoding %q: Open = %v, %v", enc, a, err)
		}
	}
	for _, bad := range []string{
		"", "abc", pub[:40], hex.EncodeToString(raw)[:62] + "zz",
		base64.StdEncoding.EncodeToString(append(raw, 0)),
		base64.StdEncoding.EncodeToString(make([]byte, 32)), // low-order point
	} {
		if _, err := NewSealer("k", bad); err == nil {
			t.Errorf("NewSealer(%q) accepted", bad)
		} else if len(bad) > 8 && strings.Contains(err.Error(), bad[:8]) {
			t.Errorf("error %q shows the key", err)
		}
	}
	if _, err := NewSealer("k.1", pub); err == nil {
		t.Error("key id with a dot accepted")
	}
	if _, err := NewOpener("k", "junk"); err == nil {
		t.Error("junk private key accepted")
	}
	if _, err := NewOpener("", priv); err == nil {
		t.Error("empty key id accepted")
	}
}

func TestZeroValues(t *testing.T) {
	var s *Sealer
	if _, err := s.Seal(netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("nil Sealer sealed")
	}
	if _, err := new(Sealer).Seal(netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("zero Sealer sealed")
	}
	var o *Opener
	if _, err := o.Open("k1.abc"); !errors.Is(err, ErrToken) {
		t.Errorf("nil Opener: %v", err)
	}
	var p *Pseudonymizer
	if got := p.Pseudonym(netip.MustParseAddr("192.0.2.1")); got != Placeholder {
		t.Errorf("nil Pseudonymizer gave %q", got)
	}
	if got := new(Pseudonymizer).Pseudonym(netip.MustParseAddr("192.0.2.1")); got != Placeholder {
		t.Errorf("zero Pseudonymizer gave %q", got)
	}
	if _, err := p.Reveal("k1:192.0.2.1"); err == nil {
		t.Error("nil Pseudonymizer revealed")
	}
}

package challenge

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestIssueVerify(t *testing.T) {
	kr := mustKeyring(t, "k1:"+testKey1)
	tok := mustIssue(t, kr, testParams(8))
	if len(tok) > 160 || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
		t.Errorf("token %q: want short and [A-Za-z0-9_.-] only", tok)
	}
	nonce := Solve(tok, 8)
	if LeadingZeroBits(tok, nonce) < 8 {
		t.Fatalf("Solve gave nonce %s with %d zero bits", nonce, LeadingZeroBits(tok, nonce))
	}
	g := NewMemoryReplayGuard(64)
	p, err := Verify(kr, g, tok, nonce, testNow.Add(time.Minute), testNet, "SHOP.example")
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if p.ReturnPath != "/cart?item=7" || p.Network != testNet || p.Host != testHost || p.KeyID != "k1" ||
		p.Difficulty != 8 || !p.IssuedAt.Equal(testNow) || !p.Expires.Equal(testNow.Add(5*time.Minute)) || p.ID == [16]byte{} {
		t.Errorf("Verify returned %+v", p)
	}
	// Replay within the window.
	if _, err := Verify(kr, g, tok, nonce, testNow.Add(2*time.Minute), testNet, testHost); err != ErrReplayed {
		t.Errorf("second Verify = %v, want ErrReplayed", err)
	}
	// Another solution of the same puzzle is the same puzzle.
	other := ""
	for n := 0; other == ""; n++ {
		if s := itoa(n); s != nonce && LeadingZeroBits(tok, s) >= 8 {
			other = s
		}
	}
	if _, err := Verify(kr, g, tok, other, testNow.Add(2*time.Minute), testNet, testHost); err != ErrReplayed {
		t.Errorf("Verify with another nonce = %v, want ErrReplayed", err)
	}
	// Two puzzles never share an id.
	tok2 := mustIssue(t, kr, testParams(8))
	if tok2 == tok {
		t.Fatal("two puzzles are identical")
	}
	if _, err := Verify(kr, g, tok2, Solve(tok2, 8), testNow, testNet, testHost); err != nil {
		t.Errorf("second puzzle: %v", err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	kr := mustKeyring(t, "k1:"+testKey1)
	tok := mustIssue(t, kr, testParams(10))
	nonce := Solve(tok, 10)
	ok := func(tok, nonce string, now time.Time, network, host string) error {
		_, err := Verify(kr, nil, tok, nonce, now, network, host)
		return err
	}
	for _, tc := range []struct {
		name          string
		tok, nonce    string
		now           time.Time
		network, host string
		want          error
	}{
		{"valid", tok, nonce, testNow, testNet, testHost, nil},
		{"last second", tok, nonce, testNow.Add(5*time.Minute - time.Second), testNet, testHost, nil},
		{"expired", tok, nonce, testNow.Add(5 * time.Minute), testNet, testHost, ErrExpired},
		{"other network", tok, nonce, testNow, "198.51.100.0/24", testHost, ErrWrongNetwork},
		{"other host", tok, nonce, testNow, testNet, "evil.example", ErrWrongHost},
		{"host with port", tok, nonce, testNow, testNet, testHost + ":443", ErrWrongHost},
		{"insufficient work", tok, failingNonce(tok, 10), testNow, testNet, testHost, ErrInsufficientWork},
		{"empty nonce", tok, "", testNow, testNet, testHost, ErrMalformed},
		{"signed nonce", tok, "-" + nonce, testNow, testNet, testHost, ErrMalformed},
		{"long nonce", tok, strings.Repeat("1", 21), testNow, testNet, testHost, ErrMalformed},
		{"nonce with space", tok, nonce + " ", testNow, testNet, testHost, ErrMalformed},
		{"empty token", "", nonce, testNow, testNet, testHost, ErrMalformed},
		{"no dot", strings.Replace(tok, ".", "", 1), nonce, testNow, testNet, testHost, ErrMalformed},
		{"two dots", tok + ".", nonce, testNow, testNet, testHost, ErrMalformed},
		{"padding", strings.Replace(tok, ".", "=.", 1), nonce, testNow, testNet, testHost, ErrMalformed},
		{"huge", strings.Repeat("A", MaxTokenLen+1), nonce, testNow, testNet, testHost, ErrMalformed},
	} {
		if err := ok(tc.tok, tc.nonce, tc.now, tc.network, tc.host); err != tc.want {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// Every single-bit change of the payload or the MAC is refused.
func TestVerifyFlippedBits(t *testing.T) {
	kr := mustKeyring(t, "k1:"+testKey1)
	tok := mustIssue(t, kr, testParams(1))
	payload, mac := decodeSigned(t, tok)
	for i := 0; i < len(payload)*8; i++ {
		p := append([]byte(nil), payload...)
		p[i/8] ^= 1 << (i % 8)
		forged := encodeSigned(p, mac)
		_, err := Verify(kr, nil, forged, Solve(forged, 1), testNow, testNet, testHost)
		if err != ErrBadSignature && err != ErrMalformed && err != ErrUnknownKey {
			t.Fatalf("payload bit %d flipped: Verify = %v", i, err)
		}
	}
	for i := 0; i < len(mac)*8; i++ {
		m := append([]byte(nil), mac...)
		m[i/8] ^= 1 << (i % 8)
		forged := encodeSigned(payload, m)
		if _, err := Verify(kr, nil, forged, Solve(forged, 1), testNow, testNet, testHost); err != ErrBadSignature {
			t.Fatalf("MAC bit %d flipped: Verify = %v, want ErrBadSignature", i, err)
		}
	}
	// Each text character replaced.
	for i := range tok {
		c := byte('A')
		if tok[i] == 'A' {
			c = 'B'
		}
		forged := tok[:i] + string(c) + tok[i+1:]
		if _, err := Verify(kr, nil, forged, Solve(forged, 1), testNow, testNet, testHost); err == nil {
			t.Fatalf("character %d changed: accepted", i)
		}
	}
}

func TestVerifyKeys(t *testing.T) {
	old := mustKeyring(t, "k1:"+testKey1)
	rotated := mustKeyring(t, "k2:"+testKey2+",k1:"+testKey1)
	removed := mustKeyring(t, "k2:"+testKey2)
	impostor := mustKeyring(t, "k1:"+testKey3) // same id, other key

	oldTok := mustIssue(t, old, testParams(4))
	newTok := mustIssue(t, rotated, testParams(4))
	check := func(name string, kr *Keyring, tok string, want error) {
		t.Helper()
		if _, err := Verify(kr, nil, tok, Solve(tok, 4), testNow, testNet, testHost); err != want {
			t.Errorf("%s: Verify = %v, want %v", name, err, want)
		}
	}
	check("old key after rotation", rotated, oldTok, nil)
	check("new key signs", rotated, newTok, nil)
	check("new token on old ring", old, newTok, ErrUnknownKey)
	check("removed key", removed, oldTok, ErrUnknownKey)
	check("MAC from another key", impostor, oldTok, ErrBadSignature)
	if p, _ := Verify(rotated, nil, newTok, Solve(newTok, 4), testNow, testNet, testHost); p.KeyID != "k2" {
		t.Errorf("rotated ring signed with %q, want k2", p.KeyID)
	}
	if _, err := Verify(nil, nil, oldTok, "0", testNow, testNet, testHost); err != ErrUnknownKey {
		t.Errorf("nil keyring: %v", err)
	}
}

func TestTicketsAndPuzzlesDoNotMix(t *testing.T) {
	kr := mustKeyring(t, "k1:"+testKey1)
	ticket, err := IssueTicket(kr, testNow, testParams(20))
	if err != nil {
		t.Fatal(err)
	}
	puzzle := mustIssue(t, kr, testParams(1))
	pass := mustPass(t, kr, time.Hour)
	if _, err := Verify(kr, nil, ticket, Solve(ticket, 0), testNow, testNet, testHost); err != ErrMalformed {
		t.Errorf("ticket as puzzle: %v", err)
	}
	if _, err := VerifyTicket(kr, nil, puzzle, testNow, testNet, testHost); err != ErrMalformed {
		t.Errorf("puzzle as ticket: %v", err)
	}
	if _, err := Verify(kr, nil, pass, "0", testNow, testNet, testHost); err != ErrMalformed {
		t.Errorf("pass as puzzle: %v", err)
	}
	if err := VerifyPass(kr, puzzle, testNow, testNet, testHost); err != ErrMalformed {
		t.Errorf("puzzle as pass: %v", err)
	}
	if err := VerifyPass(kr, ticket, testNow, testNet, testHost); err != ErrMalformed {
		t.Errorf("ticket as pass: %v", err)
	}
	g := NewMemoryReplayGuard(16)
	p, err := VerifyTicket(kr, g, ticket, testNow, testNet, testHost)
	if err != nil || p.Difficulty != 0 || p.ReturnPath != "/cart?item=7" {
		t.Errorf("VerifyTicket = %+v, %v", p, err)
	}
	if _, err := VerifyTicket(kr, g, ticket, testNow, testNet, testHost); err != ErrReplayed {
		t.Errorf("ticket replay: %v", err)
	}
	if _, err := VerifyTicket(kr, g, ticket, testNow.Add(time.Hour), testNet, testHost); err != ErrExpired {
		t.Errorf("expired ticket: %v", err)
	}
}

func TestIssueRefusesBadParams(t *testing.T) {
	kr := mustKeyring(t, "k1:"+testKey1)
	for _, tc := range []struct {
		name string
		edit func(*PuzzleParams)
	}{
		{"difficulty 0", func(p *PuzzleParams) { p.Difficulty = 0 }},
		{"difficulty 33", func(p *PuzzleParams) { p.Difficulty = 33 }},
		{"ttl 0", func(p *PuzzleParams) { p.TTL = 0 }},
		{"ttl sub-second", func(p *PuzzleParams) { p.TTL = time.Millisecond }},
		{"ttl 2h", func(p *PuzzleParams) { p.TTL = 2 * time.Hour }},
		{"empty network", func(p *PuzzleParams) { p.Network = "" }},
		{"raw IPv4", func(p *PuzzleParams) { p.Network = "203.0.113.7" }},
		{"raw IPv6", func(p *PuzzleParams) { p.Network = "2001:db8::1" }},
		{"bracketed IPv6", func(p *PuzzleParams) { p.Network = "[2001:db8::1]" }},
		{"IPv4 with port", func(p *PuzzleParams) { p.Network = "203.0.113.7:443" }},
		{"IPv6 with port", func(p *PuzzleParams) { p.Network = "[2001:db8::1]:443" }},
		{"mapped", func(p *PuzzleParams) { p.Network = "::ffff:203.0.113.7" }},
		{"zone", func(p *PuzzleParams) { p.Network = "fe80::1%eth0" }},
		{"host bits", func(p *PuzzleParams) { p.Network = "203.0.113.7/24" }},
		{"v6 host bits", func(p *PuzzleParams) { p.Network = "2001:db8::1/64" }},
		{"/32", func(p *PuzzleParams) { p.Network = "203.0.113.7/32" }},
		{"/128", func(p *PuzzleParams) { p.Network = "2001:db8::1/128" }},
		{"space", func(p *PuzzleParams) { p.Network = "203.0.113.0 /24" }},
		{"too long", func(p *PuzzleParams) { p.Network = strings.Repeat("x", MaxNetworkLen+1) }},
		{"host with space", func(p *PuzzleParams) { p.Host = "a b" }},
		{"host too long", func(p *PuzzleParams) { p.Host = strings.Repeat("h", 256) }},
	} {
		p := testParams(8)
		tc.edit(&p)
		tok, err := Issue(kr, testNow, p)
		if err == nil {
			t.Errorf("%s: Issue accepted %+v", tc.name, p)
			continue
		}
		if strings.Contains(err.Error(), "203.0.113.7") || strings.Contains(err.Error(), "2001:db8::1") || tok != "" {
			t.Errorf("%s: error %q repeats the address", tc.name, err)
		}
		if _, err := IssuePass(kr, testNow, time.Hour, p.Network, p.Host); err == nil && (p.Network != testNet || p.Host != testHost) {
			t.Errorf("%s: IssuePass accepted it", tc.name)
		}
	}
	if _, err := Issue(nil, testNow, testParams(8)); err == nil {
		t.Error("Issue with nil keyring")
	}
	// Labels that are not addresses are fine: IPv4 /0../31, IPv6 /0../127, pseudonyms.
	for _, n := range []string{"203.0.113.0/24", "10.0.0.0/8", "0.0.0.0/0", "2001:db8:1:2::/64", "2001:db8::/48", "unresolved", "k1:100.115.72.131"} {
		p := testParams(4)
		p.Network = n
		if _, err := Issue(kr, testNow, p); err != nil {
			t.Errorf("network %q: %v", n, err)
		}
	}
}

func TestIssueSanitizesReturnPath(t *testing.T) {
	kr := mustKeyring(t, "k1:"+testKey1)
	for in, want := range map[string]string{
		"/a/b?c=d":             "/a/b?c=d",
		"//evil.example/":      "/",
		"https://evil.example": "/",
		"":                     "/",
		"/\\evil.example":      "/",
	} {
		p := testParams(1)
		p.ReturnPath = in
		tok := mustIssue(t, kr, p)
		got, err := Verify(kr, nil, tok, Solve(tok, 1), testNow, testNet, testHost)
		if err != nil || got.ReturnPath != want {
			t.Errorf("ReturnPath %q: got %q, %v; want %q", in, got.ReturnPath, err, want)
		}
	}
	// The longest path fits; the token stays under MaxTokenLen with every field at its maximum.
	p := PuzzleParams{TTL: time.Hour, Difficulty: 32, Network: strings.Repeat("n", MaxNetworkLen),
		Host: strings.Repeat("h", MaxHostLen), ReturnPath: "/" + strings.Repeat("p", MaxReturnPathLen-1)}
	kr16 := mustKeyring(t, "abcdefghijklmnop:"+testKey1)
	tok, err := Issue(kr16, testNow, p)
	if err != nil || len(tok) > MaxTokenLen {
		t.Fatalf("largest token: %d bytes (max %d), %v", len(tok), MaxTokenLen, err)
	}
	got, err := verifyToken(kr16, kindPuzzle, tok, testNow, p.Network, p.Host)
	if err != nil || got.ReturnPath != p.ReturnPath {
		t.Errorf("largest token: %v", err)
	}
}

func TestMemoryReplayGuard(t *testing.T) {
	g := NewMemoryReplayGuard(0)
	if len(g.slots) != 16 {
		t.Errorf("slots = %d, want 16", len(g.slots))
	}
	until := testNow.Add(time.Minute)
	var ids [][16]byte
	for i := 0; i < 16; i++ {
		var id [16]byte
		id[0], id[15] = byte(i), 1
		ids = append(ids, id)
		if !g.FirstUse(id, until.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("id %d: not first use", i)
		}
	}
	for i, id := range ids {
		if g.FirstUse(id, until) {
			t.Errorf("id %d: replay not detected", i)
		}
	}
	// Full: a new id evicts the entry of its set that expires first, and nothing grows.
	var extra [16]byte
	extra[0], extra[15] = 0, 2
	if !g.FirstUse(extra, until) || g.FirstUse(extra, until) {
		t.Error("new id in a full guard")
	}
	if len(g.slots) != 16 {
		t.Error("guard grew")
	}
}

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                  "",
		ErrExpired:                           "expired",
		ErrInsufficientWork:                  "insufficient_work",
		&CaptchaError{Codes: []string{"x"}}:  "captcha_failed",
		errors.New("other"):                  "error",
		errors.Join(ErrReplayed, ErrExpired): "replayed",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
	all := []*Error{ErrMalformed, ErrBadSignature, ErrUnknownKey, ErrExpired, ErrWrongNetwork, ErrWrongHost,
		ErrInsufficientWork, ErrReplayed, ErrBadForm, ErrTooLarge, ErrMissingField, ErrCaptchaFailed, ErrProviderDown}
	seen := map[string]bool{}
	for _, e := range all {
		r := e.Reason()
		if seen[r] || strings.Trim(r, "abcdefghijklmnopqrstuvwxyz_") != "" || !strings.HasPrefix(e.Error(), "challenge: ") {
			t.Errorf("error %q: reason %q duplicate or not [a-z_]", e.Error(), r)
		}
		seen[r] = true
	}
}

package challenge

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// Test keys: fixed, so that failures reproduce. Never use these anywhere else.
var (
	testKey1 = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	testKey2 = base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	testKey3 = base64.RawURLEncoding.EncodeToString([]byte("another test key, 32 bytes long!"))
)

var testNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

const (
	testNet  = "203.0.113.0/24"
	testHost = "shop.example"
)

func mustKeyring(t testing.TB, s string) *Keyring {
	t.Helper()
	kr, err := ParseKeyring(s)
	if err != nil {
		t.Fatalf("ParseKeyring: %v", err)
	}
	return kr
}

func testParams(d int) PuzzleParams {
	return PuzzleParams{TTL: 5 * time.Minute, Difficulty: d, Network: testNet, Host: testHost, ReturnPath: "/cart?item=7"}
}

func mustIssue(t testing.TB, kr *Keyring, p PuzzleParams) string {
	t.Helper()
	tok, err := Issue(kr, testNow, p)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}

func mustPass(t testing.TB, kr *Keyring, ttl time.Duration) string {
	t.Helper()
	v, err := IssuePass(kr, testNow, ttl, testNet, testHost)
	if err != nil {
		t.Fatalf("IssuePass: %v", err)
	}
	return v
}

// decodeSigned splits a signed value into its payload and MAC bytes.
func decodeSigned(t testing.TB, v string) (payload, mac []byte) {
	t.Helper()
	p, m, ok := strings.Cut(v, ".")
	if !ok {
		t.Fatalf("no dot in %q", v)
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil {
		t.Fatalf("decode: %v %v", err1, err2)
	}
	return payload, mac
}

func encodeSigned(payload, mac []byte) string {
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac)
}

// failingNonce returns a nonce that does not solve token at difficulty d.
func failingNonce(token string, d int) string {
	for n := 0; ; n++ {
		s := itoa(n)
		if LeadingZeroBits(token, s) < d {
			return s
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

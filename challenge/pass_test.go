package challenge

import (
	"strings"
	"testing"
	"time"
)

func TestPass(t *testing.T) {
	kr := mustKeyring(t, "k1:"+testKey1)
	v := mustPass(t, kr, time.Hour)
	if len(v) > 130 || !validCookieValue(v) {
		t.Errorf("pass %q: want short and a valid cookie value", v)
	}
	for _, ip := range []string{"203.0.113.", "2001:db8"} {
		payload, _ := decodeSigned(t, v)
		if strings.Contains(string(payload), ip+"7") {
			t.Errorf("pass carries a raw address")
		}
	}
	for _, tc := range []struct {
		name          string
		value         string
		now           time.Time
		network, host string
		want          error
	}{
		{"valid", v, testNow, testNet, testHost, nil},
		{"host case", v, testNow.Add(59 * time.Minute), testNet, "Shop.Example", nil},
		{"expired", v, testNow.Add(time.Hour), testNet, testHost, ErrExpired},
		{"long expired", v, testNow.Add(100 * 24 * time.Hour), testNet, testHost, ErrExpired},
		{"other network", v, testNow, "203.0.114.0/24", testHost, ErrWrongNetwork},
		{"other host", v, testNow, testNet, "shop.example.evil", ErrWrongHost},
		{"empty", "", testNow, testNet, testHost, ErrMalformed},
		{"dot", ".", testNow, testNet, testHost, ErrMalformed},
		{"garbage", "hello", testNow, testNet, testHost, ErrMalformed},
		{"truncated", v[:len(v)-1], testNow, testNet, testHost, ErrMalformed},
		{"extended", v + "A", testNow, testNet, testHost, ErrMalformed},
		{"quoted", `"` + v + `"`, testNow, testNet, testHost, ErrMalformed},
		{"huge", strings.Repeat("A", 4096), testNow, testNet, testHost, ErrMalformed},
	} {
		if err := VerifyPass(kr, tc.value, tc.now, tc.network, tc.host); err != tc.want {
			t.Errorf("%s: VerifyPass = %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := VerifyPass(nil, v, testNow, testNet, testHost); err != ErrUnknownKey {
		t.Errorf("nil keyring: %v", err)
	}
	for _, ttl := range []time.Duration{0, time.Millisecond, 31 * 24 * time.Hour} {
		if _, err := IssuePass(kr, testNow, ttl, testNet, testHost); err == nil {
			t.Errorf("IssuePass accepted TTL %v", ttl)
		}
	}
	if _, err := IssuePass(kr, testNow, time.Hour, "203.0.113.7", testHost); err == nil {
		t.Error("IssuePass accepted a raw address")
	}
}

func TestPassForgery(t *testing.T) {
	kr := mustKeyring(t, "k1:"+testKey1)
	v := mustPass(t, kr, time.Hour)
	payload, mac := decodeSigned(t, v)
	for i := 0; i < len(payload)*8; i++ {
		p := append([]byte(nil), payload...)
		p[i/8] ^= 1 << (i % 8)
		err := VerifyPass(kr, encodeSigned(p, mac), testNow, testNet, testHost)
		if err != ErrBadSignature && err != ErrMalformed && err != ErrUnknownKey {
			t.Fatalf("payload bit %d flipped: VerifyPass = %v", i, err)
		}
	}
	for i := 0; i < len(mac)*8; i++ {
		m := append([]byte(nil), mac...)
		m[i/8] ^= 1 << (i % 8)
		if err := VerifyPass(kr, encodeSigned(payload, m), testNow, testNet, testHost); err != ErrBadSignature {
			t.Fatalf("MAC bit %d flipped: VerifyPass = %v", i, err)
		}
	}
	// Extending the expiry is a forgery.
	later := append([]byte(nil), payload...)
	later[1+1+2+7]++ // last byte of the expiry, after kind, id length and "k1"
	if err := VerifyPass(kr, encodeSigned(later, mac), testNow.Add(2*time.Hour), testNet, testHost); err != ErrBadSignature {
		t.Errorf("extended expiry: %v", err)
	}
	// Moving it to another network is a forgery.
	moved := strings.Replace(string(payload), testNet, "203.0.114.0/24", 1)
	if err := VerifyPass(kr, encodeSigned([]byte(moved), mac), testNow, "203.0.114.0/24", testHost); err != ErrBadSignature {
		t.Errorf("moved network: %v", err)
	}
}

func TestPassRotation(t *testing.T) {
	old := mustKeyring(t, "k1:"+testKey1)
	rotated := mustKeyring(t, "k2:"+testKey2+", k1:"+testKey1)
	removed := mustKeyring(t, "k2:"+testKey2)
	impostor := mustKeyring(t, "k1:"+testKey2)
	oldPass := mustPass(t, old, time.Hour)
	newPass := mustPass(t, rotated, time.Hour)
	for _, tc := range []struct {
		name  string
		kr    *Keyring
		value string
		want  error
	}{
		{"old pass, rotated ring", rotated, oldPass, nil},
		{"new pass, rotated ring", rotated, newPass, nil},
		{"new pass, removed ring", removed, newPass, nil},
		{"old pass, removed ring", removed, oldPass, ErrUnknownKey},
		{"new pass, old ring", old, newPass, ErrUnknownKey},
		{"MAC from another key", impostor, oldPass, ErrBadSignature},
	} {
		if err := VerifyPass(tc.kr, tc.value, testNow, testNet, testHost); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// VerifyPass runs on every challenged request: it must not allocate.
func TestVerifyPassAllocs(t *testing.T) {
	kr := mustKeyring(t, "k2:"+testKey2+",k1:"+testKey1)
	v := mustPass(t, kr, time.Hour)
	bad := v[:len(v)-2] + "AA"
	for name, value := range map[string]string{"valid": v, "forged": bad} {
		allocs := testing.AllocsPerRun(100, func() {
			_ = VerifyPass(kr, value, testNow, testNet, testHost)
		})
		if allocs != 0 {
			t.Errorf("%s: VerifyPass allocates %v times", name, allocs)
		}
	}
}

package challenge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseKeyring(t *testing.T) {
	kr := mustKeyring(t, " k2 : "+testKey2+" ,k1:"+testKey1+",k-3_x:"+testKey3)
	if kr.CurrentID() != "k2" {
		t.Errorf("CurrentID = %q, want k2", kr.CurrentID())
	}
	if got := strings.Join(kr.IDs(), ","); got != "k2,k1,k-3_x" {
		t.Errorf("IDs = %q", got)
	}
	// Every base64 flavour of one key is the same key.
	raw := []byte("0123456789abcdef0123456789abcdef")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		k := mustKeyring(t, "a:"+enc.EncodeToString(raw))
		if k.keys[0].ipad != mustKeyring(t, "a:"+testKey1).keys[0].ipad {
			t.Errorf("%v: different key", enc)
		}
	}
}

func TestParseKeyringErrors(t *testing.T) {
	secretish := "c2VjcmV0LXNlY3JldC1zZWNyZXQ" // would be key material if echoed
	long := base64.StdEncoding.EncodeToString(make([]byte, 65))
	zero := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct{ in, want string }{
		{"", "no keys"},
		{"   ", "no keys"},
		{testKey1, "entry 1 is not id:base64key"},
		{"k1:" + testKey1 + ",", "entry 2 is not id:base64key"},
		{":" + testKey1, "entry 1 has an invalid key id"},
		{"k 1:" + testKey1, "entry 1 has an invalid key id"},
		{"abcdefghijklmnopq:" + testKey1, "entry 1 has an invalid key id"},
		{secretish + "+/:" + testKey1, "entry 1 has an invalid key id"},
		{"k1:" + testKey1 + ",k1:" + testKey2, `entry 2 (key id "k1") repeats`},
		{"k1:" + secretish + "!", `entry 1 (key id "k1") is not valid base64`},
		{"k1:" + secretish, `entry 1 (key id "k1") must decode to 32 to 64 bytes`},
		{"k1:" + long, `must decode to 32 to 64 bytes`},
		{"k1:" + zero, `is all zero bytes`},
		{"k1:" + testKey1[:20] + "\n" + testKey1[20:], "not valid base64"},
		{strings.Repeat("k:"+testKey1+",", 17), "more than 16 keys"},
	} {
		_, err := ParseKeyring(tc.in)
		if err == nil {
			t.Errorf("ParseKeyring(%.30q) = nil error, want %q", tc.in, tc.want)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) {
			t.Errorf("ParseKeyring(%.30q) = %q, want it to contain %q", tc.in, msg, tc.want)
		}
		for _, secret := range []string{secretish, testKey1, testKey1[:12], testKey2[:12], long[:12]} {
			if strings.Contains(msg, secret) {
				t.Errorf("error %q contains key material", msg)
			}
		}
	}
}

func TestNewKeyEntry(t *testing.T) {
	e1, err := NewKeyEntry("k9")
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := NewKeyEntry("k8")
	kr := mustKeyring(t, e1+","+e2)
	if kr.CurrentID() != "k9" || e1[3:] == e2[3:] {
		t.Errorf("NewKeyEntry: %d keys, current %q", len(kr.keys), kr.CurrentID())
	}
	if _, err := NewKeyEntry("bad id"); err == nil {
		t.Error("NewKeyEntry accepted an invalid id")
	}
}

// The HMAC written here must be RFC 2104 HMAC-SHA256 exactly.
func TestMACMatchesCryptoHMAC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, keyLen := range []int{32, 33, 48, 63, 64} {
		key := make([]byte, keyLen)
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		kr := mustKeyring(t, "k:"+base64.StdEncoding.EncodeToString(key))
		for _, msgLen := range []int{0, 1, 55, 56, 64, 119, 300, maxPassPayload, maxPassPayload + 1, 3000} {
			msg := make([]byte, msgLen)
			for i := range msg {
				msg[i] = byte(rng.Uint32())
			}
			h := hmac.New(sha256.New, key)
			h.Write(msg)
			want := h.Sum(nil)
			got := kr.keys[0].mac(msg)
			if !hmac.Equal(got[:], want) {
				t.Fatalf("key %d bytes, message %d bytes: HMAC differs from crypto/hmac", keyLen, msgLen)
			}
		}
	}
}

func TestB64DecodeMatchesStrictStd(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ ."
	for i := 0; i < 20000; i++ {
		n := rng.IntN(12)
		b := make([]byte, n)
		for j := range b {
			if rng.IntN(8) == 0 {
				b[j] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[j] = alphabet[rng.IntN(64)]
			}
		}
		checkB64(t, string(b))
	}
}

func checkB64(t *testing.T, s string) {
	t.Helper()
	want, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if strings.ContainsAny(s, "\r\n") {
		err = base64.CorruptInputError(0) // the standard decoder skips line breaks; we refuse them
	}
	dst := make([]byte, len(s))
	n, ok := b64Decode(dst, s)
	if ok != (err == nil) || ok && string(dst[:n]) != string(want) {
		t.Fatalf("b64Decode(%q) = %x, %v; encoding/base64 says %x, %v", s, dst[:n], ok, want, err)
	}
}

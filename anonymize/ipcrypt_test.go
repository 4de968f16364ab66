package anonymize

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// ipcryptVector is one entry of testdata/ipcrypt-draft.txt.
type ipcryptVector struct {
	line                  int
	key, input, encrypted string
	tweak, output         string
}

// readIPCryptVectors parses the "~~~ test-vectors" blocks of the draft's
// appendix: entries of "Key:", "Input IP:", then "Encrypted IP:" or "Tweak:"
// and "Output:", one field a line.
func readIPCryptVectors(t *testing.T) []ipcryptVector {
	t.Helper()
	f, err := os.Open("testdata/ipcrypt-draft.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out    []ipcryptVector
		cur    ipcryptVector
		inside bool
		n      int
	)
	flush := func() {
		if cur.key != "" {
			out = append(out, cur)
		}
		cur = ipcryptVector{}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "~~~") {
			flush()
			inside = strings.Contains(line, "test-vectors")
			continue
		}
		if !inside || line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("line %d: no field name", n)
		}
		val = strings.TrimSpace(val)
		switch name {
		case "Key":
			flush()
			cur.key, cur.line = val, n
		case "Input IP":
			cur.input = val
		case "Encrypted IP":
			cur.encrypted = val
		case "Tweak":
			cur.tweak = val
		case "Output":
			cur.output = val
		default:
			t.Fatalf("line %d: unknown field %q", n, name)
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in vector file: %v", err)
	}
	return b
}

func TestIPCryptDraftVectors(t *testing.T) {
	vs := readIPCryptVectors(t)
	counts := map[string]int{}
	for _, v := range vs {
		key := mustHex(t, v.key)
		in := netip.MustParseAddr(v.input)
		switch {
		case v.tweak == "" && len(key) == 16:
			counts["deterministic"]++
			c, err := NewIPCryptDeterministic(key)
			if err != nil {
				t.Fatal(err)
			}
			want := netip.MustParseAddr(v.encrypted)
			if got := c.Encrypt(in); got != want {
				t.Errorf("line %d: ipcrypt-deterministic(%s) = %s, want %s", v.line, in, got, want)
			}
			if got := c.Decrypt(want); got != in {
				t.Errorf("line %d: ipcrypt-deterministic decrypt = %s, want %s", v.line, got, in)
			}
		case v.tweak == "" && len(key) == 32:
			counts["pfx"]++
			c, err := NewIPCryptPfx(key)
			if err != nil {
				t.Fatal(err)
			}
			want := netip.MustParseAddr(v.encrypted)
			if got := c.Encrypt(in); got != want {
				t.Errorf("line %d: ipcrypt-pfx(%s) = %s, want %s", v.line, in, got, want)
			}
			if got := c.Decrypt(want); got != in {
				t.Errorf("line %d: ipcrypt-pfx decrypt = %s, want %s", v.line, got, in)
			}
		case len(key) == 16:
			counts["nd"]++
			c, err := NewIPCryptND(key)
			if err != nil {
				t.Fatal(err)
			}
			tw := mustHex(t, v.tweak)
			want := mustHex(t, v.output)
			got := c.EncryptTweak(nil, in, [8]byte(tw))
			if !bytes.Equal(got, want) {
				t.Errorf("line %d: ipcrypt-nd(%s) = %x, want %x", v.line, in, got, want)
			}
			if a, err := c.Decrypt(want); err != nil || a != in {
				t.Errorf("line %d: ipcrypt-nd decrypt = %s, %v, want %s", v.line, a, err, in)
			}
		case len(key) == 32:
			counts["ndx"]++
			c, err := NewIPCryptNDX(key)
			if err != nil {
				t.Fatal(err)
			}
			tw := mustHex(t, v.tweak)
			want := mustHex(t, v.output)
			got := c.EncryptTweak(nil, in, [16]byte(tw))
			if !bytes.Equal(got, want) {
				t.Errorf("line %d: ipcrypt-ndx(%s) = %x, want %x", v.line, in, got, want)
			}
			if a, err := c.Decrypt(want); err != nil || a != in {
				t.Errorf("line %d: ipcrypt-ndx decrypt = %s, %v, want %s", v.line, a, err, in)
			}
		default:
			t.Fatalf("line %d: unclassifiable vector", v.line)
		}
	}
	// The file has 3 deterministic, 16 pfx, 3 nd and 3 ndx vectors: make
	// sure none was skipped by the parser.
	want := map[string]int{"deterministic": 3, "pfx": 16, "nd": 3, "ndx": 3}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: ran %d vectors, want %d", k, counts[k], n)
		}
	}
}

// With a zero tweak, KIASU-BC is AES-128: check the portable rounds against
// the standard library.
func TestKIASUZeroTweakIsAES(t *testing.T) {
	for i := range 64 {
		var key, pt [16]byte
		for j := range 16 {
			key[j] = byte(i*31 + j*7)
			pt[j] = byte(i*13 + j*101)
		}
		var rk [11][16]byte
		expandKey128(&key, &rk)
		got := pt
		kiasuEncrypt(&rk, &[8]byte{}, &got)
		b, _ := aes.NewCipher(key[:])
		var want [16]byte
		b.Encrypt(want[:], pt[:])
		if got != want {
			t.Fatalf("key %x: KIASU with zero tweak = %x, AES = %x", key, got, want)
		}
		kiasuDecrypt(&rk, &[8]byte{}, &got)
		if got != pt {
			t.Fatalf("key %x: decrypt = %x, want %x", key, got, pt)
		}
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runWithStdin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb strings.Builder
	rc := run(args, strings.NewReader(stdin), &out, &errb)
	return rc, out.String(), errb.String()
}

func TestScrubSampleLogs(t *testing.T) {
	for _, name := range []string{"combined", "lines", "envoy"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", map[string]string{"combined": "combined.log", "lines": "lines.jsonl", "envoy": "envoy.log"}[name]))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", name+".masked"))
			if err != nil {
				t.Fatal(err)
			}
			rc, out, stderr := runWithStdin(t, string(in), "scrub")
			if rc != 0 {
				t.Fatalf("rc=%d %s", rc, stderr)
			}
			if out != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", out, want)
			}
		})
	}
}

func TestScrubStrongerPrefixesAndNoTrailingNewline(t *testing.T) {
	rc, out, _ := runWithStdin(t, "client=203.0.113.7 peer=[2001:db8:aaaa:bbbb::1]:80", "scrub", "-4", "16", "-6", "48")
	if rc != 0 || out != "client=203.0.0.0/16 peer=[2001:db8:aaaa::/48]" {
		t.Fatalf("rc=%d %q", rc, out)
	}
}

func TestScrubPseudonymAndReveal(t *testing.T) {
	t.Setenv(envPseudonymKeys, "k1:0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301")
	rc, out, stderr := runWithStdin(t, "a 192.0.2.1 b 192.0.2.1:8080\n", "scrub", "-mode", "pseudonym")
	if rc != 0 || out != "a k1:100.115.72.131 b k1:100.115.72.131\n" {
		t.Fatalf("rc=%d %q %s", rc, out, stderr)
	}
	rc, out, _ = runWithStdin(t, "", "pseudonymize", "192.0.2.1", "[2001:db8::1]:443")
	if rc != 0 || !strings.HasPrefix(out, "k1:100.115.72.131\nk1:") {
		t.Fatalf("rc=%d %q", rc, out)
	}
	rc, out, _ = runWithStdin(t, "", "pseudonymize", "-reveal", "k1:100.115.72.131")
	if rc != 0 || out != "192.0.2.1\n" {
		t.Fatalf("reveal rc=%d %q", rc, out)
	}
	t.Setenv(envPseudonymKeys, "")
	if rc, _, stderr := runWithStdin(t, "", "pseudonymize", "192.0.2.1"); rc != 2 || !strings.Contains(stderr, envPseudonymKeys) {
		t.Fatalf("missing keys: rc=%d %s", rc, stderr)
	}
}

func TestKeygenSealUnseal(t *testing.T) {
	rc, out, _ := runWithStdin(t, "", "keygen", "-id", "audit-1")
	if rc != 0 {
		t.Fatal(rc)
	}
	var pub, priv string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, envSealPrivate+"="); ok {
			priv = v
		}
		if i := strings.Index(l, `"public_key": "`); i >= 0 {
			pub = strings.TrimSuffix(l[i+len(`"public_key": "`):], `"}`)
		}
	}
	if pub == "" || priv == "" {
		t.Fatalf("keygen output:\n%s", out)
	}
	t.Setenv(envSealPublic, pub)
	rc, sealed, stderr := runWithStdin(t, "deny 203.0.113.7:1234\n", "scrub", "-mode", "seal", "-id", "audit-1")
	if rc != 0 || strings.Contains(sealed, "203.0.113.7") || !strings.HasPrefix(sealed, "deny audit-1.") {
		t.Fatalf("rc=%d %q %s", rc, sealed, stderr)
	}
	tok := strings.TrimSpace(strings.TrimPrefix(sealed, "deny "))
	t.Setenv(envSealPrivate, priv)
	rc, out, stderr = runWithStdin(t, tok+"\n", "unseal", "-id", "audit-1")
	if rc != 0 || out != "203.0.113.7\n" {
		t.Fatalf("unseal rc=%d %q %s", rc, out, stderr)
	}
	rc, _, stderr = runWithStdin(t, "", "unseal", "-id", "audit-1", tok[:len(tok)-2]+"AA")
	if rc != 1 || strings.Contains(stderr, tok) {
		t.Fatalf("tampered token: rc=%d %s", rc, stderr)
	}
}

func TestScrubRejectsHugeLines(t *testing.T) {
	rc, _, stderr := runWithStdin(t, strings.Repeat("x", maxLine+10), "scrub")
	if rc != 1 || !strings.Contains(stderr, "longer than") {
		t.Fatalf("rc=%d %s", rc, stderr)
	}
}

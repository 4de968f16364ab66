package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := run(args, strings.NewReader(""), &out, &errb)
	return rc, out.String(), errb.String()
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckConfigRejectsWithPaths(t *testing.T) {
	p := writeFile(t, `{"mode":"enforced","provider":{"cluster":"rep","timeout_ms":0},"cache":{"ttl_s":0},
		"lists":{"deny_cidrs":["1.2.3.4/40"]},"policy":{"rules":[{"name":"x","when":{},"action":"block"}]},"typo":1}`)
	rc, _, stderr := runCLI(t, "check-config", p)
	if rc != 1 {
		t.Fatalf("rc = %d, want 1", rc)
	}
	for _, want := range []string{"mode:", "provider.timeout_ms:", "cache.ttl_s:", "lists.deny_cidrs[0]:", "policy.rules[0].when:", "typo: unknown key"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("output does not name %q:\n%s", want, stderr)
		}
	}
}

func TestCheckConfigAcceptsAndEnv(t *testing.T) {
	p := writeFile(t, `{"provider":{"cluster":"reputation","headers":{"x-api-key":"${IPVEIL_CHECK_KEY}"}}}`)
	rc, stdout, stderr := runCLI(t, "check-config", p)
	if rc != 0 || !strings.Contains(stdout, "ok") {
		t.Fatalf("rc=%d stdout=%q stderr=%q", rc, stdout, stderr)
	}
	rc, _, stderr = runCLI(t, "check-config", "-env", p)
	if rc != 1 || !strings.Contains(stderr, "IPVEIL_CHECK_KEY") {
		t.Fatalf("-env must require the variable: rc=%d %s", rc, stderr)
	}
	t.Setenv("IPVEIL_CHECK_KEY", "secret-value")
	rc, _, stderr = runCLI(t, "check-config", "-env", p)
	if rc != 0 {
		t.Fatalf("rc=%d %s", rc, stderr)
	}
}

func TestCheckConfigNotJSON(t *testing.T) {
	rc, _, stderr := runCLI(t, "check-config", writeFile(t, `{"mode": `))
	if rc != 1 || !strings.Contains(stderr, "not valid JSON") {
		t.Fatalf("rc=%d %s", rc, stderr)
	}
}

func TestMask(t *testing.T) {
	rc, stdout, _ := runCLI(t, "mask", "203.0.113.7", "[2001:db8::1]:443", "::ffff:198.51.100.23")
	if rc != 0 || stdout != "203.0.113.0/24\n2001:db8::/64\n198.51.100.0/24\n" {
		t.Fatalf("rc=%d %q", rc, stdout)
	}
	rc, stdout, stderr := runCLI(t, "mask", "-4", "16", "203.0.113.7", "bogus-203.0.113.7")
	if rc != 1 || !strings.HasPrefix(stdout, "203.0.0.0/16\n") || strings.Contains(stdout+stderr, "bogus") {
		t.Fatalf("rc=%d stdout=%q stderr=%q", rc, stdout, stderr)
	}
}

func TestUsage(t *testing.T) {
	if rc, _, _ := runCLI(t); rc != 2 {
		t.Fatal("no command must be a usage error")
	}
	if rc, _, stderr := runCLI(t, "nope"); rc != 2 || !strings.Contains(stderr, "unknown command") {
		t.Fatal("unknown command")
	}
}

package filter

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipveil/ipveil/internal/jsoncfg"
	"github.com/ipveil/ipveil/policy"
)

func noEnv(name string) (string, bool) { return "", false }

// anyEnv sets every variable, as a configured VM environment would.
func anyEnv(name string) (string, bool) { return "v-" + name, true }

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"provider":{"cluster":"reputation"}}`), anyEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeEnforce || c.ClientIP.Source != SourceAddress || c.Block.Status != 403 ||
		c.Challenge.Kind != "page" || c.Challenge.Status != 429 || c.Masker.V4Bits != 24 || c.Masker.V6Bits != 64 {
		t.Errorf("defaults: %+v", c)
	}
	if c.OnUnresolved != c.Policy.OnError || c.Policy.OnError != policy.Allow {
		t.Errorf("on_unresolved %v, on_error %v", c.OnUnresolved, c.Policy.OnError)
	}
	for _, h := range DefaultUpstreamHeaders {
		if c.UpstreamHeaders[h] != HeaderMask {
			t.Errorf("%s defaults to %q", h, c.UpstreamHeaders[h])
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct{ doc, path string }{
		{`{"mode":"on"}`, "mode"},
		{`{"client_ip":{"source":"header"}}`, "client_ip.header"},
		{`{"client_ip":{"source":"header","header":"x-real-ip"}}`, "client_ip.trusted_cidrs"},
		{`{"client_ip":{"trusted_hops":1}}`, "client_ip.source"},
		{`{"client_ip":{"source":"x_forwarded_for","trusted_cidrs":["nope"]}}`, "client_ip.trusted_cidrs[0]"},
		{`{"client_ip":{"source":"x_forwarded_for","trusted_hops":99}}`, "client_ip.trusted_hops"},
		{`{"client_ip":{"on_unresolved":"maybe"}}`, "client_ip.on_unresolved"},
		{`{"cache":{"error_ttl_s":"10"}}`, "cache.error_ttl_s"},
		{`{"lists":{"bypass_paths":["healthz"]}}`, "lists.bypass_paths[0]"},
		{`{"lists":{"bypass_paths":["/a*b"]}}`, "lists.bypass_paths[0]"},
		{`{"lists":{"allow_cidrs":"10.0.0.0/8"}}`, "lists.allow_cidrs"},
		{`{"block":{"status":99}}`, "block.status"},
		{`{"challenge":{"kind":"redirect"}}`, "challenge.url"},
		{`{"challenge":{"kind":"redirect","url":"/c?ip={ip}"}}`, "challenge.url"},
		{`{"challenge":{"kind":"redirect","url":"http://x/"}}`, "challenge.url"},
		{`{"challenge":{"url":"/c"}}`, "challenge.url"},
		{`{"privacy":{"ipv4_prefix":33}}`, "privacy.ipv4_prefix"},
		{`{"privacy":{"upstream_headers":{"X-Real-IP":"mask"}}}`, "privacy.upstream_headers.X-Real-IP"},
		{`{"privacy":{"upstream_headers":{"x-real-ip":"hide"}}}`, "privacy.upstream_headers.x-real-ip"},
		{`{"verdict_header":"x-forwarded-for"}`, "verdict_header"},
		{`{"log":{"decisions":"some"}}`, "log.decisions"},
		{`{"cache":{"ttl":5}}`, "cache.ttl"},
		{`[]`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.doc, func(t *testing.T) {
			doc := tc.doc
			if strings.HasPrefix(doc, "{") && !strings.Contains(doc, `"provider"`) {
				doc = `{"provider":{"cluster":"c"},` + doc[1:]
			}
			_, err := ParseConfig([]byte(doc), anyEnv)
			var ce *jsoncfg.Error
			if !errors.As(err, &ce) {
				t.Fatalf("want a *jsoncfg.Error, got %v", err)
			}
			for _, p := range ce.Problems {
				if p.Path == tc.path {
					return
				}
			}
			t.Fatalf("no problem at %q: %v", tc.path, err)
		})
	}
}

func TestParseConfigEnv(t *testing.T) {
	doc := []byte(`{"provider":{"preset":"ipinfo","cluster":"c","headers":{"authorization":"Bearer ${TOKEN}"}}}`)
	_, err := ParseConfig(doc, noEnv)
	if err == nil || !strings.Contains(err.Error(), "provider.headers.authorization") || !strings.Contains(err.Error(), "TOKEN") {
		t.Fatalf("missing variable: %v", err)
	}
	c, err := ParseConfig(doc, func(n string) (string, bool) { return "tok-9", n == "TOKEN" })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.CalloutHeaders) != 1 || c.CalloutHeaders[0] != [2]string{"authorization", "Bearer tok-9"} {
		t.Fatalf("headers %q", c.CalloutHeaders)
	}
	// The secret never appears in an error.
	_, err = ParseConfig([]byte(`{"mode":"x","provider":{"preset":"ipinfo","cluster":"c","headers":{"authorization":"Bearer ${TOKEN}"}}}`),
		func(n string) (string, bool) { return "tok-9", true })
	if err == nil || strings.Contains(err.Error(), "tok-9") {
		t.Fatalf("error leaks the secret or is missing: %v", err)
	}
}

func TestParseConfigNamespaceFollowsConfig(t *testing.T) {
	a, errA := ParseConfig([]byte(`{"provider":{"cluster":"c"}}`), anyEnv)
	b, errB := ParseConfig([]byte(`{"provider":{"cluster":"c"},"policy":{"on_error":"block"}}`), anyEnv)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a.Namespace == b.Namespace {
		t.Fatal("different configurations must not share cached verdicts")
	}
}

// FuzzParseConfig: any document either parses into a usable Config or
// returns problems with paths; it never panics.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"provider":{"cluster":"c"}}`))
	f.Add([]byte(`{"mode":"dry_run","client_ip":{"source":"header","header":"cf-connecting-ip","trusted_cidrs":["10.0.0.0/8"]},"provider":{"preset":"ipinfo","cluster":"c","headers":{"authorization":"Bearer ${T}"}},"policy":{"rules":[{"name":"r","when":{"score":{"gte":50}},"action":"challenge"}]}}`))
	f.Add([]byte(`{"challenge":{"kind":"redirect","url":"/x?p={path}"},"privacy":{"upstream_headers":{"x-a":"strip"}},"lists":{"bypass_paths":["/s*"]}}`))
	f.Add([]byte(`{"a":`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := ParseConfig(doc, func(string) (string, bool) { return "v", true })
		if err != nil {
			var ce *jsoncfg.Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			return
		}
		if c.Provider == nil || c.Policy == nil || c.TTL <= 0 || c.ErrorTTL <= 0 {
			t.Fatalf("accepted an unusable config: %+v", c)
		}
	})
}

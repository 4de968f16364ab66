package policy

import (
	"os"
	"path/filepath"
	"testing"
)

func mustPreset(t testing.TB, name string) *Provider {
	t.Helper()
	p, ok := Preset(name)
	if !ok {
		t.Fatalf("no preset %q", name)
	}
	return p
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPresetFixtures checks that each preset turns its provider's documented
// answer shape into the right signals and, under the default policy, the
// right decision.
func TestPresetFixtures(t *testing.T) {
	tests := []struct {
		preset string
		want   Signals
		reason string
	}{
		{"ipasis", Signals{Tor: False, Proxy: False, VPN: True, Relay: False, Datacenter: True,
			Score: 35, ScoreKnown: true, ASN: 64501, ASNKnown: true, ASNType: "hosting"}, ReasonDefault},
		{"ipinfo", Signals{Tor: True, Proxy: False, VPN: False, Relay: False, Datacenter: True}, "tor"},
		// proxy is true in the answer but vetoed: IPQS's proxy flag covers VPNs.
		{"ipqualityscore", Signals{Tor: False, Proxy: False, VPN: True, Datacenter: True,
			Score: 88, ScoreKnown: true, ASN: 64502, ASNKnown: true, ASNType: "data center"}, "score_medium"},
		{"abuseipdb", Signals{Tor: False, Datacenter: True, Score: 100, ScoreKnown: true,
			ASNType: "data center/web hosting/transit"}, "score_high"},
		{"proxycheck", Signals{Tor: False, Proxy: True, VPN: False, Datacenter: True,
			Score: 100, ScoreKnown: true, ASN: 64503, ASNKnown: true, ASNType: "hosting"}, "proxy"},
		{"ipregistry", Signals{Tor: False, Proxy: False, VPN: False, Relay: True, Datacenter: False,
			ASN: 64504, ASNKnown: true, ASNType: "isp"}, ReasonDefault},
		{"ipgeolocation", Signals{Tor: False, Proxy: True, VPN: False, Relay: False, Datacenter: False,
			Score: 20, ScoreKnown: true}, "proxy"},
		// anonymizer flags are omitted when false, so Tor and Proxy read false.
		{"maxmind", Signals{Tor: False, Proxy: False, VPN: True, Relay: False, Datacenter: True,
			Score: 62.5, ScoreKnown: true, ASN: 64505, ASNKnown: true, ASNType: "hosting"}, "score_medium"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.preset] = true
		t.Run(tt.preset, func(t *testing.T) {
			p := mustPreset(t, tt.preset)
			got, err := Extract(p, 200, fixture(t, tt.preset))
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if got != tt.want {
				t.Errorf("signals:\n got  %+v\n want %+v", got, tt.want)
			}
			if d := DefaultPolicy().Evaluate(got); d.Reason != tt.reason {
				t.Errorf("default policy decided %v by %q, want reason %q", d.Verdict, d.Reason, tt.reason)
			}
		})
	}
	for _, name := range PresetNames() {
		if !seen[name] {
			t.Errorf("preset %q has no fixture test", name)
		}
	}
}

// TestPresetShapes checks what every preset must provide.
func TestPresetShapes(t *testing.T) {
	for _, name := range PresetNames() {
		p := mustPreset(t, name)
		if p.Preset != name || p.Authority == "" || p.Method != "GET" || p.Cluster != "" {
			t.Errorf("%s: preset=%q authority=%q method=%q cluster=%q", name, p.Preset, p.Authority, p.Method, p.Cluster)
		}
		if err := checkTemplate(p.Path); err != nil || p.Path[0] != '/' {
			t.Errorf("%s: path %q: %v", name, p.Path, err)
		}
		// Every preset takes its key from the environment, never from config.
		refs := stripEnvRefs(p.Path) != p.Path
		for _, h := range p.Headers {
			refs = refs || stripEnvRefs(h[1]) != h[1]
		}
		if !refs {
			t.Errorf("%s: no ${ENV} reference for the API key", name)
		}
		if got := p.RequestPath("2001:db8::1"); got == p.Path {
			t.Errorf("%s: RequestPath left %q unchanged", name, got)
		}
	}
	if _, ok := Preset(DefaultPreset); !ok {
		t.Fatal("default preset missing")
	}
	// Presets are fresh copies.
	a, b := mustPreset(t, "ipasis"), mustPreset(t, "ipasis")
	a.Fields.Tor.Paths[0] = "x"
	a.Headers[0][1] = "y"
	if b.Fields.Tor.Paths[0] == "x" || b.Headers[0][1] == "y" {
		t.Error("presets share memory")
	}
}

// TestPresetErrorBodies checks that error answers documented by providers
// are told apart as quota or provider errors.
func TestPresetErrorBodies(t *testing.T) {
	tests := []struct {
		preset string
		status int
		body   string
		want   Kind
	}{
		{"ipqualityscore", 200, `{"success":false,"message":"You have insufficient credits to make this query.","request_id":"x"}`, KindQuota},
		{"ipqualityscore", 200, `{"success":false,"message":"Invalid or unauthorized key"}`, KindProviderError},
		{"proxycheck", 200, `{"status":"denied","message":"Your daily query allowance has been exceeded."}`, KindQuota},
		{"proxycheck", 200, `{"status":"error","message":"No valid IP address supplied."}`, KindProviderError},
		{"proxycheck", 200, `{"status":"warning","message":"You are near your limit","192.0.2.1":{"detections":{"tor":true}}}`, KindNone},
		{"abuseipdb", 200, `{"errors":[{"detail":"Daily rate limit of 1000 requests exceeded for this endpoint.","status":429}]}`, KindQuota},
		{"abuseipdb", 429, `{"errors":[{"detail":"Daily rate limit exceeded","status":429}]}`, KindQuota},
		{"abuseipdb", 401, `{"errors":[{"detail":"Authentication failed.","status":401}]}`, KindHTTPStatus},
		{"ipregistry", 402, `{"code":"INSUFFICIENT_CREDITS","message":"You need to buy credits.","resolution":"…"}`, KindQuota},
		{"ipregistry", 403, `{"code":"INVALID_API_KEY","message":"Your API key is invalid."}`, KindHTTPStatus},
		{"maxmind", 402, `{"code":"INSUFFICIENT_FUNDS","error":"out of funds"}`, KindQuota},
		{"ipinfo", 429, `{"title":"Rate limit exceeded","message":"Upgrade"}`, KindQuota},
		{"ipinfo", 504, ``, KindHTTPStatus},
		{"ipasis", 200, `{"error":"monthly quota exceeded"}`, KindQuota},
		{"ipasis", 200, `{"error":"internal"}`, KindProviderError},
		{"ipasis", 200, `{"ip":"192.0.2.1","error":null,"privacy":{"Tor":true}}`, KindNone},
	}
	for _, tt := range tests {
		_, err := Extract(mustPreset(t, tt.preset), tt.status, []byte(tt.body))
		if got := KindOf(err); got != tt.want {
			t.Errorf("%s %d %s: kind %v, want %v (%v)", tt.preset, tt.status, tt.body, got, tt.want, err)
		}
	}
}

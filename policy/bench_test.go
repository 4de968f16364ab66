package policy

import "testing"

func benchExtract(b *testing.B, preset string) {
	p := mustPreset(b, preset)
	body := fixture(b, preset)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Extract(p, 200, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtractIPASIS(b *testing.B)     { benchExtract(b, "ipasis") }
func BenchmarkExtractProxycheck(b *testing.B) { benchExtract(b, "proxycheck") }
func BenchmarkExtractMaxMind(b *testing.B)    { benchExtract(b, "maxmind") }

func BenchmarkEvaluate(b *testing.B) {
	p := DefaultPolicy()
	p.Rules = append(p.Rules,
		Rule{Name: "bad_asns", When: Conditions{ASNIn: []uint32{64496, 64500, 64511}}, Action: Block},
		Rule{Name: "hosting_vpn", When: Conditions{VPN: True, ASNTypeIn: []string{"hosting", "business"}}, Action: Flag})
	// Matches no rule: every rule is tried.
	s := Signals{Tor: False, Proxy: False, VPN: True, Score: 35, ScoreKnown: true, ASN: 64501, ASNKnown: true, ASNType: "isp"}
	b.ReportAllocs()
	var d Decision
	for b.Loop() {
		d = p.Evaluate(s)
	}
	if d.Reason != ReasonDefault {
		b.Fatal(d)
	}
}

package policy

import "testing"

func TestParseVerdict(t *testing.T) {
	for _, v := range []Verdict{Allow, Challenge, Block, Flag} {
		got, err := ParseVerdict(v.String())
		if err != nil || got != v {
			t.Errorf("round trip %v: %v %v", v, got, err)
		}
	}
	for _, s := range []string{"", "Allow", "deny", "BLOCK"} {
		if _, err := ParseVerdict(s); err == nil {
			t.Errorf("ParseVerdict(%q) accepted", s)
		}
	}
	if Verdict(9).String() != "invalid" {
		t.Error("out of range verdict")
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct {
		name   string
		s      Signals
		want   Verdict
		reason string
		rule   int
	}{
		{"nothing known", Signals{}, Allow, ReasonDefault, -1},
		{"clean", Signals{Tor: False, Proxy: False, VPN: False, Score: 3, ScoreKnown: true}, Allow, ReasonDefault, -1},
		{"tor", Signals{Tor: True}, Block, "tor", 0},
		{"proxy", Signals{Proxy: True, Score: 10, ScoreKnown: true}, Block, "proxy", 1},
		{"score 90", Signals{Score: 90, ScoreKnown: true}, Block, "score_high", 2},
		{"score 89.9", Signals{Score: 89.9, ScoreKnown: true}, Challenge, "score_medium", 3},
		{"score 50", Signals{Score: 50, ScoreKnown: true}, Challenge, "score_medium", 3},
		{"score 49.99", Signals{Score: 49.99, ScoreKnown: true}, Allow, ReasonDefault, -1},
		{"score unknown but zero", Signals{Score: 95}, Allow, ReasonDefault, -1},
		{"datacenter alone", Signals{Datacenter: True, ASNType: "hosting"}, Allow, ReasonDefault, -1},
		{"vpn alone", Signals{VPN: True}, Allow, ReasonDefault, -1},
		{"relay alone", Signals{Relay: True}, Allow, ReasonDefault, -1},
		{"tor first", Signals{Tor: True, Proxy: True, Score: 99, ScoreKnown: true}, Block, "tor", 0},
	}
	for _, tt := range tests {
		d := p.Evaluate(tt.s)
		if d.Verdict != tt.want || d.Reason != tt.reason || d.Rule != tt.rule {
			t.Errorf("%s: got %+v, want %v %q %d", tt.name, d, tt.want, tt.reason, tt.rule)
		}
	}
	if d := p.ErrorDecision(); d.Verdict != Allow || d.Reason != ReasonOnError || d.Rule != -1 {
		t.Errorf("ErrorDecision = %+v", d)
	}
}

func TestConditions(t *testing.T) {
	s := Signals{Tor: False, VPN: True, Score: 70, ScoreKnown: true, ASN: 64500, ASNKnown: true, ASNType: "hosting"}
	tests := []struct {
		name string
		c    Conditions
		want bool
	}{
		{"empty matches", Conditions{}, true},
		{"tor false known", Conditions{Tor: False}, true},
		{"tor true", Conditions{Tor: True}, false},
		{"proxy false unknown", Conditions{Proxy: False}, false},
		{"proxy true unknown", Conditions{Proxy: True}, false},
		{"and", Conditions{VPN: True, Tor: False}, true},
		{"and fails", Conditions{VPN: True, Tor: True}, false},
		{"score gte", Conditions{Score: ScoreCond{GTE: 70, HasGTE: true}}, true},
		{"score gt", Conditions{Score: ScoreCond{GT: 70, HasGT: true}}, false},
		{"score lt", Conditions{Score: ScoreCond{LT: 70, HasLT: true}}, false},
		{"score lte", Conditions{Score: ScoreCond{LTE: 70, HasLTE: true}}, true},
		{"score band", Conditions{Score: ScoreCond{GTE: 50, LT: 90, HasGTE: true, HasLT: true}}, true},
		{"score band miss", Conditions{Score: ScoreCond{GTE: 80, LT: 90, HasGTE: true, HasLT: true}}, false},
		{"score gte 0", Conditions{Score: ScoreCond{HasGTE: true}}, true},
		{"asn in", Conditions{ASNIn: []uint32{1, 64500, 70000}}, true},
		{"asn not in", Conditions{ASNIn: []uint32{1, 2}}, false},
		{"asn type", Conditions{ASNTypeIn: []string{"isp", "hosting"}}, true},
		{"asn type miss", Conditions{ASNTypeIn: []string{"isp"}}, false},
	}
	for _, tt := range tests {
		if got := tt.c.Match(&s); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
	unknown := Signals{}
	for _, c := range []Conditions{
		{Score: ScoreCond{HasGTE: true}},
		{Score: ScoreCond{LT: 100, HasLT: true}},
		{ASNIn: []uint32{0}},
		{ASNTypeIn: []string{""}},
		{Datacenter: False},
	} {
		if c.Match(&unknown) {
			t.Errorf("%+v matched unknown signals", c)
		}
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	p := DefaultPolicy()
	p.Rules = append(p.Rules, Rule{Name: "hosting_asn", When: Conditions{ASNIn: []uint32{1, 64500}, ASNTypeIn: []string{"hosting"}}, Action: Flag})
	s := Signals{Tor: False, Proxy: False, Score: 12, ScoreKnown: true, ASN: 64500, ASNKnown: true, ASNType: "hosting"}
	var d Decision
	if n := testing.AllocsPerRun(1000, func() { d = p.Evaluate(s) }); n != 0 {
		t.Fatalf("Evaluate allocates %v times per run", n)
	}
	if d.Reason != "hosting_asn" || d.Verdict != Flag {
		t.Fatalf("decision %+v", d)
	}
}

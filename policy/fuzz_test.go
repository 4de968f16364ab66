package policy

import (
	"strings"
	"testing"

	"github.com/ipveil/ipveil/internal/jsoncfg"
)

func fuzzProviders(t testing.TB) []*Provider {
	var ps []*Provider
	for _, name := range PresetNames() {
		ps = append(ps, mustPreset(t, name))
	}
	small := flat()
	small.MaxBodyBytes = 64
	small.ErrorPath, small.StatusPath, small.StatusOK, small.MessagePath = "error", "status", []string{"ok"}, "message"
	tags := flat()
	tags.Fields.Tor = FieldSpec{Paths: []string{"tags", "#.kind"}, Match: MatchContains, Values: []string{"tor"}}
	tags.Fields.VPN = FieldSpec{Paths: []string{"a.b.c"}, Match: MatchEquals, Values: []string{"vpn", "1"}, Unless: []string{"x", "@reverse"}}
	tags.Fields.Proxy = FieldSpec{Paths: []string{"p"}, Absent: False}
	return append(ps, flat(), small, tags)
}

// FuzzExtract checks that no answer makes Extract panic, that an answer
// larger than the limit never passes, and that accepted signals are in range.
func FuzzExtract(f *testing.F) {
	for _, name := range PresetNames() {
		f.Add(200, fixture(f, name))
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `{"tor":"yes","score":"85","asn":"AS13335","asn_type":"Hosting"}`,
		`{"error":"quota exceeded"}`, `{"status":"denied","message":"limit"}`, `{"tags":["tor","vpn"]}`,
		`{"score":1e308,"asn":4294967295}`, `{"a":{"b":{"c":["vpn"]}}}`, "\xef\xbb\xbf{}", `{"tor":tru`,
	} {
		f.Add(200, []byte(s))
	}
	f.Add(429, []byte(`{}`))
	f.Add(0, []byte(nil))
	providers := fuzzProviders(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		for _, p := range providers {
			s, err := Extract(p, status, body)
			ok2xx := status >= 200 && status <= 299
			if ok2xx && len(body) > p.BodyLimit() && KindOf(err) != KindTooLarge {
				t.Fatalf("%s: %d-byte body over a %d-byte limit gave %v", p.Preset, len(body), p.BodyLimit(), err)
			}
			if err != nil {
				if s != (Signals{}) {
					t.Fatalf("%s: signals %+v returned with error %v", p.Preset, s, err)
				}
				if KindOf(err) == KindNone || KindOf(err) == KindProviderError && !strings.HasPrefix(err.Error(), "reputation lookup failed") {
					t.Fatalf("%s: untyped error %v", p.Preset, err)
				}
				continue
			}
			if !ok2xx || len(body) > p.BodyLimit() || !s.AnyKnown() {
				t.Fatalf("%s: status %d, %d bytes accepted as %+v", p.Preset, status, len(body), s)
			}
			if s.ScoreKnown && !(s.Score >= 0 && s.Score <= 100) || !s.ScoreKnown && s.Score != 0 {
				t.Fatalf("%s: score %v known=%v", p.Preset, s.Score, s.ScoreKnown)
			}
			if s.ASNKnown == (s.ASN == 0) {
				t.Fatalf("%s: asn %v known=%v", p.Preset, s.ASN, s.ASNKnown)
			}
			if len(s.ASNType) > maxASNType || s.ASNType != strings.ToLower(s.ASNType) || s.ASNType != strings.TrimSpace(s.ASNType) {
				t.Fatalf("%s: asn_type %q", p.Preset, s.ASNType)
			}
			for _, v := range []Tri{s.Tor, s.Proxy, s.VPN, s.Relay, s.Datacenter} {
				if v > True {
					t.Fatalf("%s: tri %d", p.Preset, v)
				}
			}
			DefaultPolicy().Evaluate(s)
		}
	})
}

// FuzzParsePolicy checks that no configuration makes ParsePolicy panic and
// that an accepted policy is well formed.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"rules":[]}`, `{"default":"flag","on_error":"block"}`,
		`{"rules":[{"name":"tor","when":{"tor":true},"action":"block"}]}`,
		`{"rules":[{"name":"m","when":{"score":{"gte":50,"lt":90}},"action":"challenge","difficulty":20}]}`,
		`{"rules":[{"name":"a","when":{"asn":{"in":[1,2,3]},"asn_type":{"in":["isp"]}},"action":"flag"}]}`,
		`{"rules":[{"name":"a","when":{"asn":13335,"asn_type":"hosting","vpn":false,"relay":true,"proxy":true,"datacenter":false},"action":"allow"}]}`,
		`{"rules":[{"name":"a","when":{"score":90},"action":"block"},{"name":"a","when":{},"action":"x"}]}`,
		`{"rules":[1,null,"x",[],{"name":5}]}`,
	} {
		f.Add([]byte(s))
	}
	probes := []Signals{
		{}, {Tor: True}, {Proxy: True, VPN: False}, {Score: 95, ScoreKnown: true},
		{ASN: 2, ASNKnown: true, ASNType: "isp", Datacenter: True, Relay: True, Score: 50, ScoreKnown: true},
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var errs jsoncfg.Errors
		p := ParsePolicy(jsoncfg.Parse(doc, &errs))
		if p == nil {
			t.Fatal("nil policy")
		}
		for _, pr := range errs.Problems() {
			if pr.Msg == "" {
				t.Fatalf("empty message at %q", pr.Path)
			}
		}
		if errs.Len() > 0 {
			return
		}
		names := map[string]bool{}
		for _, r := range p.Rules {
			if !validRuleName(r.Name) || names[r.Name] || r.When.Empty() || r.Action >= verdictCount ||
				r.Difficulty != 0 && r.Action != Challenge || r.Difficulty < 0 || r.Difficulty > MaxDifficulty {
				t.Fatalf("accepted bad rule %+v", r)
			}
			names[r.Name] = true
		}
		for _, s := range probes {
			d := p.Evaluate(s)
			if d.Rule >= 0 && p.Rules[d.Rule].Name != d.Reason || d.Rule < 0 && d.Reason != ReasonDefault {
				t.Fatalf("decision %+v", d)
			}
		}
	})
}

// FuzzParseProvider checks that no configuration makes ParseProvider panic
// and that an accepted provider builds requests and reads answers safely.
func FuzzParseProvider(f *testing.F) {
	for _, s := range []string{
		`{"cluster":"c"}`, `{"preset":"custom"}`,
		`{"preset":"maxmind","cluster":"c","fields":{"tor":null,"proxy":{"path":["a","b"],"unless":"c","absent":true}}}`,
		`{"preset":"custom","cluster":"c","authority":"a","path":"/{ip}?k=${K}","method":"POST","body":"{\"ip\":\"{ip}\"}","headers":{"X-K":"${K}","accept":null},"fields":{"vpn":{"path":"tags","contains":["vpn"]},"asn":"asn"},"status_path":"s","status_ok":["ok"],"quota_statuses":[402]}`,
		`{"cluster":"c","fields":{"tor":"@reverse|0","score":"..0","asn":"#(a>1).b"},"score_scale":100,"timeout_ms":5,"max_body_bytes":100}`,
	} {
		f.Add([]byte(s))
	}
	body := fixture(f, "proxycheck")
	lookup := func(string) (string, bool) { return "k/e y", true }
	f.Fuzz(func(t *testing.T, doc []byte) {
		var errs jsoncfg.Errors
		p := ParseProvider(jsoncfg.Parse(doc, &errs))
		if p == nil {
			t.Fatal("nil provider")
		}
		if errs.Len() > 0 {
			return
		}
		if p.Cluster == "" || p.Authority == "" || p.Path == "" || p.Path[0] != '/' ||
			p.TimeoutMs < 1 || p.TimeoutMs > 60000 || p.MaxBodyBytes < 1 || p.ScoreScale <= 0 {
			t.Fatalf("accepted bad provider %+v", p)
		}
		e, err := p.Expand(lookup)
		if err != nil {
			t.Fatalf("accepted template does not expand: %v", err)
		}
		if path := e.RequestPath("2001:db8::1"); strings.ContainsAny(path, " \r\n") {
			t.Fatalf("request path %q", path)
		}
		for _, h := range e.Headers {
			if !validHeaderName(h[0]) || strings.ContainsAny(h[1], "\r\n") {
				t.Fatalf("header %q", h)
			}
		}
		Extract(p, 200, body)
		Extract(p, 200, []byte(`{"a":[1,{"b":2}],"tags":["vpn"],"s":"ok"}`))
	})
}

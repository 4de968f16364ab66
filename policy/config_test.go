package policy

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ipveil/ipveil/internal/jsoncfg"
)

func parsePolicyDoc(t testing.TB, js string) (*Policy, []jsoncfg.Problem) {
	t.Helper()
	var errs jsoncfg.Errors
	root := jsoncfg.Parse([]byte(`{"policy":`+js+`}`), &errs)
	p := ParsePolicy(root.Object("policy"))
	return p, errs.Problems()
}

func parseProviderDoc(t testing.TB, js string) (*Provider, []jsoncfg.Problem) {
	t.Helper()
	var errs jsoncfg.Errors
	root := jsoncfg.Parse([]byte(`{"provider":`+js+`}`), &errs)
	p := ParseProvider(root.Object("provider"))
	return p, errs.Problems()
}

// wantProblem checks that problems hold exactly one problem, at path, whose
// message starts with msg.
func wantProblem(t *testing.T, doc string, problems []jsoncfg.Problem, path, msg string) {
	t.Helper()
	if len(problems) != 1 || problems[0].Path != path || !strings.HasPrefix(problems[0].Msg, msg) {
		t.Errorf("%s\n got  %v\n want [%s: %s…]", doc, problems, path, msg)
	}
}

func TestParsePolicyDefaults(t *testing.T) {
	p, problems := parsePolicyDoc(t, `{}`)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	if !reflect.DeepEqual(p, DefaultPolicy()) {
		t.Errorf("got %+v, want the default policy", p)
	}
	p, problems = parsePolicyDoc(t, `{"rules": [], "default": "challenge", "on_error": "block"}`)
	if len(problems) != 0 || len(p.Rules) != 0 || p.Default != Challenge || p.OnError != Block {
		t.Errorf("%+v %v", p, problems)
	}
	if d := p.Evaluate(Signals{Tor: True}); d.Verdict != Challenge || d.Reason != ReasonDefault {
		t.Errorf("decision %+v", d)
	}
}

func TestParsePolicyRules(t *testing.T) {
	p, problems := parsePolicyDoc(t, `{
		"rules": [
			{"name": "tor", "when": {"tor": true}, "action": "block"},
			{"name": "known-good", "when": {"asn": {"in": [64500, 13335, 64500]}, "tor": false}, "action": "allow"},
			{"name": "hosting", "when": {"asn_type": {"in": ["Hosting", "cdn"]}, "datacenter": true}, "action": "flag"},
			{"name": "mid", "when": {"score": {"gte": 50, "lt": 90}}, "action": "challenge", "difficulty": 18},
			{"name": "hi", "when": {"score": 90}, "action": "block"},
			{"name": "one.asn", "when": {"asn": 64501, "asn_type": "ISP", "vpn": true, "relay": false, "proxy": false}, "action": "flag"}
		],
		"default": "allow",
		"on_error": "flag"
	}`)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	want := &Policy{
		Rules: []Rule{
			{Name: "tor", When: Conditions{Tor: True}, Action: Block},
			{Name: "known-good", When: Conditions{Tor: False, ASNIn: []uint32{13335, 64500}}, Action: Allow},
			{Name: "hosting", When: Conditions{Datacenter: True, ASNTypeIn: []string{"hosting", "cdn"}}, Action: Flag},
			{Name: "mid", When: Conditions{Score: ScoreCond{GTE: 50, LT: 90, HasGTE: true, HasLT: true}}, Action: Challenge, Difficulty: 18},
			{Name: "hi", When: Conditions{Score: ScoreCond{GTE: 90, HasGTE: true}}, Action: Block},
			{Name: "one.asn", When: Conditions{VPN: True, Relay: False, Proxy: False, ASNIn: []uint32{64501}, ASNTypeIn: []string{"isp"}}, Action: Flag},
		},
		Default: Allow,
		OnError: Flag,
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got\n %+v\nwant\n %+v", p, want)
	}
	d := p.Evaluate(Signals{Score: 60, ScoreKnown: true})
	if d.Reason != "mid" || d.Difficulty != 18 || d.Rule != 3 {
		t.Errorf("decision %+v", d)
	}
}

func TestParsePolicyProblems(t *testing.T) {
	tests := []struct{ doc, path, msg string }{
		{`{"default": "deny"}`, "policy.default", `must be one of "allow", "challenge", "block", "flag", got "deny"`},
		{`{"on_error": 1}`, "policy.on_error", "must be a string"},
		{`{"rules": {}}`, "policy.rules", "must be an array"},
		{`{"rules": [1]}`, "policy.rules[0]", "must be an object"},
		{`{"defualt": "allow"}`, "policy.defualt", "unknown key"},
		{`{"rules": [{"when": {"tor": true}, "action": "block"}]}`, "policy.rules[0].name", "required"},
		{`{"rules": [{"name": "", "when": {"tor": true}, "action": "block"}]}`, "policy.rules[0].name", "must be 1 to 64 characters"},
		{`{"rules": [{"name": "a b", "when": {"tor": true}, "action": "block"}]}`, "policy.rules[0].name", "must be 1 to 64 characters"},
		{`{"rules": [{"name": "default", "when": {"tor": true}, "action": "block"}]}`, "policy.rules[0].name", `"default" is reserved`},
		{`{"rules": [{"name": "a", "when": {"tor": true}, "action": "block"}, {"name": "a", "when": {"vpn": true}, "action": "flag"}]}`, "policy.rules[1].name", "duplicates the name of policy rule 0"},
		{`{"rules": [{"name": "a", "when": {"tor": true}}]}`, "policy.rules[0].action", "required"},
		{`{"rules": [{"name": "a", "when": {"tor": true}, "action": "deny"}]}`, "policy.rules[0].action", "must be one of"},
		{`{"rules": [{"name": "a", "action": "block"}]}`, "policy.rules[0].when", "required"},
		{`{"rules": [{"name": "a", "when": {}, "action": "block"}]}`, "policy.rules[0].when", "must hold at least one condition"},
		{`{"rules": [{"name": "a", "when": [], "action": "block"}]}`, "policy.rules[0].when", "must be an object"},
		{`{"rules": [{"name": "a", "when": {"tor": "yes"}, "action": "block"}]}`, "policy.rules[0].when.tor", "must be true or false, got a string"},
		{`{"rules": [{"name": "a", "when": {"datacenter": 1}, "action": "block"}]}`, "policy.rules[0].when.datacenter", "must be true or false"},
		{`{"rules": [{"name": "a", "when": {"torr": true}, "action": "block"}]}`, "policy.rules[0].when.torr", "unknown key"},
		{`{"rules": [{"name": "a", "when": {"tor": true}, "action": "block", "difficulty": 4}]}`, "policy.rules[0].difficulty", "applies only to action \"challenge\""},
		{`{"rules": [{"name": "a", "when": {"tor": true}, "action": "challenge", "difficulty": 0}]}`, "policy.rules[0].difficulty", "must be between 1 and 32"},
		{`{"rules": [{"name": "a", "when": {"tor": true}, "action": "challenge", "difficulty": 2.5}]}`, "policy.rules[0].difficulty", "must be a whole number"},
		{`{"rules": [{"name": "a", "when": {"tor": true}, "action": "block", "comment": "x"}]}`, "policy.rules[0].comment", "unknown key"},
		{`{"rules": [{"name": "a", "when": {"tor": true}, "action": "block"}, {"name": "b", "when": {"score": {"gte": "50"}}, "action": "block"}]}`, "policy.rules[1].when.score.gte", "must be a number, got a string"},
		{`{"rules": [{"name": "a", "when": {"score": {"gte": 150}}, "action": "block"}]}`, "policy.rules[0].when.score.gte", "must be between 0 and 100"},
		{`{"rules": [{"name": "a", "when": {"score": -1}, "action": "block"}]}`, "policy.rules[0].when.score", "must be between 0 and 100"},
		{`{"rules": [{"name": "a", "when": {"score": "high"}, "action": "block"}]}`, "policy.rules[0].when.score", "must be a number (meaning at least) or an object"},
		{`{"rules": [{"name": "a", "when": {"score": {}}, "action": "block"}]}`, "policy.rules[0].when.score", "must hold at least one of gte, gt, lt, lte"},
		{`{"rules": [{"name": "a", "when": {"score": {"gte": 90, "lt": 50}}, "action": "block"}]}`, "policy.rules[0].when.score", "can never match"},
		{`{"rules": [{"name": "a", "when": {"score": {"gt": 50, "lte": 50}}, "action": "block"}]}`, "policy.rules[0].when.score", "can never match"},
		{`{"rules": [{"name": "a", "when": {"score": {"min": 5}}, "action": "block"}]}`, "policy.rules[0].when.score.min", "unknown key"},
		{`{"rules": [{"name": "a", "when": {"asn": "AS13335"}, "action": "block"}]}`, "policy.rules[0].when.asn", "must be an AS number"},
		{`{"rules": [{"name": "a", "when": {"asn": 0}, "action": "block"}]}`, "policy.rules[0].when.asn", "must be an AS number"},
		{`{"rules": [{"name": "a", "when": {"asn": {"in": [1, 2.5]}}, "action": "block"}]}`, "policy.rules[0].when.asn.in[1]", "must be an AS number"},
		{`{"rules": [{"name": "a", "when": {"asn": {"in": []}}, "action": "block"}]}`, "policy.rules[0].when.asn.in", "must not be empty"},
		{`{"rules": [{"name": "a", "when": {"asn": {}}, "action": "block"}]}`, "policy.rules[0].when.asn.in", "required"},
		{`{"rules": [{"name": "a", "when": {"asn": {"in": 5}}, "action": "block"}]}`, "policy.rules[0].when.asn.in", "must be an array"},
		{`{"rules": [{"name": "a", "when": {"asn_type": ""}, "action": "block"}]}`, "policy.rules[0].when.asn_type", "must be a non-empty string"},
		{`{"rules": [{"name": "a", "when": {"asn_type": {"in": ["isp", 3]}}, "action": "block"}]}`, "policy.rules[0].when.asn_type.in[1]", "must be a non-empty string"},
		{`{"rules": [{"name": "a", "when": {"asn_type": {}}, "action": "block"}]}`, "policy.rules[0].when.asn_type.in", "required"},
	}
	for _, tt := range tests {
		_, problems := parsePolicyDoc(t, tt.doc)
		wantProblem(t, tt.doc, problems, tt.path, tt.msg)
	}
}

func TestParsePolicyDropsBadRules(t *testing.T) {
	p, problems := parsePolicyDoc(t, `{"rules": [{"name": "a", "when": {"tor": "x"}, "action": "block"}, {"name": "b", "when": {"tor": true}, "action": "block"}]}`)
	if len(problems) != 1 || len(p.Rules) != 1 || p.Rules[0].Name != "b" {
		t.Errorf("%+v %v", p.Rules, problems)
	}
}

func TestParseProviderPreset(t *testing.T) {
	p, problems := parseProviderDoc(t, `{"cluster": "ipasis"}`)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	want := mustPreset(t, DefaultPreset)
	want.Cluster = "ipasis"
	want.TimeoutMs = DefaultTimeoutMs
	want.MaxBodyBytes = DefaultMaxBodyBytes
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got\n %+v\nwant\n %+v", p, want)
	}
	for _, name := range PresetNames() {
		if _, problems := parseProviderDoc(t, `{"preset": "`+name+`", "cluster": "c"}`); len(problems) != 0 {
			t.Errorf("preset %s: %v", name, problems)
		}
	}
}

func TestParseProviderOverrides(t *testing.T) {
	p, problems := parseProviderDoc(t, `{
		"preset": "ipqualityscore",
		"cluster": "outbound|443||www.ipqualityscore.com",
		"authority": "mock.local:8080",
		"method": "POST",
		"path": "/api/json/ip?strictness=1",
		"body": "ip={ip}",
		"headers": {"IPQS-KEY": "${IPQS_API_KEY}", "Accept": "application/json"},
		"timeout_ms": 250,
		"max_body_bytes": 4096,
		"fields": {
			"proxy": {"path": ["proxy", "active_proxy"], "unless": "vpn"},
			"relay": {"path": "tags", "contains": ["Relay", "icloud"]},
			"datacenter": {"path": "connection_type", "equals": "Data Center", "absent": false},
			"tor": null,
			"score": {"path": "fraud_score"},
			"asn_type": "connection_type"
		},
		"score_scale": 100,
		"error_path": null,
		"status_path": "success",
		"status_ok": ["TRUE"],
		"message_path": "message",
		"quota_statuses": [402, 403]
	}`)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	if p.Preset != "ipqualityscore" || p.Cluster != "outbound|443||www.ipqualityscore.com" || p.Authority != "mock.local:8080" ||
		p.Method != "POST" || p.Body != "ip={ip}" || p.TimeoutMs != 250 || p.MaxBodyBytes != 4096 || p.ScoreScale != 100 {
		t.Errorf("%+v", p)
	}
	if !reflect.DeepEqual(p.Headers, [][2]string{{"ipqs-key", "${IPQS_API_KEY}"}, {"accept", "application/json"}}) {
		t.Errorf("headers %q", p.Headers)
	}
	f := p.Fields
	if f.Tor.Set() || !reflect.DeepEqual(f.Proxy, FieldSpec{Paths: []string{"proxy", "active_proxy"}, Unless: []string{"vpn"}}) ||
		!reflect.DeepEqual(f.Relay, FieldSpec{Paths: []string{"tags"}, Match: MatchContains, Values: []string{"relay", "icloud"}}) ||
		!reflect.DeepEqual(f.Datacenter, FieldSpec{Paths: []string{"connection_type"}, Match: MatchEquals, Values: []string{"data center"}, Absent: False}) ||
		f.VPN.Paths[0] != "vpn" || f.ASN.Paths[0] != "ASN" {
		t.Errorf("fields %+v", f)
	}
	if p.ErrorPath != "" || !reflect.DeepEqual(p.StatusOK, []string{"true"}) || !reflect.DeepEqual(p.QuotaStatuses, []int{402, 403}) {
		t.Errorf("error detection %+v", p)
	}
	// Headers: override by name, null removes.
	p, problems = parseProviderDoc(t, `{"preset": "abuseipdb", "cluster": "c", "headers": {"Key": "${OTHER}", "accept": null}}`)
	if len(problems) != 0 || !reflect.DeepEqual(p.Headers, [][2]string{{"key", "${OTHER}"}}) {
		t.Errorf("%q %v", p.Headers, problems)
	}
	// A custom provider.
	p, problems = parseProviderDoc(t, `{"preset": "custom", "cluster": "c", "authority": "api.example", "path": "/check/{ip}", "fields": {"tor": "is_tor"}}`)
	if len(problems) != 0 || p.Preset != CustomPreset || p.Method != "GET" || p.Fields.Tor.Paths[0] != "is_tor" || p.Fields.VPN.Set() {
		t.Errorf("%+v %v", p, problems)
	}
}

func TestParseProviderProblems(t *testing.T) {
	const c = `"cluster": "c", `
	tests := []struct{ doc, path, msg string }{
		{`{}`, "provider.cluster", "required: name the Envoy cluster that reaches api.ipasis.com"},
		{`{"cluster": ""}`, "provider.cluster", "required"},
		{`{"cluster": 5}`, "provider.cluster", "must be a string"},
		{`{` + c + `"preset": "ipasiss"}`, "provider.preset", `unknown preset "ipasiss": use one of "abuseipdb"`},
		{`{` + c + `"presets": "ipasis"}`, "provider.presets", "unknown key"},
		{`{` + c + `"authority": "https://api.example"}`, "provider.authority", "must be a host name"},
		{`{` + c + `"authority": ""}`, "provider.authority", "required"},
		{`{` + c + `"method": "PUT"}`, "provider.method", `must be one of "GET", "POST", got "PUT"`},
		{`{` + c + `"path": "v1/lookup?ip={ip}"}`, "provider.path", `must start with "/"`},
		{`{` + c + `"path": "/v1/lookup"}`, "provider.path", "must contain {ip}"},
		{`{` + c + `"path": "/v1/${ip}"}`, "provider.path", "${ip}: write {ip}"},
		{`{` + c + `"path": "/v1/{ip}?k=${KEY"}`, "provider.path", `"${" is not closed`},
		{`{` + c + `"path": "/v1/{ip}?k=${key}"}`, "provider.path", "${key}: variable names use upper-case"},
		{`{` + c + `"path": "/v1/{ip} x"}`, "provider.path", "must not contain spaces"},
		{`{` + c + `"path": ""}`, "provider.path", "required"},
		{`{` + c + `"body": "ip={ip}"}`, "provider.body", `a body is only sent with method "POST"`},
		{`{` + c + `"headers": {"x-key": 5}}`, "provider.headers.x-key", "must be a string"},
		{`{` + c + `"headers": {":path": "/x"}}`, "provider.headers.:path", "not a valid header name"},
		{`{` + c + `"headers": {"Host": "x"}}`, "provider.headers.Host", "is set by Envoy"},
		{`{` + c + `"headers": {"x-key": "${lower}"}}`, "provider.headers.x-key", "${lower}: variable names"},
		{`{` + c + `"headers": {"x-key": "a\r\nb: c"}}`, "provider.headers.x-key", "must not contain line breaks"},
		{`{` + c + `"headers": []}`, "provider.headers", "must be an object"},
		{`{` + c + `"timeout_ms": 0}`, "provider.timeout_ms", "must be between 1 and 60000"},
		{`{` + c + `"timeout_ms": 60001}`, "provider.timeout_ms", "must be between 1 and 60000"},
		{`{` + c + `"timeout_ms": "500"}`, "provider.timeout_ms", "must be a number"},
		{`{` + c + `"max_body_bytes": 0}`, "provider.max_body_bytes", "must be between 1 and 1048576"},
		{`{` + c + `"score_scale": 0}`, "provider.score_scale", "must be greater than 0"},
		{`{` + c + `"score_scale": -1}`, "provider.score_scale", "must be between 0 and 1e+06"},
		{`{` + c + `"fields": {"tor": ""}}`, "provider.fields.tor", "must be a non-empty gjson path"},
		{`{` + c + `"fields": {"tor": 5}}`, "provider.fields.tor", "must be a gjson path or an object"},
		{`{` + c + `"fields": {"tor": {}}}`, "provider.fields.tor.path", "required"},
		{`{` + c + `"fields": {"tor": {"path": []}}}`, "provider.fields.tor.path", "must not be empty"},
		{`{` + c + `"fields": {"tor": {"path": ["a", " "]}}}`, "provider.fields.tor.path[1]", "must be a non-empty gjson path"},
		{`{` + c + `"fields": {"tor": {"path": ["a", 1]}}}`, "provider.fields.tor.path[1]", "must be a string"},
		{`{` + c + `"fields": {"tor": {"path": "a", "equals": "x", "contains": "y"}}}`, "provider.fields.tor.contains", "use either equals or contains"},
		{`{` + c + `"fields": {"tor": {"path": "a", "equals": 5}}}`, "provider.fields.tor.equals", "must be a string or an array of strings"},
		{`{` + c + `"fields": {"tor": {"path": "a", "absent": "no"}}}`, "provider.fields.tor.absent", "must be true or false"},
		{`{` + c + `"fields": {"tor": {"path": "a", "matches": "x"}}}`, "provider.fields.tor.matches", "unknown key"},
		{`{` + c + `"fields": {"score": {"path": "a", "equals": "x"}}}`, "provider.fields.score.equals", "applies only to tor, proxy, vpn, relay and datacenter"},
		{`{` + c + `"fields": {"asn": {"path": "a", "absent": true}}}`, "provider.fields.asn.absent", "applies only to"},
		{`{` + c + `"fields": {"hosting": "x"}}`, "provider.fields.hosting", "unknown key"},
		{`{` + c + `"preset": "ipinfo", "fields": {"tor": null, "proxy": null, "vpn": null, "relay": null, "datacenter": null}}`, "provider.fields", "must map at least one signal"},
		{`{` + c + `"error_path": ""}`, "provider.error_path", "must be a non-empty gjson path"},
		{`{` + c + `"status_path": "status"}`, "provider.status_ok", "required with status_path"},
		{`{` + c + `"status_path": "status", "status_ok": []}`, "provider.status_ok", "must list at least one value"},
		{`{` + c + `"quota_statuses": [402, 200]}`, "provider.quota_statuses[1]", "must be an HTTP error status"},
		{`{` + c + `"quota_statuses": 402}`, "provider.quota_statuses", "must be an array"},
	}
	for _, tt := range tests {
		_, problems := parseProviderDoc(t, tt.doc)
		wantProblem(t, tt.doc, problems, tt.path, tt.msg)
	}
}

func TestParseProviderCustomNeedsEverything(t *testing.T) {
	_, problems := parseProviderDoc(t, `{"preset": "custom"}`)
	var paths []string
	for _, p := range problems {
		paths = append(paths, p.Path)
	}
	want := []string{"provider.cluster", "provider.authority", "provider.path", "provider.fields"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("got %v, want %v", problems, want)
	}
}

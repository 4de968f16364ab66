package policy

import (
	"strings"
	"testing"
)

// flat is a provider reading a flat answer, used by the coercion tests.
func flat() *Provider {
	return &Provider{
		Preset: CustomPreset, Method: "GET", Path: "/{ip}", Authority: "api.example",
		Fields: Fields{
			Tor:        at("tor"),
			Proxy:      at("proxy"),
			VPN:        at("vpn"),
			Relay:      at("relay"),
			Datacenter: at("dc"),
			Score:      at("score"),
			ASN:        at("asn"),
			ASNType:    at("asn_type"),
		},
		ScoreScale: 1,
	}
}

func TestExtractTriCoercion(t *testing.T) {
	tests := []struct {
		value string
		want  Tri
	}{
		{`true`, True}, {`false`, False},
		{`1`, True}, {`0`, False}, {`1.0`, True}, {`2`, Unknown}, {`-1`, Unknown},
		{`"true"`, True}, {`"TRUE"`, True}, {`" yes "`, True}, {`"y"`, True}, {`"on"`, True}, {`"1"`, True},
		{`"false"`, False}, {`"No"`, False}, {`"n"`, False}, {`"off"`, False}, {`"0"`, False},
		{`""`, Unknown}, {`"maybe"`, Unknown}, {`"2"`, Unknown},
		{`null`, Unknown}, {`[]`, Unknown}, {`[true]`, Unknown}, {`{}`, Unknown}, {`{"a":true}`, Unknown},
	}
	for _, tt := range tests {
		body := `{"tor":` + tt.value + `,"asn":1}`
		s, err := Extract(flat(), 200, []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if s.Tor != tt.want {
			t.Errorf("tor=%s: got %v, want %v", tt.value, s.Tor, tt.want)
		}
	}
}

func TestExtractScoreASNCoercion(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		scale     float64
		score     float64
		scoreOK   bool
		asn       uint32
		asnOK     bool
		asnType   string
		wantError Kind
	}{
		{name: "numbers", body: `{"score":85,"asn":13335,"asn_type":"hosting"}`, score: 85, scoreOK: true, asn: 13335, asnOK: true, asnType: "hosting"},
		{name: "strings", body: `{"score":"85","asn":"AS13335","asn_type":" ISP "}`, score: 85, scoreOK: true, asn: 13335, asnOK: true, asnType: "isp"},
		{name: "percent", body: `{"score":"42.5 %","asn":"as 64500"}`, score: 42.5, scoreOK: true, asn: 64500, asnOK: true},
		{name: "asn with org", body: `{"asn":"AS15169 Example LLC"}`, asn: 15169, asnOK: true},
		{name: "asn digits string", body: `{"asn":"  64512 "}`, asn: 64512, asnOK: true},
		{name: "unit score scaled", body: `{"score":0.87,"asn":1}`, scale: 100, score: 87, scoreOK: true, asn: 1, asnOK: true},
		{name: "unit score rounding", body: `{"score":1,"asn":1}`, scale: 100, score: 100, scoreOK: true, asn: 1, asnOK: true},
		{name: "score out of range", body: `{"score":250,"asn":1}`, asn: 1, asnOK: true},
		{name: "score negative", body: `{"score":-1,"asn":1}`, asn: 1, asnOK: true},
		{name: "score words", body: `{"score":"high","asn":1}`, asn: 1, asnOK: true},
		{name: "score nan", body: `{"score":"NaN","asn":1}`, asn: 1, asnOK: true},
		{name: "score inf", body: `{"score":"inf","asn":1}`, asn: 1, asnOK: true},
		{name: "score hex", body: `{"score":"0x10","asn":1}`, asn: 1, asnOK: true},
		{name: "score huge", body: `{"score":1e400,"asn":1}`, asn: 1, asnOK: true},
		{name: "score bool", body: `{"score":true,"asn":1}`, asn: 1, asnOK: true},
		{name: "score null", body: `{"score":null,"asn":1}`, asn: 1, asnOK: true},
		{name: "asn zero", body: `{"asn":0,"score":1}`, score: 1, scoreOK: true},
		{name: "asn AS0", body: `{"asn":"AS0","score":1}`, score: 1, scoreOK: true},
		{name: "asn fraction", body: `{"asn":1.5,"score":1}`, score: 1, scoreOK: true},
		{name: "asn too big", body: `{"asn":4294967296,"score":1}`, score: 1, scoreOK: true},
		{name: "asn max", body: `{"asn":"AS4294967295"}`, asn: 4294967295, asnOK: true},
		{name: "asn junk", body: `{"asn":"ASX1","score":1}`, score: 1, scoreOK: true},
		{name: "asn trailing junk", body: `{"asn":"13335x","score":1}`, score: 1, scoreOK: true},
		{name: "asn negative", body: `{"asn":-5,"score":1}`, score: 1, scoreOK: true},
		{name: "asn_type number", body: `{"asn_type":5,"score":1}`, score: 1, scoreOK: true},
		{name: "asn_type empty", body: `{"asn_type":"","score":1}`, score: 1, scoreOK: true},
		{name: "asn_type too long", body: `{"asn_type":"` + strings.Repeat("x", 65) + `","score":1}`, score: 1, scoreOK: true},
		{name: "nothing known", body: `{"score":null,"asn":"?","other":1}`, wantError: KindNoSignals},
		{name: "empty object", body: `{}`, wantError: KindNoSignals},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := flat()
			if tt.scale != 0 {
				p.ScoreScale = tt.scale
			}
			s, err := Extract(p, 200, []byte(tt.body))
			if KindOf(err) != tt.wantError {
				t.Fatalf("error %v, want kind %v", err, tt.wantError)
			}
			if s.ScoreKnown != tt.scoreOK || (tt.scoreOK && s.Score != tt.score) {
				t.Errorf("score %v/%v, want %v/%v", s.Score, s.ScoreKnown, tt.score, tt.scoreOK)
			}
			if s.ASNKnown != tt.asnOK || s.ASN != tt.asn {
				t.Errorf("asn %v/%v, want %v/%v", s.ASN, s.ASNKnown, tt.asn, tt.asnOK)
			}
			if s.ASNType != tt.asnType {
				t.Errorf("asn_type %q, want %q", s.ASNType, tt.asnType)
			}
		})
	}
}

func TestExtractMatchSpecs(t *testing.T) {
	p := flat()
	p.Fields = Fields{
		Tor:        FieldSpec{Paths: []string{"tags"}, Match: MatchContains, Values: []string{"tor"}},
		VPN:        FieldSpec{Paths: []string{"tags"}, Match: MatchContains, Values: []string{"vpn", "openvpn"}},
		Datacenter: FieldSpec{Paths: []string{"net.kind"}, Match: MatchEquals, Values: []string{"hosting", "cdn"}},
		Proxy:      FieldSpec{Paths: []string{"proxy"}, Unless: []string{"vpn_flag", "tor_flag"}},
		Relay:      FieldSpec{Paths: []string{"a", "b"}},
	}
	tests := []struct {
		body string
		want Signals
	}{
		{`{"tags":["Tor","bad"],"net":{"kind":"Hosting"}}`, Signals{Tor: True, VPN: False, Datacenter: True}},
		{`{"tags":[],"net":{"kind":"isp"}}`, Signals{Tor: False, VPN: False, Datacenter: False}},
		{`{"tags":["OpenVPN",1,null,{"x":1}]}`, Signals{Tor: False, VPN: True}},
		{`{"tags":"tor"}`, Signals{Tor: True, VPN: False}},
		{`{"tags":{"tor":true},"net":{"kind":null}}`, Signals{}},
		{`{"net":{"kind":""},"proxy":true}`, Signals{Proxy: True}},
		{`{"net":{"kind":7}}`, Signals{Datacenter: False}},
		{`{"proxy":"yes","vpn_flag":true}`, Signals{Proxy: False}},
		{`{"proxy":true,"vpn_flag":false,"tor_flag":"1"}`, Signals{Proxy: False}},
		{`{"proxy":true,"vpn_flag":null}`, Signals{Proxy: True}},
		{`{"proxy":false,"vpn_flag":true}`, Signals{Proxy: False}},
		// Several paths are ORed.
		{`{"a":false,"b":true}`, Signals{Relay: True}},
		{`{"a":false,"b":false}`, Signals{Relay: False}},
		{`{"a":false,"b":"?"}`, Signals{Relay: False}},
		{`{"a":null,"b":"?"}`, Signals{}},
	}
	for _, tt := range tests {
		got, err := Extract(p, 200, []byte(tt.body))
		if tt.want == (Signals{}) {
			if KindOf(err) != KindNoSignals {
				t.Errorf("%s: got %+v, %v; want no_signals", tt.body, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s:\n got  %+v %v\n want %+v", tt.body, got, err, tt.want)
		}
	}
}

func TestExtractAbsent(t *testing.T) {
	p := flat()
	p.Fields = Fields{Tor: FieldSpec{Paths: []string{"t"}, Absent: False}, VPN: at("v")}
	for body, want := range map[string]Tri{`{"v":1}`: False, `{"t":true}`: True, `{"t":null,"v":1}`: Unknown} {
		s, err := Extract(p, 200, []byte(body))
		if err != nil || s.Tor != want {
			t.Errorf("%s: tor %v (%v), want %v", body, s.Tor, err, want)
		}
	}
}

func TestExtractFailures(t *testing.T) {
	small := flat()
	small.MaxBodyBytes = 16
	quota := flat()
	quota.QuotaStatuses = []int{402}
	errBody := flat()
	errBody.ErrorPath = "error"
	errBody.MessagePath = "detail"
	statusBody := flat()
	statusBody.StatusPath = "meta.status"
	statusBody.StatusOK = []string{"ok"}
	tests := []struct {
		name   string
		p      *Provider
		status int
		body   string
		want   Kind
	}{
		{"500", flat(), 500, `{"tor":true}`, KindHTTPStatus},
		{"404", flat(), 404, ``, KindHTTPStatus},
		{"301", flat(), 301, ``, KindHTTPStatus},
		{"0", flat(), 0, ``, KindHTTPStatus},
		{"429", flat(), 429, `{"tor":true}`, KindQuota},
		{"402 listed", quota, 402, ``, KindQuota},
		{"402 unlisted", flat(), 402, ``, KindHTTPStatus},
		{"too large", small, 200, `{"tor":true,"pad":"xxxxxxxxxxxxxxxxxxxxx"}`, KindTooLarge},
		{"at limit", small, 200, `{"tor":true}    `, KindNone},
		{"empty", flat(), 200, ``, KindEmptyBody},
		{"blank", flat(), 204, " \n\t ", KindEmptyBody},
		{"not json", flat(), 200, `<html>rate limited</html>`, KindUnparsable},
		{"truncated", flat(), 200, `{"tor":tr`, KindUnparsable},
		{"array", flat(), 200, `[{"tor":true}]`, KindUnparsable},
		{"string", flat(), 200, `"tor"`, KindUnparsable},
		{"number", flat(), 200, `42`, KindUnparsable},
		{"trailing garbage", flat(), 200, `{"tor":true} x`, KindUnparsable},
		{"bom", flat(), 200, "\xef\xbb\xbf{\"tor\":true}", KindNone},
		{"error string", errBody, 200, `{"error":"boom"}`, KindProviderError},
		{"error quota via message", errBody, 200, `{"error":true,"detail":"Quota exceeded"}`, KindQuota},
		{"error object", errBody, 200, `{"error":{"code":7}}`, KindProviderError},
		{"error empty", errBody, 200, `{"error":"","tor":true}`, KindNone},
		{"error false", errBody, 200, `{"error":false,"tor":true}`, KindNone},
		{"error zero", errBody, 200, `{"error":0,"tor":true}`, KindNone},
		{"error empty array", errBody, 200, `{"error":[],"tor":true}`, KindNone},
		{"error empty object", errBody, 200, `{"error":{},"tor":true}`, KindNone},
		{"status ok", statusBody, 200, `{"meta":{"status":"OK"},"tor":true}`, KindNone},
		{"status missing", statusBody, 200, `{"tor":true}`, KindNone},
		{"status bad", statusBody, 200, `{"meta":{"status":"fail"},"tor":true}`, KindProviderError},
		{"status too many", statusBody, 200, `{"meta":{"status":"Too Many Requests"}}`, KindQuota},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Extract(tt.p, tt.status, []byte(tt.body))
			if got := KindOf(err); got != tt.want {
				t.Fatalf("kind %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}

// TestErrorsDoNotEchoTheBody checks that error messages never quote the
// provider's answer, which may carry the client address.
func TestErrorsDoNotEchoTheBody(t *testing.T) {
	p := flat()
	p.ErrorPath = "error"
	p.MessagePath = "error"
	const ip = "198.51.100.77"
	for _, status := range []int{200, 400, 429, 500} {
		_, err := Extract(p, status, []byte(`{"error":"quota exceeded for `+ip+`"}`))
		if err == nil || strings.Contains(err.Error(), ip) || strings.Contains(err.Error(), "quota exceeded for") {
			t.Errorf("status %d: error %q", status, err)
		}
	}
	for _, body := range []string{ip, `{"ip":"` + ip + `"}`, `["` + ip + `"]`} {
		if _, err := Extract(p, 200, []byte(body)); err == nil || strings.Contains(err.Error(), ip) {
			t.Errorf("%s: error %v", body, err)
		}
	}
}

func TestExtractKeepsNoReference(t *testing.T) {
	body := []byte(`{"asn_type":"hosting","tor":true}`)
	s, err := Extract(flat(), 200, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'x'
	}
	if s.ASNType != "hosting" {
		t.Fatalf("ASNType changed with the caller's buffer: %q", s.ASNType)
	}
}

func TestKinds(t *testing.T) {
	names := map[string]bool{}
	for _, k := range Kinds() {
		n := k.String()
		if names[n] || n == "" || strings.Trim(n, "abcdefghijklmnopqrstuvwxyz_") != "" {
			t.Errorf("kind %d: bad or duplicate name %q", k, n)
		}
		names[n] = true
	}
	for _, n := range []string{"http_status", "quota", "provider_error", "empty_body", "unparsable", "too_large", "timeout", "reset", "unknown_cluster"} {
		if !names[n] {
			t.Errorf("missing kind %q", n)
		}
	}
	if KindNone.String() != "none" || Kind(200).String() != "kind_200" {
		t.Error("String of none or out of range")
	}
	if KindOf(nil) != KindNone || KindOf(errString("x")) != KindProviderError {
		t.Error("KindOf")
	}
	e := &Error{Kind: KindTimeout, Status: 504, Detail: "d"}
	if e.Error() != "reputation lookup failed (timeout, HTTP 504): d" {
		t.Errorf("Error() = %q", e.Error())
	}
}

type errString string

func (e errString) Error() string { return string(e) }

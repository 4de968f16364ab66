package policy

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/ipveil/ipveil/internal/jsoncfg"
	"github.com/tidwall/gjson"
)

// ParseProvider reads the "provider" object of the configuration. It starts
// from the preset named by "preset" (default DefaultPreset; "custom" for
// none) and overrides it key by key:
//
//	preset          string   built-in provider to start from
//	cluster         string   Envoy cluster for the callout (required)
//	authority       string   :authority of the callout
//	method          string   "GET" or "POST"
//	path            string   :path template, starts with "/", contains {ip}
//	body            string   POST body template
//	headers         object   name → value template with ${ENV}; null removes a preset header
//	timeout_ms      integer  1..60000
//	max_body_bytes  integer  1..1048576
//	fields          object   signal → field spec, merged over the preset's; null removes
//	score_scale     number   multiplier bringing the score to 0..100
//	error_path      string   gjson path whose truthy value marks an error answer
//	status_path     string   gjson path to a status value
//	status_ok       [string] status values meaning success
//	message_path    string   gjson path to the provider's error message
//	quota_statuses  [int]    HTTP statuses, besides 429, meaning quota exhausted
//
// A field spec is a gjson path, or an object:
//
//	{"path": "p" | ["p1", "p2"],          paths tried in order (ORed for booleans)
//	 "equals": "v" | ["v1", …],           true when the value is one of these
//	 "contains": "v" | ["v1", …],         true when the array holds one of these
//	 "unless": "p" | ["p1", …],           a true value here turns the signal false
//	 "absent": false | true}              value when no path is present
//
// Only the boolean signals (tor, proxy, vpn, relay, datacenter) take
// equals, contains, unless and absent. Every problem is recorded in o's
// collector by JSON path; ParseProvider calls o.Done and always returns a
// usable Provider.
func ParseProvider(o *jsoncfg.Object) *Provider {
	name := o.String("preset", DefaultPreset)
	p, ok := Preset(name)
	switch {
	case ok:
	case name == CustomPreset:
		p = &Provider{Preset: CustomPreset, Method: "GET", ScoreScale: 1}
	default:
		o.Addf("preset", "unknown preset %q: use one of %s, or %q to describe the API yourself", safeName(name), quoted(PresetNames()), CustomPreset)
		// Go on from the default preset so that one typo does not bring a
		// cascade of "required" problems.
		p, _ = Preset(DefaultPreset)
	}

	n := o.Errs().Len()
	p.Cluster = o.String("cluster", "")
	if strings.TrimSpace(p.Cluster) == "" && o.Errs().Len() == n {
		o.Addf("cluster", "required: name the Envoy cluster that reaches %s (in Istio: outbound|443||%s)", orAPI(p.Authority), orAPI(p.Authority))
	}
	p.Authority = o.String("authority", p.Authority)
	if p.Authority == "" {
		o.Addf("authority", "required: the API's host name, e.g. api.example.com")
	} else if strings.ContainsAny(p.Authority, "/ \t\r\n@?#") {
		o.Addf("authority", "must be a host name with an optional port, without scheme or path")
	}
	p.Method = o.Enum("method", p.Method, "GET", "POST")

	p.Path = o.String("path", p.Path)
	p.Body = o.String("body", p.Body)
	bodyHasIP := false
	if p.Body != "" {
		if p.Method != "POST" {
			o.Addf("body", "a body is only sent with method \"POST\"")
		}
		if err := checkTemplate(p.Body); err != nil {
			o.Addf("body", "%s", err.Error())
		}
		bodyHasIP = strings.Contains(stripEnvRefs(p.Body), IPPlaceholder)
	}
	checkPath(o, p.Path, bodyHasIP)
	p.Headers = parseHeaders(o, p.Headers)

	p.TimeoutMs = uint32(o.Int("timeout_ms", int64(p.Timeout()), 1, 60000))
	p.MaxBodyBytes = int(o.Int("max_body_bytes", int64(p.BodyLimit()), 1, MaxMaxBodyBytes))
	if o.Has("score_scale") {
		s := o.Float("score_scale", p.ScoreScale, 0, 1e6)
		if s <= 0 {
			o.Addf("score_scale", "must be greater than 0 (e.g. 100 for a 0..1 score)")
		} else {
			p.ScoreScale = s
		}
	}
	if p.ScoreScale == 0 {
		p.ScoreScale = 1
	}

	parseFields(o, &p.Fields)

	p.ErrorPath = optPath(o, "error_path", p.ErrorPath)
	p.StatusPath = optPath(o, "status_path", p.StatusPath)
	statusOKGiven := o.Has("status_ok")
	if statusOKGiven {
		p.StatusOK = lowerAll(o.Strings("status_ok", nil))
		if len(p.StatusOK) == 0 && o.Raw("status_ok").IsArray() {
			o.Addf("status_ok", "must list at least one value meaning success, e.g. [\"ok\"]")
		}
	}
	if p.StatusPath != "" && len(p.StatusOK) == 0 && !statusOKGiven {
		o.Addf("status_ok", "required with status_path: list the values meaning success, e.g. [\"ok\"]")
	}
	p.MessagePath = optPath(o, "message_path", p.MessagePath)
	if r := o.Raw("quota_statuses"); r.Exists() && r.Type != gjson.Null {
		p.QuotaStatuses = nil
		for i, e := range o.Array("quota_statuses") {
			at := jsoncfg.Index(o.Path("quota_statuses"), i)
			if e.Type != gjson.Number || e.Num != math.Trunc(e.Num) || e.Num < 400 || e.Num > 599 {
				o.Errs().Addf(at, "must be an HTTP error status between 400 and 599")
				continue
			}
			p.QuotaStatuses = append(p.QuotaStatuses, int(e.Num))
		}
	}
	o.Done()
	return p
}

func orAPI(authority string) string {
	if authority == "" {
		return "the reputation API"
	}
	return authority
}

func quoted(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func lowerAll(list []string) []string {
	for i, s := range list {
		list[i] = strings.ToLower(strings.TrimSpace(s))
	}
	return list
}

func checkPath(o *jsoncfg.Object, path string, bodyHasIP bool) {
	switch {
	case path == "":
		o.Addf("path", "required: the request path template, e.g. \"/v1/lookup?ip={ip}\"")
		return
	case path[0] != '/':
		o.Addf("path", "must start with \"/\" (the host goes in provider.authority)")
	case strings.ContainsAny(path, " \t\r\n\x00#"):
		o.Addf("path", "must not contain spaces, control characters or '#'")
	}
	if err := checkTemplate(path); err != nil {
		o.Addf("path", "%s", err.Error())
		return
	}
	if !bodyHasIP && !strings.Contains(stripEnvRefs(path), IPPlaceholder) {
		o.Addf("path", "must contain {ip} where the client address goes, e.g. \"/v1/lookup?ip={ip}\" (with POST, {ip} may go in provider.body instead)")
	}
}

func optPath(o *jsoncfg.Object, key, def string) string {
	r := o.Raw(key)
	if !r.Exists() {
		return def
	}
	if r.Type == gjson.Null {
		return ""
	}
	s := o.String(key, def)
	if r.Type == gjson.String && strings.TrimSpace(s) == "" {
		o.Addf(key, "must be a non-empty gjson path, or null to turn it off")
		return def
	}
	return s
}

// forbiddenHeaders are set by Envoy or by the filter itself.
var forbiddenHeaders = []string{"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "keep-alive"}

func parseHeaders(o *jsoncfg.Object, base [][2]string) [][2]string {
	if !o.Has("headers") {
		return base
	}
	ho := o.Object("headers")
	out := base
	for _, k := range ho.Keys() {
		name := strings.ToLower(k)
		v := ho.Raw(k)
		out = slices.DeleteFunc(out, func(h [2]string) bool { return h[0] == name })
		if !validHeaderName(name) {
			ho.Addf(k, "not a valid header name: use letters, digits and '-' (pseudo-headers such as :path come from path, method and authority)")
			continue
		}
		if slices.Contains(forbiddenHeaders, name) {
			ho.Addf(k, "is set by Envoy: remove it (use provider.authority for the host)")
			continue
		}
		if v.Type == gjson.Null {
			continue // removes a preset header
		}
		if v.Type != gjson.String {
			ho.Addf(k, "must be a string (use ${NAME} for a secret from the VM environment), got %s", jsoncfg.Kind(v))
			continue
		}
		if strings.ContainsAny(v.Str, "\r\n\x00") {
			ho.Addf(k, "must not contain line breaks or NUL")
			continue
		}
		if err := checkTemplate(v.Str); err != nil {
			ho.Addf(k, "%s", err.Error())
			continue
		}
		out = append(out, [2]string{name, v.Str})
	}
	ho.Done()
	return out
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// fieldKeys lists the keys of provider.fields; the first five are boolean.
var fieldKeys = []string{"tor", "proxy", "vpn", "relay", "datacenter", "score", "asn", "asn_type"}

func parseFields(o *jsoncfg.Object, f *Fields) {
	fo := o.Object("fields")
	specs := f.all()
	for i, key := range fieldKeys {
		r := fo.Raw(key)
		if !r.Exists() {
			continue
		}
		if r.Type == gjson.Null {
			*specs[i] = FieldSpec{}
			continue
		}
		if spec, ok := parseFieldSpec(r, fo.Path(key), fo.Errs(), i < 5); ok {
			*specs[i] = spec
		}
	}
	fo.Done()
	mapped := false
	for _, s := range specs {
		mapped = mapped || s.Set()
	}
	if !mapped {
		o.Addf("fields", "must map at least one signal, e.g. {\"tor\": \"is_tor\"}")
	}
}

func parseFieldSpec(r gjson.Result, at string, errs *jsoncfg.Errors, boolean bool) (FieldSpec, bool) {
	var spec FieldSpec
	if r.Type == gjson.String {
		if !okPath(r.Str) {
			errs.Addf(at, "must be a non-empty gjson path such as \"security.is_tor\"")
			return spec, false
		}
		spec.Paths = []string{r.Str}
		return spec, true
	}
	if !r.IsObject() {
		errs.Addf(at, "must be a gjson path or an object with \"path\", got %s", jsoncfg.Kind(r))
		return spec, false
	}
	so := jsoncfg.Wrap(r, at, errs)
	ok := true
	spec.Paths, ok = pathList(so, "path", true)
	if boolean {
		eq, okEq := valueList(so, "equals")
		has, okHas := valueList(so, "contains")
		ok = ok && okEq && okHas
		switch {
		case eq != nil && has != nil:
			so.Addf("contains", "use either equals or contains, not both")
			ok = false
		case eq != nil:
			spec.Match, spec.Values = MatchEquals, eq
		case has != nil:
			spec.Match, spec.Values = MatchContains, has
		}
		unless, okUnless := pathList(so, "unless", false)
		spec.Unless = unless
		ok = ok && okUnless
		if so.Has("absent") {
			spec.Absent = TriOf(so.Bool("absent", false))
		}
	} else {
		for _, k := range []string{"equals", "contains", "unless", "absent"} {
			if so.Has(k) {
				so.Addf(k, "applies only to tor, proxy, vpn, relay and datacenter")
				ok = false
			}
		}
	}
	so.Done()
	return spec, ok
}

func okPath(p string) bool { return strings.TrimSpace(p) != "" && len(p) <= 512 }

// pathList reads a gjson path or a non-empty array of them.
func pathList(o *jsoncfg.Object, key string, required bool) ([]string, bool) {
	r := o.Raw(key)
	if !r.Exists() || r.Type == gjson.Null {
		if required {
			o.Addf(key, "required: a gjson path or an array of them")
			return nil, false
		}
		return nil, true
	}
	list, ok := stringList(o, key, r)
	for i, p := range list {
		if !okPath(p) {
			at := o.Path(key)
			if r.IsArray() {
				at = jsoncfg.Index(at, i)
			}
			o.Errs().Addf(at, "must be a non-empty gjson path")
			ok = false
		}
	}
	return list, ok
}

// valueList reads a string or a non-empty array of strings, lower-cased.
func valueList(o *jsoncfg.Object, key string) ([]string, bool) {
	r := o.Raw(key)
	if !r.Exists() || r.Type == gjson.Null {
		return nil, true
	}
	list, ok := stringList(o, key, r)
	return lowerAll(list), ok
}

func stringList(o *jsoncfg.Object, key string, r gjson.Result) ([]string, bool) {
	if r.Type == gjson.String {
		return []string{r.Str}, true
	}
	if !r.IsArray() {
		o.Addf(key, "must be a string or an array of strings, got %s", jsoncfg.Kind(r))
		return nil, false
	}
	var out []string
	ok := true
	for i, e := range r.Array() {
		if e.Type != gjson.String {
			o.Errs().Addf(jsoncfg.Index(o.Path(key), i), "must be a string, got %s", jsoncfg.Kind(e))
			ok = false
			continue
		}
		out = append(out, e.Str)
	}
	if len(out) == 0 && ok {
		o.Addf(key, "must not be empty")
		ok = false
	}
	return out, ok && len(out) > 0
}

// ParsePolicy reads the "policy" object of the configuration:
//
//	rules     [rule]   tried in order; absent means DefaultRules, [] means none
//	default   verdict  when no rule matches (default "allow")
//	on_error  verdict  when the lookup fails (default "allow": fail open)
//
// A rule is {"name": …, "when": {…}, "action": verdict, "difficulty": n};
// difficulty (1..32) is only for "challenge". "when" holds at least one of:
//
//	tor, proxy, vpn, relay, datacenter   true or false
//	score      number (meaning gte) or {"gte","gt","lt","lte": 0..100}
//	asn        number or {"in": [numbers]}
//	asn_type   string or {"in": [strings]} (compared in lower case)
//
// A verdict is "allow", "challenge", "block" or "flag". Every problem is
// recorded in o's collector by JSON path; ParsePolicy calls o.Done and
// always returns a usable Policy.
func ParsePolicy(o *jsoncfg.Object) *Policy {
	p := &Policy{}
	p.Default = verdictAt(o, "default", Allow)
	p.OnError = verdictAt(o, "on_error", Allow)
	r := o.Raw("rules")
	if !r.Exists() || r.Type == gjson.Null {
		p.Rules = DefaultRules()
		o.Done()
		return p
	}
	seen := map[string]int{}
	p.Rules = []Rule{}
	for i, e := range o.Array("rules") {
		at := jsoncfg.Index(o.Path("rules"), i)
		if !e.IsObject() {
			o.Errs().Addf(at, "must be an object such as {\"name\": \"tor\", \"when\": {\"tor\": true}, \"action\": \"block\"}, got %s", jsoncfg.Kind(e))
			continue
		}
		ro := jsoncfg.Wrap(e, at, o.Errs())
		rule, ok := parseRule(ro)
		if rule.Name != "" {
			if j, dup := seen[rule.Name]; dup {
				ro.Addf("name", "duplicates the name of policy rule %d: rule names must be unique", j)
				ok = false
			} else {
				seen[rule.Name] = i
			}
		}
		if ok {
			p.Rules = append(p.Rules, rule)
		}
	}
	o.Done()
	return p
}

func verdictAt(o *jsoncfg.Object, key string, def Verdict) Verdict {
	s := o.Enum(key, def.String(), verdictNames[:]...)
	v, _ := ParseVerdict(s)
	return v
}

func parseRule(ro *jsoncfg.Object) (Rule, bool) {
	var rule Rule
	ok := true
	rule.Name = ro.String("name", "")
	switch {
	case !ro.Has("name"):
		ro.Addf("name", "required: a short unique name such as \"tor\", used in decision lines and metrics")
		ok = false
	case !validRuleName(rule.Name):
		ro.Addf("name", "must be 1 to 64 characters of letters, digits, '_', '-' or '.'")
		rule.Name, ok = "", false
	case rule.Name == ReasonDefault || rule.Name == ReasonOnError:
		ro.Addf("name", "%q is reserved for the policy's own decisions: choose another name", rule.Name)
		rule.Name, ok = "", false
	}
	if !ro.Has("action") {
		ro.Addf("action", "required: one of \"allow\", \"challenge\", \"block\", \"flag\"")
		ok = false
	}
	n := ro.Errs().Len()
	rule.Action = verdictAt(ro, "action", Allow)
	if ro.Has("difficulty") {
		rule.Difficulty = int(ro.Int("difficulty", 0, 1, MaxDifficulty))
		if rule.Action != Challenge && ro.Errs().Len() == n {
			ro.Addf("difficulty", "applies only to action \"challenge\": remove it or change the action")
		}
	}
	if !ro.Has("when") {
		ro.Addf("when", "required: the conditions of the rule, e.g. {\"tor\": true}; for a catch-all use policy.default")
		ok = false
	} else {
		before := ro.Errs().Len()
		rule.When = parseConditions(ro.Object("when"), before)
	}
	ro.Done()
	return rule, ok && ro.Errs().Len() == n
}

func validRuleName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// parseConditions reads a "when" object; before is the problem count before
// it was opened, so that "must hold at least one condition" is only added
// when nothing else was wrong.
func parseConditions(wo *jsoncfg.Object, before int) Conditions {
	var c Conditions
	for i, t := range []*Tri{&c.Tor, &c.Proxy, &c.VPN, &c.Relay, &c.Datacenter} {
		key := fieldKeys[i]
		if wo.Has(key) {
			r := wo.Raw(key)
			if r.Type != gjson.True && r.Type != gjson.False {
				wo.Addf(key, "must be true or false, got %s", jsoncfg.Kind(r))
				continue
			}
			*t = TriOf(r.Bool())
		}
	}
	if wo.Has("score") {
		c.Score = parseScore(wo)
	}
	if wo.Has("asn") {
		c.ASNIn = parseASNs(wo)
	}
	if wo.Has("asn_type") {
		c.ASNTypeIn = parseASNTypes(wo)
	}
	wo.Done()
	if c.Empty() && wo.Errs().Len() == before {
		wo.Errs().Addf(wo.Here(), "must hold at least one condition (tor, proxy, vpn, relay, datacenter, score, asn, asn_type); for a catch-all use policy.default")
	}
	return c
}

func parseScore(wo *jsoncfg.Object) ScoreCond {
	var s ScoreCond
	r := wo.Raw("score")
	if r.Type == gjson.Number {
		s.GTE, s.HasGTE = wo.Float("score", 0, 0, 100), true
		return s
	}
	if !r.IsObject() {
		wo.Addf("score", "must be a number (meaning at least) or an object such as {\"gte\": 50, \"lt\": 90}, got %s", jsoncfg.Kind(r))
		return s
	}
	so := wo.Object("score")
	n := so.Errs().Len()
	read := func(key string, v *float64, has *bool) {
		if so.Has(key) {
			*v, *has = so.Float(key, 0, 0, 100), true
		}
	}
	read("gte", &s.GTE, &s.HasGTE)
	read("gt", &s.GT, &s.HasGT)
	read("lt", &s.LT, &s.HasLT)
	read("lte", &s.LTE, &s.HasLTE)
	so.Done()
	if so.Errs().Len() != n {
		return ScoreCond{}
	}
	if !s.Active() {
		wo.Addf("score", "must hold at least one of gte, gt, lt, lte")
		return s
	}
	// The range must hold at least one score.
	lo, loIncl := -1.0, true
	if s.HasGTE {
		lo = s.GTE
	}
	if s.HasGT && (s.GT > lo || s.GT == lo) {
		lo, loIncl = s.GT, false
	}
	hi, hiIncl := 101.0, true
	if s.HasLTE {
		hi = s.LTE
	}
	if s.HasLT && (s.LT < hi || s.LT == hi) {
		hi, hiIncl = s.LT, false
	}
	if lo > hi || (lo == hi && !(loIncl && hiIncl)) {
		wo.Addf("score", "can never match: the lower bound is not below the upper bound")
	}
	return s
}

func parseASNs(wo *jsoncfg.Object) []uint32 {
	r := wo.Raw("asn")
	asn := func(e gjson.Result, at string) (uint32, bool) {
		if e.Type != gjson.Number || e.Num != math.Trunc(e.Num) || e.Num < 1 || e.Num > math.MaxUint32 {
			wo.Errs().Addf(at, "must be an AS number between 1 and 4294967295 (write 13335, not \"AS13335\")")
			return 0, false
		}
		return uint32(e.Num), true
	}
	if !r.IsObject() {
		if n, ok := asn(r, wo.Path("asn")); ok {
			return []uint32{n}
		}
		return nil
	}
	ao := wo.Object("asn")
	list := ao.Array("in")
	if !ao.Has("in") {
		ao.Addf("in", "required: a non-empty array of AS numbers")
	} else if len(list) == 0 && ao.Raw("in").IsArray() {
		ao.Addf("in", "must not be empty")
	}
	var out []uint32
	for i, e := range list {
		if n, ok := asn(e, jsoncfg.Index(ao.Path("in"), i)); ok {
			out = append(out, n)
		}
	}
	ao.Done()
	slices.Sort(out)
	return slices.Compact(out)
}

func parseASNTypes(wo *jsoncfg.Object) []string {
	r := wo.Raw("asn_type")
	one := func(e gjson.Result, at string) (string, bool) {
		s := strings.ToLower(strings.TrimSpace(e.Str))
		if e.Type != gjson.String || s == "" {
			wo.Errs().Addf(at, "must be a non-empty string such as \"hosting\"")
			return "", false
		}
		return s, true
	}
	if !r.IsObject() {
		if s, ok := one(r, wo.Path("asn_type")); ok {
			return []string{s}
		}
		return nil
	}
	ao := wo.Object("asn_type")
	list := ao.Array("in")
	if !ao.Has("in") {
		ao.Addf("in", "required: a non-empty array of strings")
	} else if len(list) == 0 && ao.Raw("in").IsArray() {
		ao.Addf("in", "must not be empty")
	}
	var out []string
	for i, e := range list {
		if s, ok := one(e, jsoncfg.Index(ao.Path("in"), i)); ok {
			out = append(out, s)
		}
	}
	ao.Done()
	return out
}

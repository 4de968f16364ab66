package policy

import (
	"errors"
	"net/url"
	"strings"
)

// Defaults applied when a Provider leaves a limit at zero.
const (
	// DefaultTimeoutMs is the callout timeout when none is configured.
	DefaultTimeoutMs = 1000
	// DefaultMaxBodyBytes is the largest reputation answer read when none
	// is configured. Larger answers are rejected with KindTooLarge.
	DefaultMaxBodyBytes = 64 << 10
	// MaxMaxBodyBytes is the largest max_body_bytes accepted in configuration.
	MaxMaxBodyBytes = 1 << 20
)

// IPPlaceholder is the marker replaced by the client address in a Provider's
// path and body templates.
const IPPlaceholder = "{ip}"

// Provider describes one reputation API: how to ask it about an address (the
// request template) and how to read its answer (the field map). Presets fill
// in everything but Cluster; configuration can override any part.
//
// After Expand, Headers, Path and Body may hold API keys: never log a
// Provider.
type Provider struct {
	// Preset is the name of the preset this provider started from, or
	// "custom".
	Preset string
	// Cluster is the Envoy cluster the callout goes to (in Istio,
	// "outbound|443||api.example.com").
	Cluster string
	// Authority is the :authority of the callout, e.g. "api.ipasis.com".
	Authority string
	// Method is "GET" or "POST".
	Method string
	// Path is the :path template. It starts with "/" and contains {ip},
	// which RequestPath replaces with the URL-escaped address. It may also
	// hold ${NAME} references to VM environment variables (see Expand).
	Path string
	// Body is the request body template for POST; {ip} is replaced by the
	// address and ${NAME} by environment variables. Empty means no body.
	Body string
	// Headers are extra request headers, lower-case names in order. Values
	// may hold ${NAME} references to VM environment variables, which is how
	// API keys stay out of the plain configuration.
	Headers [][2]string
	// TimeoutMs is the callout timeout in milliseconds (0: DefaultTimeoutMs).
	TimeoutMs uint32
	// MaxBodyBytes is the largest answer read (0: DefaultMaxBodyBytes).
	MaxBodyBytes int
	// Fields maps each signal to where it lives in the answer.
	Fields Fields
	// ScoreScale multiplies the provider's score to bring it to 0..100, e.g.
	// 100 for a 0..1 score (0 is read as 1).
	ScoreScale float64
	// ErrorPath is a gjson path whose presence with a truthy value (not
	// null, false, 0, "", [] or {}) marks a 2xx answer as an error.
	ErrorPath string
	// StatusPath is a gjson path to a status value; when present and not
	// one of StatusOK (compared case-insensitively), a 2xx answer is an error.
	StatusPath string
	// StatusOK lists the StatusPath values that mean success, lower-case.
	StatusOK []string
	// MessagePath is a gjson path to the provider's error message. It is
	// searched (never logged) for quota words to tell KindQuota from
	// KindProviderError.
	MessagePath string
	// QuotaStatuses lists HTTP statuses, besides 429, that mean an exhausted
	// quota or plan (e.g. 402).
	QuotaStatuses []int
}

// Fields says where each signal lives in a reputation answer. A FieldSpec
// with no path leaves its signal unknown.
type Fields struct {
	// Tor, Proxy, VPN, Relay and Datacenter are tri-state signals.
	Tor, Proxy, VPN, Relay, Datacenter FieldSpec
	// Score is read as a number (or numeric string) and multiplied by
	// Provider.ScoreScale.
	Score FieldSpec
	// ASN is read as a number or a string such as "AS13335".
	ASN FieldSpec
	// ASNType is read as a string and lower-cased.
	ASNType FieldSpec
}

// Match says how a tri-state FieldSpec turns the value it finds into a Tri.
type Match uint8

const (
	// MatchBool coerces the value as a boolean: true/false, 1/0, and the
	// strings "true", "yes", "y", "on", "1" and "false", "no", "n", "off", "0"
	// (any case). Anything else is unknown.
	MatchBool Match = iota
	// MatchEquals is True when the value (a string, number or boolean,
	// compared case-insensitively as text) equals one of Values, else False.
	MatchEquals
	// MatchContains is True when the value, an array (or a single string),
	// holds an element equal to one of Values (case-insensitively), else
	// False.
	MatchContains
)

// FieldSpec locates one signal in the answer.
type FieldSpec struct {
	// Paths are gjson paths tried in order. For tri-state signals the
	// results are ORed: True if any is True, False if all that answered are
	// False. For score, ASN and ASN type the first value that coerces wins.
	Paths []string
	// Match says how tri-state values are read.
	Match Match
	// Values are the lower-case operands of MatchEquals and MatchContains.
	Values []string
	// Unless lists gjson paths that veto a True: when any of them reads
	// True, the signal becomes False. It keeps providers whose "proxy" flag
	// also covers VPN and Tor from reporting VPN users as proxies.
	Unless []string
	// Absent is the value used when none of Paths is present in an
	// otherwise valid answer. Leave it Unknown unless the provider documents
	// that it omits false flags.
	Absent Tri
}

// Set reports whether the spec reads anything.
func (f *FieldSpec) Set() bool { return len(f.Paths) > 0 }

// Clone returns a deep copy of p.
func (p *Provider) Clone() *Provider {
	c := *p
	c.Headers = append([][2]string(nil), p.Headers...)
	c.StatusOK = append([]string(nil), p.StatusOK...)
	c.QuotaStatuses = append([]int(nil), p.QuotaStatuses...)
	for _, f := range c.Fields.all() {
		f.Paths = append([]string(nil), f.Paths...)
		f.Values = append([]string(nil), f.Values...)
		f.Unless = append([]string(nil), f.Unless...)
	}
	return &c
}

// all returns pointers to every FieldSpec, tri-state ones first.
func (f *Fields) all() []*FieldSpec {
	return []*FieldSpec{&f.Tor, &f.Proxy, &f.VPN, &f.Relay, &f.Datacenter, &f.Score, &f.ASN, &f.ASNType}
}

// Timeout returns TimeoutMs, or DefaultTimeoutMs when it is zero.
func (p *Provider) Timeout() uint32 {
	if p.TimeoutMs == 0 {
		return DefaultTimeoutMs
	}
	return p.TimeoutMs
}

// BodyLimit returns MaxBodyBytes, or DefaultMaxBodyBytes when it is zero.
func (p *Provider) BodyLimit() int {
	if p.MaxBodyBytes <= 0 {
		return DefaultMaxBodyBytes
	}
	return p.MaxBodyBytes
}

// RequestPath returns the :path for a lookup of ip: every {ip} in the template
// is replaced by ip, path-escaped before the query string and query-escaped
// inside it. Pass the address in canonical form (netip.Addr.String()).
func (p *Provider) RequestPath(ip string) string {
	return fillIP(p.Path, ip, true)
}

// RequestBody returns the request body for a lookup of ip, or "" when the
// provider sends none. {ip} is replaced by ip verbatim: a canonical address
// holds only hex digits, '.' and ':', which are safe in JSON and form bodies.
func (p *Provider) RequestBody(ip string) string {
	return fillIP(p.Body, ip, false)
}

func fillIP(tmpl, ip string, escape bool) string {
	if !strings.Contains(tmpl, IPPlaceholder) {
		return tmpl
	}
	var b strings.Builder
	b.Grow(len(tmpl) + len(ip)*3)
	inQuery := false
	for {
		i := strings.Index(tmpl, IPPlaceholder)
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		head := tmpl[:i]
		if strings.IndexByte(head, '?') >= 0 {
			inQuery = true
		}
		b.WriteString(head)
		switch {
		case !escape:
			b.WriteString(ip)
		case inQuery:
			b.WriteString(url.QueryEscape(ip))
		default:
			b.WriteString(url.PathEscape(ip))
		}
		tmpl = tmpl[i+len(IPPlaceholder):]
	}
}

// ExpandEnv replaces every ${NAME} in tmpl by lookup(NAME). NAME is upper-case
// letters, digits and '_', not starting with a digit; a '$' not followed by
// '{' is kept as is. It fails on bad syntax and on a variable that is unset
// or empty; the error names the variable, never a value.
func ExpandEnv(tmpl string, lookup func(string) (string, bool)) (string, error) {
	return expandEnv(tmpl, lookup, nil)
}

func expandEnv(tmpl string, lookup func(string) (string, bool), esc func(string) string) (string, error) {
	if !strings.Contains(tmpl, "${") {
		return tmpl, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "${")
		if i < 0 {
			b.WriteString(tmpl)
			return b.String(), nil
		}
		b.WriteString(tmpl[:i])
		rest := tmpl[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return "", errors.New(`"${" is not closed: write ${NAME}`)
		}
		name := rest[:j]
		if err := checkEnvName(name); err != nil {
			return "", err
		}
		v, ok := lookup(name)
		if !ok {
			return "", errors.New("environment variable " + name + " is not set: add it to the plugin's VM environment (Envoy vm_config.environment_variables, Istio vmConfig.env)")
		}
		if v == "" {
			return "", errors.New("environment variable " + name + " is empty: give it the API key or token")
		}
		if esc != nil {
			v = esc(v)
		}
		b.WriteString(v)
		tmpl = rest[j+1:]
	}
}

func checkEnvName(name string) error {
	if name == "ip" {
		return errors.New("${ip}: write {ip} for the client address; ${NAME} is for environment variables")
	}
	if name == "" {
		return errors.New("${} names no variable: write ${NAME}")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return errors.New("${" + safeName(name) + "}: variable names use upper-case letters, digits and '_' and do not start with a digit")
		}
	}
	return nil
}

// safeName returns name when it is short printable ASCII, else a placeholder,
// so that error messages never carry arbitrary bytes.
func safeName(name string) string {
	if len(name) > 64 {
		return "…"
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] > 0x7e {
			return "…"
		}
	}
	return name
}

// checkTemplate validates the ${NAME} syntax of tmpl without looking
// anything up.
func checkTemplate(tmpl string) error {
	_, err := expandEnv(tmpl, func(string) (string, bool) { return "x", true }, nil)
	return err
}

// stripEnvRefs removes every well-formed ${...} from tmpl.
func stripEnvRefs(tmpl string) string {
	for {
		i := strings.Index(tmpl, "${")
		if i < 0 {
			return tmpl
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			return tmpl
		}
		tmpl = tmpl[:i] + tmpl[i+j+1:]
	}
}

// Expand returns a copy of p with every ${NAME} in Path, Body and header
// values replaced from lookup (typically the VM environment). Values put in
// the path are URL-escaped. Errors name the header or template and the
// variable, never a value. Call it once at plugin start; the copy holds
// secrets and must not be logged.
func (p *Provider) Expand(lookup func(string) (string, bool)) (*Provider, error) {
	c := p.Clone()
	var err error
	if c.Path, err = expandPath(p.Path, lookup); err != nil {
		return nil, errors.New("provider.path: " + err.Error())
	}
	if c.Body, err = expandEnv(p.Body, lookup, nil); err != nil {
		return nil, errors.New("provider.body: " + err.Error())
	}
	for i, h := range c.Headers {
		v, err := expandEnv(h[1], lookup, nil)
		if err != nil {
			return nil, errors.New("provider.headers." + h[0] + ": " + err.Error())
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, errors.New("provider.headers." + h[0] + ": the expanded value contains a line break or NUL: check the environment variable")
		}
		c.Headers[i][1] = v
	}
	return c, nil
}

// expandPath expands ${NAME} in a path template, path-escaping values before
// the '?' and query-escaping them after it.
func expandPath(tmpl string, lookup func(string) (string, bool)) (string, error) {
	q := strings.IndexByte(tmpl, '?')
	if q < 0 {
		return expandEnv(tmpl, lookup, url.PathEscape)
	}
	// A ${NAME} cannot hold '?', so the split never cuts a reference.
	head, err := expandEnv(tmpl[:q], lookup, url.PathEscape)
	if err != nil {
		return "", err
	}
	tail, err := expandEnv(tmpl[q:], lookup, url.QueryEscape)
	if err != nil {
		return "", err
	}
	return head + tail, nil
}

package filter

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"time"

	"github.com/ipveil/ipveil/anonymize"
	"github.com/ipveil/ipveil/challenge"
	"github.com/ipveil/ipveil/internal/jsoncfg"
	"github.com/ipveil/ipveil/policy"
)

// Mode says whether verdicts are enforced.
type Mode string

// Modes.
const (
	// ModeEnforce answers block and challenge verdicts locally.
	ModeEnforce Mode = "enforce"
	// ModeDryRun decides and logs every request but lets all of them
	// through, optionally telling the upstream the verdict in a header.
	ModeDryRun Mode = "dry_run"
)

// HeaderAction is what happens to a client-address header on its way to the
// upstream.
type HeaderAction string

// Header actions.
const (
	HeaderMask  HeaderAction = "mask"
	HeaderStrip HeaderAction = "strip"
	HeaderKeep  HeaderAction = "keep"
)

// DefaultUpstreamHeaders are the headers that carry client addresses and
// are masked by default before the request goes upstream.
var DefaultUpstreamHeaders = []string{
	"x-forwarded-for", "x-real-ip", "forwarded", "true-client-ip",
	"cf-connecting-ip", "x-envoy-external-address",
	// Set by load balancers and CDNs that may sit in front of Envoy.
	"x-client-ip", "x-cluster-client-ip", "fastly-client-ip",
	"x-original-forwarded-for", "x-forwarded",
}

// Config is a validated plugin configuration.
type Config struct {
	// Mode is enforce or dry_run.
	Mode Mode
	// ClientIP says where the client address comes from.
	ClientIP ClientIPConfig
	// OnUnresolved is the verdict when no client address can be resolved
	// safely (defaults to the policy's on_error).
	OnUnresolved policy.Verdict
	// Provider is the reputation API and how to read its answers.
	Provider *policy.Provider
	// CalloutHeaders are the callout's headers with ${ENV} expanded, without
	// the pseudo-headers.
	CalloutHeaders [][2]string
	// Policy turns signals into verdicts.
	Policy *policy.Policy
	// TTL is how long a verdict is cached; ErrorTTL how long a failed lookup
	// is remembered (and answered with on_error) before it is retried.
	TTL, ErrorTTL time.Duration
	// Stale is how long after expiry a verdict is still served while a
	// background lookup refreshes it (0: never).
	Stale time.Duration
	// Slots is the fixed number of shared-data keys the verdict cache may
	// use; LocalEntries the size of each worker's own LRU (0: none).
	Slots, LocalEntries int
	// BreakerFailures consecutive failed lookups open the circuit breaker
	// for BreakerCooldown (0: never).
	BreakerFailures int
	BreakerCooldown time.Duration
	// BypassPaths are paths never checked: exact, or a prefix when they end
	// in '*'. The query string is not part of the match.
	BypassPaths []string
	// AllowCIDRs are always allowed and DenyCIDRs always blocked, without a
	// lookup. Deny wins when a client is in both.
	AllowCIDRs, DenyCIDRs []netip.Prefix
	// Block is the local reply for a block verdict.
	Block Reply
	// Challenge is how a challenge verdict is answered.
	Challenge ChallengeConfig
	// Masker masks client addresses for everything the filter writes.
	Masker anonymize.Masker
	// UpstreamHeaders says, per lower-case header name, what happens to
	// client-address headers before the request goes upstream.
	UpstreamHeaders map[string]HeaderAction
	// Pseudonymizer, when set, adds a keyed pseudonym of the client
	// (ipcrypt) as filter state ipveil.pseudonym.
	Pseudonymizer *anonymize.Pseudonymizer
	// Sealer, when set, adds the client address sealed to the operator's
	// public key (HPKE) as filter state ipveil.sealed, for SealWhen
	// decisions: "non_allow" (default) or "all".
	Sealer   *anonymize.Sealer
	SealWhen string
	// VerdictHeader, when set, carries the verdict and reason to the
	// upstream in dry_run mode and for flag verdicts. Clients cannot set it:
	// an incoming header of that name is always removed.
	VerdictHeader string
	// LogDecisions selects which decisions get a JSON log line: "non_allow"
	// (default: blocks, challenges, flags, errors), "all" or "off".
	LogDecisions string
	// Namespace prefixes every shared-data key this configuration writes,
	// so plugins with different configurations never share verdicts.
	Namespace string
}

// Reply is a configured local reply.
type Reply struct {
	Status      uint32
	Body        string
	ContentType string
}

// ChallengeConfig says how a challenge verdict is answered.
type ChallengeConfig struct {
	// Kind is "page" (a static local reply), "redirect" (302 to URL),
	// "pow" (ipveil's own proof-of-work page) or a CAPTCHA: "turnstile",
	// "hcaptcha", "recaptcha". The last four are interactive: solving them
	// earns a signed pass cookie that turns later challenges into allows.
	Kind string
	// Reply is the static page; for interactive kinds only its Status is
	// used.
	Reply
	// URL is the redirect target; "{path}" in it is replaced by the
	// URL-escaped original path. It never carries the client address.
	URL string
	// Interactive is true for pow and the CAPTCHAs.
	Interactive bool
	// Provider is the interactive challenge's kind.
	Provider challenge.Provider
	// Keys sign puzzles and passes (VM environment, rotatable by id).
	Keys *challenge.Keyring
	// Difficulty is the proof-of-work difficulty in leading zero bits,
	// unless the matching rule sets its own.
	Difficulty int
	// PuzzleTTL bounds the time to solve; PassTTL is the pass's lifetime.
	PuzzleTTL, PassTTL time.Duration
	// VerifyPath is the path the filter owns for answers; it never reaches
	// the upstream.
	VerifyPath string
	// VerifyMethod is how the page sends the answer: "get" (the query
	// string; works on every Envoy) or "post" (a form body; needs the Wasm
	// filter's allow_on_headers_stop_iteration: true, or Envoy holds the
	// body back from a filter that holds the headers).
	VerifyMethod string
	// Cookie is the pass cookie's name and attributes.
	Cookie        string
	CookieOptions challenge.CookieOptions
	// Template is the page template; Title its title.
	Template *challenge.Template
	Title    string
	// MaxFormBytes bounds a verify request's body.
	MaxFormBytes int
	// ReplaySlots is the number of shared-data keys remembering redeemed
	// puzzles.
	ReplaySlots int
	// CAPTCHA settings: the widget's site key, the siteverify secret (VM
	// environment), the cluster that reaches the provider, the callout
	// timeout, and what a provider failure does: "deny" (the visitor tries
	// again later) or "pass" (the visitor gets the pass anyway).
	SiteKey, Secret, CaptchaCluster, CaptchaAuthority string
	CaptchaTimeoutMs                                  uint32
	CaptchaOnError                                    string
}

const (
	defaultBlockBody     = "Access denied.\n"
	defaultChallengeBody = "<!doctype html><title>Checking your connection</title><p>Your request needs an extra check. Please try again in a moment.</p>\n"
)

// EnvLookup finds a VM environment variable. A nil EnvLookup means
// variables are not available (check-config): references are checked for
// syntax only.
type EnvLookup func(name string) (string, bool)

// ParseConfig validates a whole configuration document and returns every
// problem, each named by its JSON path, as a *jsoncfg.Error.
func ParseConfig(doc []byte, env EnvLookup) (*Config, error) {
	var errs jsoncfg.Errors
	root := jsoncfg.Parse(doc, &errs)
	if errs.Len() > 0 {
		// Not a JSON object: reading on would only add misleading problems.
		return nil, errs.Err()
	}
	sum := sha256.Sum256(doc)
	c := &Config{Namespace: "ipveil." + hex.EncodeToString(sum[:4])}

	c.Mode = Mode(root.Enum("mode", string(ModeEnforce), string(ModeEnforce), string(ModeDryRun)))

	c.Provider = policy.ParseProvider(root.Object("provider"))
	c.Policy = policy.ParsePolicy(root.Object("policy"))
	c.CalloutHeaders = expandHeaders(c.Provider, env, &errs)

	ci := root.Object("client_ip")
	c.ClientIP.Source = ClientIPSource(ci.Enum("source", string(SourceAddress),
		string(SourceAddress), string(SourceXFF), string(SourceForwarded), string(SourceHeader)))
	c.ClientIP.Header = strings.ToLower(ci.String("header", ""))
	c.ClientIP.TrustedHops = int(ci.Int("trusted_hops", 0, 0, 32))
	c.ClientIP.TrustedCIDRs = parseCIDRs(ci, "trusted_cidrs")
	c.OnUnresolved = c.Policy.OnError
	if ci.Has("on_unresolved") {
		c.OnUnresolved = parseVerdict(ci, "on_unresolved", c.Policy.OnError)
	}
	switch c.ClientIP.Source {
	case SourceHeader:
		if c.ClientIP.Header == "" {
			ci.Addf("header", `is required when source is "header" (for example "cf-connecting-ip")`)
		}
		if len(c.ClientIP.TrustedCIDRs) == 0 {
			ci.Addf("trusted_cidrs", `is required when source is "header": the header is believed only from these peers`)
		}
		if ci.Has("trusted_hops") {
			ci.Addf("trusted_hops", `applies to x_forwarded_for and forwarded only`)
		}
	case SourceAddress:
		if ci.Has("trusted_hops") || ci.Has("trusted_cidrs") || ci.Has("header") {
			ci.Addf("source", `"source_address" is Envoy's effective client address, already resolved by xff_num_trusted_hops; remove trusted_hops, trusted_cidrs and header, or pick another source`)
		}
	default:
		if ci.Has("header") {
			ci.Addf("header", `applies to source "header" only`)
		}
	}
	ci.Done()

	cache := root.Object("cache")
	c.TTL = time.Duration(cache.Int("ttl_s", 300, 1, 86400)) * time.Second
	c.ErrorTTL = time.Duration(cache.Int("error_ttl_s", 10, 1, 3600)) * time.Second
	c.Stale = time.Duration(cache.Int("stale_s", 0, 0, 86400)) * time.Second
	c.Slots = int(cache.Int("slots", 65536, 1, 1<<22))
	c.LocalEntries = int(cache.Int("local_entries", 4096, 0, 1<<20))
	cache.Done()

	br := root.Object("breaker")
	c.BreakerFailures = int(br.Int("failures", 5, 0, 1000))
	c.BreakerCooldown = time.Duration(br.Int("cooldown_s", 10, 1, 3600)) * time.Second
	br.Done()

	lists := root.Object("lists")
	for i, p := range lists.Strings("bypass_paths", nil) {
		if !strings.HasPrefix(p, "/") {
			errs.Addf(jsoncfg.Index(lists.Path("bypass_paths"), i), `must start with "/" (a path, optionally ending in "*" for a prefix)`)
			continue
		}
		if strings.ContainsAny(p, "?#") {
			errs.Addf(jsoncfg.Index(lists.Path("bypass_paths"), i), `must not contain "?" or "#": the query string is not matched`)
			continue
		}
		if star := strings.IndexByte(p, '*'); star >= 0 && star != len(p)-1 {
			errs.Addf(jsoncfg.Index(lists.Path("bypass_paths"), i), `"*" is allowed only at the end (prefix match)`)
			continue
		}
		c.BypassPaths = append(c.BypassPaths, p)
	}
	c.AllowCIDRs = parseCIDRs(lists, "allow_cidrs")
	c.DenyCIDRs = parseCIDRs(lists, "deny_cidrs")
	lists.Done()

	blk := root.Object("block")
	c.Block = parseReply(blk, 403, defaultBlockBody, "text/plain; charset=utf-8")
	blk.Done()

	c.Challenge = parseChallenge(root.Object("challenge"), env)

	pv := root.Object("privacy")
	v4 := int(pv.Int("ipv4_prefix", 24, 0, 32))
	v6 := int(pv.Int("ipv6_prefix", 64, 0, 128))
	m, err := anonymize.NewMasker(v4, v6)
	if err != nil {
		pv.Addf("ipv4_prefix", "%v", err)
		m = anonymize.DefaultMasker
	}
	c.Masker = m
	c.UpstreamHeaders = map[string]HeaderAction{}
	for _, h := range DefaultUpstreamHeaders {
		c.UpstreamHeaders[h] = HeaderMask
	}
	uh := pv.Object("upstream_headers")
	for _, k := range uh.Keys() {
		name := strings.ToLower(k)
		if name != k || name == "" || strings.ContainsAny(name, " :\t") {
			uh.Addf(k, "must be a lower-case header name")
			continue
		}
		c.UpstreamHeaders[name] = HeaderAction(uh.Enum(k, string(HeaderMask), string(HeaderMask), string(HeaderStrip), string(HeaderKeep)))
	}
	if pv.Has("pseudonym") {
		c.Pseudonymizer = parsePseudonym(pv.Object("pseudonym"), env)
	}
	if pv.Has("seal") {
		c.Sealer, c.SealWhen = parseSeal(pv.Object("seal"))
	}
	pv.Done()

	c.VerdictHeader = strings.ToLower(root.String("verdict_header", ""))
	if c.VerdictHeader != "" && (strings.HasPrefix(c.VerdictHeader, ":") || strings.ContainsAny(c.VerdictHeader, " \t")) {
		root.Addf("verdict_header", "must be a header name such as x-ipveil-verdict")
	}
	if _, ok := c.UpstreamHeaders[c.VerdictHeader]; ok && c.VerdictHeader != "" {
		root.Addf("verdict_header", "must not be a client-address header")
	}

	lg := root.Object("log")
	c.LogDecisions = lg.Enum("decisions", "non_allow", "non_allow", "all", "off")
	lg.Done()

	root.Done()
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

func parseVerdict(o *jsoncfg.Object, key string, def policy.Verdict) policy.Verdict {
	s := o.String(key, def.String())
	v, err := policy.ParseVerdict(s)
	if err != nil {
		o.Addf(key, "%v", err)
		return def
	}
	return v
}

func parseReply(o *jsoncfg.Object, status int64, body, ctype string) Reply {
	return Reply{
		Status:      uint32(o.Int("status", status, 200, 599)),
		Body:        o.String("body", body),
		ContentType: o.String("content_type", ctype),
	}
}

func parseCIDRs(o *jsoncfg.Object, key string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range o.Strings(key, nil) {
		at := jsoncfg.Index(o.Path(key), i)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			// An address without a length is a single host.
			if a, aerr := netip.ParseAddr(s); aerr == nil && a.Zone() == "" {
				a = a.Unmap()
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				o.Errs().Addf(at, `must be a CIDR such as "10.0.0.0/8" or "2001:db8::/32", or a single address (%v)`, err)
				continue
			}
		}
		if p.Masked() != p {
			o.Errs().Addf(at, "has bits set beyond its prefix length: write %s (or the address alone for one host)", p.Masked())
			continue
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out
}

// expandHeaders substitutes ${ENV} in the provider's header values.
func expandHeaders(p *policy.Provider, env EnvLookup, errs *jsoncfg.Errors) [][2]string {
	var out [][2]string
	for _, h := range p.Headers {
		name, tmpl := h[0], h[1]
		path := jsoncfg.Join("provider.headers", name)
		lookup := env
		if lookup == nil {
			lookup = func(string) (string, bool) { return "set-at-runtime", true }
		}
		v, err := policy.ExpandEnv(tmpl, lookup)
		if err != nil {
			errs.Addf(path, "%v", err)
			continue
		}
		out = append(out, [2]string{name, v})
	}
	return out
}

// parsePseudonym reads privacy.pseudonym: the keys come from a VM
// environment variable ("k2:<hex>,k1:<hex>", the first one current) so that
// they never sit in plain configuration.
func parsePseudonym(o *jsoncfg.Object, env EnvLookup) *anonymize.Pseudonymizer {
	defer o.Done()
	name := o.String("keys_env", "IPVEIL_PSEUDONYM_KEYS")
	if !validEnvName(name) {
		o.Addf("keys_env", "must be an environment variable name such as IPVEIL_PSEUDONYM_KEYS")
		return nil
	}
	if env == nil {
		return nil // check-config without -env: syntax only
	}
	v, ok := env(name)
	if !ok || strings.TrimSpace(v) == "" {
		o.Addf("keys_env", "environment variable %s is not set: give it the pseudonym keys as id:hex[,id:hex…] (32 hex digits for ipcrypt-deterministic, 64 for prefix-preserving ipcrypt-pfx), in vm_config.environment_variables or Istio's vmConfig.env", name)
		return nil
	}
	p, err := anonymize.ParsePseudonymKeys(v)
	if err != nil {
		o.Addf("keys_env", "%s: %v", name, err)
		return nil
	}
	return p
}

// parseSeal reads privacy.seal. The public key is not a secret: only the
// holder of the private key can open what the filter seals, and the private
// key never comes near the proxy.
func parseSeal(o *jsoncfg.Object) (*anonymize.Sealer, string) {
	defer o.Done()
	id := o.String("key_id", "")
	pub := o.String("public_key", "")
	when := o.Enum("when", "non_allow", "non_allow", "all")
	if id == "" {
		o.Addf("key_id", "required: a short name for the key pair, e.g. \"audit-2026\", recorded in every sealed value")
	}
	if pub == "" {
		o.Addf("public_key", "required: the operator's X25519 public key in base64 (ipveil keygen makes a pair)")
	}
	if id == "" || pub == "" {
		return nil, when
	}
	s, err := anonymize.NewSealer(id, pub)
	if err != nil {
		o.Addf("public_key", "%v", err)
		return nil, when
	}
	return s, when
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// parseChallenge reads the challenge section.
func parseChallenge(ch *jsoncfg.Object, env EnvLookup) ChallengeConfig {
	defer ch.Done()
	var c ChallengeConfig
	c.Kind = ch.Enum("kind", "page", "page", "redirect", "pow", "turnstile", "hcaptcha", "recaptcha")
	switch c.Kind {
	case "redirect":
		c.URL = ch.String("url", "")
		switch {
		case c.URL == "":
			ch.Addf("url", `is required when kind is "redirect", e.g. "/challenge?return={path}"`)
		case !strings.HasPrefix(c.URL, "/") && !strings.HasPrefix(c.URL, "https://"):
			ch.Addf("url", `must be a path ("/…") or an https:// URL`)
		case strings.Contains(c.URL, "{ip}"):
			ch.Addf("url", `must not contain {ip}: the client address never leaves the filter in a redirect`)
		}
		if ch.Has("status") || ch.Has("body") || ch.Has("content_type") {
			ch.Addf("kind", `a redirect is always 302 with no body; remove status, body and content_type`)
		}
		c.Status = 302
		return c
	case "page":
		if ch.Has("url") {
			ch.Addf("url", `applies to kind "redirect" only`)
		}
		c.Reply = parseReply(ch, 429, defaultChallengeBody, "text/html; charset=utf-8")
		return c
	}

	// Interactive: proof of work or a CAPTCHA, then a signed pass.
	c.Interactive = true
	if p, ok := challenge.ParseProvider(c.Kind); ok {
		c.Provider = p
	} else {
		c.Provider = challenge.ProofOfWork
	}
	c.Status = uint32(ch.Int("status", 429, 200, 599))
	c.ContentType = "text/html; charset=utf-8"
	for _, k := range []string{"url", "body", "content_type"} {
		if ch.Has(k) {
			ch.Addf(k, "does not apply to kind %q: use template to change the page", c.Kind)
		}
	}
	c.Difficulty = int(ch.Int("difficulty", 18, challenge.MinDifficulty, challenge.MaxDifficulty))
	c.PuzzleTTL = time.Duration(ch.Int("puzzle_ttl_s", map[bool]int64{true: 600, false: 300}[c.Provider.IsCaptcha()], 10, int64(challenge.MaxPuzzleTTL/time.Second))) * time.Second
	c.PassTTL = time.Duration(ch.Int("pass_ttl_s", 3600, 60, int64(challenge.MaxPassTTL/time.Second))) * time.Second
	c.VerifyPath = ch.String("verify_path", challenge.DefaultVerifyPath)
	if p, ok := challenge.SafeReturnPath(c.VerifyPath); !ok || p != c.VerifyPath || strings.ContainsAny(c.VerifyPath, "?#") {
		ch.Addf("verify_path", `must be a plain same-origin path such as "/.ipveil/verify"`)
	}
	c.VerifyMethod = ch.Enum("verify_method", "get", "get", "post")
	c.MaxFormBytes = int(ch.Int("max_form_bytes", challenge.DefaultMaxFormBytes, 256, 1<<20))
	c.ReplaySlots = int(ch.Int("replay_slots", 4096, 16, 1<<20))
	c.Title = ch.String("title", challenge.DefaultTitle)
	tmpl := ch.String("template", "")
	t, err := challenge.CompileTemplate(tmpl)
	if err != nil {
		ch.Addf("template", "%v", err)
	}
	c.Template = t

	ck := ch.Object("cookie")
	c.Cookie = ck.String("name", challenge.DefaultCookieName)
	if !challenge.ValidCookieName(c.Cookie) {
		ck.Addf("name", "must be a cookie name (letters, digits and !#$%%&'*+-.^_`|~)")
	}
	c.CookieOptions = challenge.CookieOptions{
		Path:     "/",
		MaxAge:   int(c.PassTTL / time.Second),
		Domain:   ck.String("domain", ""),
		Insecure: ck.Bool("insecure", false),
	}
	ck.Done()

	keysEnv := ch.String("keys_env", "IPVEIL_CHALLENGE_KEYS")
	if !validEnvName(keysEnv) {
		ch.Addf("keys_env", "must be an environment variable name such as IPVEIL_CHALLENGE_KEYS")
	} else if env != nil {
		v, ok := env(keysEnv)
		if !ok || strings.TrimSpace(v) == "" {
			ch.Addf("keys_env", "environment variable %s is not set: give it the signing keys as id:base64[,id:base64…] (32 random bytes each, e.g. openssl rand -base64 32), in vm_config.environment_variables or Istio's vmConfig.env; every replica needs the same keys", keysEnv)
		} else if kr, err := challenge.ParseKeyring(v); err != nil {
			ch.Addf("keys_env", "%v", err)
		} else {
			c.Keys = kr
		}
	}

	cp := ch.Object("captcha")
	if c.Provider.IsCaptcha() {
		c.SiteKey = cp.String("site_key", "")
		if c.SiteKey == "" {
			cp.Addf("site_key", "required for kind %q: the widget's public site key", c.Kind)
		}
		c.CaptchaCluster = cp.String("cluster", "")
		if c.CaptchaCluster == "" {
			cp.Addf("cluster", "required for kind %q: the Envoy cluster that reaches %s (in Istio: outbound|443||%s)", c.Kind, c.Provider.SiteverifyAuthority(), c.Provider.SiteverifyAuthority())
		}
		c.CaptchaAuthority = cp.String("authority", c.Provider.SiteverifyAuthority())
		c.CaptchaTimeoutMs = uint32(cp.Int("timeout_ms", 3000, 1, 60000))
		c.CaptchaOnError = cp.Enum("on_error", "deny", "deny", "pass")
		secretEnv := cp.String("secret_env", "")
		switch {
		case secretEnv == "":
			cp.Addf("secret_env", "required for kind %q: the VM environment variable holding the siteverify secret", c.Kind)
		case !validEnvName(secretEnv):
			cp.Addf("secret_env", "must be an environment variable name")
		case env != nil:
			if v, ok := env(secretEnv); !ok || v == "" {
				cp.Addf("secret_env", "environment variable %s is not set: give it the provider's secret key", secretEnv)
			} else {
				c.Secret = v
			}
		}
	} else if len(cp.Keys()) > 0 {
		ch.Addf("captcha", `applies to kinds "turnstile", "hcaptcha" and "recaptcha" only`)
	}
	cp.Done()
	return c
}

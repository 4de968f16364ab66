package policy

import (
	"errors"
	"slices"
)

// Verdict is what the filter does with a request.
type Verdict uint8

const (
	// Allow lets the request through unchanged.
	Allow Verdict = iota
	// Challenge answers with a challenge (redirect, page or proof of work)
	// instead of forwarding the request.
	Challenge
	// Block answers 403 without forwarding the request.
	Block
	// Flag lets the request through and tells the upstream the verdict, so
	// the application can decide (step-up authentication, review queue, …).
	Flag

	verdictCount
)

var verdictNames = [verdictCount]string{Allow: "allow", Challenge: "challenge", Block: "block", Flag: "flag"}

// String returns "allow", "challenge", "block" or "flag".
func (v Verdict) String() string {
	if v < verdictCount {
		return verdictNames[v]
	}
	return "invalid"
}

// ParseVerdict parses "allow", "challenge", "block" or "flag".
func ParseVerdict(s string) (Verdict, error) {
	for v, name := range verdictNames {
		if s == name {
			return Verdict(v), nil
		}
	}
	return Allow, errors.New(`unknown verdict: use "allow", "challenge", "block" or "flag"`)
}

// Reasons that are not rule names.
const (
	// ReasonDefault is Decision.Reason when no rule matched.
	ReasonDefault = "default"
	// ReasonOnError is Decision.Reason when the lookup failed.
	ReasonOnError = "on_error"
)

// MaxDifficulty is the largest challenge difficulty a rule may ask for.
const MaxDifficulty = 32

// Rule is one line of a policy: when every condition holds, the action is
// taken.
type Rule struct {
	// Name identifies the rule in decision lines and metrics. Names are
	// unique within a policy.
	Name string
	// When holds the conditions, all of which must hold.
	When Conditions
	// Action is the verdict when the rule matches.
	Action Verdict
	// Difficulty is an optional challenge difficulty (1..MaxDifficulty) for
	// Action == Challenge; 0 lets the filter choose.
	Difficulty int
}

// Conditions are ANDed tests on Signals. A test whose signal is unknown never
// holds: "tor": false matches only an address the provider says is not Tor.
// The zero value tests nothing and so matches everything; configuration
// refuses an empty "when" (write "default" for a catch-all).
type Conditions struct {
	// Tor, Proxy, VPN, Relay and Datacenter, when True or False, require the
	// signal to be known and equal. Unknown means no test.
	Tor, Proxy, VPN, Relay, Datacenter Tri
	// Score tests the normalised score.
	Score ScoreCond
	// ASNIn, when not empty, requires the ASN to be known and listed. Keep it
	// sorted (ParsePolicy does).
	ASNIn []uint32
	// ASNTypeIn, when not empty, requires the ASN type to be known and listed
	// (lower case).
	ASNTypeIn []string
}

// ScoreCond bounds the score. Each bound applies only when its Has flag is
// set; any combination may be set.
type ScoreCond struct {
	// GTE, GT, LT and LTE are the bounds: score ≥ GTE, > GT, < LT, ≤ LTE.
	GTE, GT, LT, LTE float64
	// HasGTE, HasGT, HasLT and HasLTE say which bounds apply.
	HasGTE, HasGT, HasLT, HasLTE bool
}

// Active reports whether any bound is set.
func (c *ScoreCond) Active() bool { return c.HasGTE || c.HasGT || c.HasLT || c.HasLTE }

// Holds reports whether score satisfies every bound that is set.
func (c *ScoreCond) Holds(score float64) bool {
	return (!c.HasGTE || score >= c.GTE) && (!c.HasGT || score > c.GT) &&
		(!c.HasLT || score < c.LT) && (!c.HasLTE || score <= c.LTE)
}

// Empty reports whether c tests nothing.
func (c *Conditions) Empty() bool {
	return c.Tor == Unknown && c.Proxy == Unknown && c.VPN == Unknown && c.Relay == Unknown &&
		c.Datacenter == Unknown && !c.Score.Active() && len(c.ASNIn) == 0 && len(c.ASNTypeIn) == 0
}

func triHolds(want, got Tri) bool { return want == Unknown || (got != Unknown && want == got) }

// Match reports whether every condition holds for s. It does not allocate.
func (c *Conditions) Match(s *Signals) bool {
	if !triHolds(c.Tor, s.Tor) || !triHolds(c.Proxy, s.Proxy) || !triHolds(c.VPN, s.VPN) ||
		!triHolds(c.Relay, s.Relay) || !triHolds(c.Datacenter, s.Datacenter) {
		return false
	}
	if c.Score.Active() && (!s.ScoreKnown || !c.Score.Holds(s.Score)) {
		return false
	}
	if len(c.ASNIn) > 0 {
		if !s.ASNKnown {
			return false
		}
		if _, ok := slices.BinarySearch(c.ASNIn, s.ASN); !ok {
			return false
		}
	}
	if len(c.ASNTypeIn) > 0 && (s.ASNType == "" || !slices.Contains(c.ASNTypeIn, s.ASNType)) {
		return false
	}
	return true
}

// Policy turns Signals into a Verdict: the first matching rule wins, else
// Default. OnError is the verdict when the lookup itself failed.
type Policy struct {
	// Rules are tried in order.
	Rules []Rule
	// Default is the verdict when no rule matches.
	Default Verdict
	// OnError is the verdict when the reputation lookup fails (timeout,
	// quota, bad answer, …). Allow fails open.
	OnError Verdict
}

// Decision is the outcome for one request.
type Decision struct {
	// Verdict is what to do.
	Verdict Verdict
	// Reason is the matching rule's name, ReasonDefault or ReasonOnError.
	Reason string
	// Rule is the index of the matching rule, or -1.
	Rule int
	// Difficulty is the rule's challenge difficulty, or 0.
	Difficulty int
}

// Evaluate returns the decision for s: the first rule whose conditions all
// hold, else the default. It does not allocate.
func (p *Policy) Evaluate(s Signals) Decision {
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.When.Match(&s) {
			return Decision{Verdict: r.Action, Reason: r.Name, Rule: i, Difficulty: r.Difficulty}
		}
	}
	return Decision{Verdict: p.Default, Reason: ReasonDefault, Rule: -1}
}

// ErrorDecision returns the decision when the lookup failed: p.OnError with
// reason ReasonOnError.
func (p *Policy) ErrorDecision() Decision {
	return Decision{Verdict: p.OnError, Reason: ReasonOnError, Rule: -1}
}

// DefaultRules returns the rules used when the configuration names none:
//
//	tor           Tor exit node              → block
//	proxy         anonymising proxy          → block
//	score_high    score ≥ 90                 → block
//	score_medium  score ≥ 50                 → challenge
//
// VPN, relay and datacenter addresses are not blocked on those signals alone:
// they carry many legitimate users (remote workers, iCloud Private Relay,
// corporate egress, monitoring); a high score still catches the bad ones.
func DefaultRules() []Rule {
	return []Rule{
		{Name: "tor", When: Conditions{Tor: True}, Action: Block},
		{Name: "proxy", When: Conditions{Proxy: True}, Action: Block},
		{Name: "score_high", When: Conditions{Score: ScoreCond{GTE: 90, HasGTE: true}}, Action: Block},
		{Name: "score_medium", When: Conditions{Score: ScoreCond{GTE: 50, HasGTE: true}}, Action: Challenge},
	}
}

// DefaultPolicy returns DefaultRules with default allow and on_error allow:
// an unknown or failed lookup never blocks (fail open).
func DefaultPolicy() *Policy {
	return &Policy{Rules: DefaultRules(), Default: Allow, OnError: Allow}
}

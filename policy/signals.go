package policy

// Tri is a three-valued truth: a reputation signal is true, false, or not
// known. Unknown is the zero value, so a signal the provider did not answer
// stays unknown and never reads as false.
type Tri uint8

const (
	// Unknown means the provider did not say, or said something that does
	// not coerce to a boolean.
	Unknown Tri = iota
	// False means the provider said no.
	False
	// True means the provider said yes.
	True
)

// TriOf returns True for true and False for false.
func TriOf(b bool) Tri {
	if b {
		return True
	}
	return False
}

// Known reports whether t is True or False.
func (t Tri) Known() bool { return t == True || t == False }

// String returns "unknown", "false" or "true".
func (t Tri) String() string {
	switch t {
	case True:
		return "true"
	case False:
		return "false"
	}
	return "unknown"
}

// Signals is what ipveil learned about one client address from a reputation
// API, normalised across providers. Every field can be unknown: a provider
// that does not report a signal leaves it unknown, and policy rules never
// match an unknown value.
//
// Signals holds no address and nothing the provider wrote verbatim except
// ASNType, which is a short lower-case category such as "hosting".
type Signals struct {
	// Tor is true when the address is a Tor exit node.
	Tor Tri
	// Proxy is true when the address is an anonymising proxy (open, public,
	// web or residential proxy). VPN, Tor and relay egress have their own
	// signals; presets keep them out of Proxy where the provider allows it.
	Proxy Tri
	// VPN is true when the address belongs to a VPN service.
	VPN Tri
	// Relay is true for privacy relays that pool many ordinary users behind
	// one address, such as iCloud Private Relay.
	Relay Tri
	// Datacenter is true when the address belongs to a hosting or cloud
	// provider. On its own it is weak evidence: the default policy never
	// blocks on it.
	Datacenter Tri

	// Score is the provider's risk score normalised to 0..100 (higher is
	// riskier). It is meaningful only when ScoreKnown is true.
	Score float64
	// ScoreKnown reports whether Score holds a value.
	ScoreKnown bool

	// ASN is the autonomous system number announcing the address. It is
	// meaningful only when ASNKnown is true; AS0 is never reported.
	ASN uint32
	// ASNKnown reports whether ASN holds a value.
	ASNKnown bool

	// ASNType is the provider's category for the network, lower-cased, e.g.
	// "hosting", "isp", "business", "education". Empty means unknown.
	ASNType string
}

// AnyKnown reports whether at least one signal is known.
func (s *Signals) AnyKnown() bool {
	return s.Tor.Known() || s.Proxy.Known() || s.VPN.Known() || s.Relay.Known() ||
		s.Datacenter.Known() || s.ScoreKnown || s.ASNKnown || s.ASNType != ""
}

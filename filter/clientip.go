package filter

import (
	"net/netip"
	"strings"

	"github.com/ipveil/ipveil/anonymize"
)

// ClientIPSource names where the client address is read from.
type ClientIPSource string

// Client address sources. SourceAddress is the default and the right choice
// behind Envoy: Envoy has already applied use_remote_address and
// xff_num_trusted_hops to source.address, and a second hop count on top of
// Envoy's would trust one proxy too many.
const (
	SourceAddress   ClientIPSource = "source_address"
	SourceXFF       ClientIPSource = "x_forwarded_for"
	SourceForwarded ClientIPSource = "forwarded"
	SourceHeader    ClientIPSource = "header"
)

// ClientIPConfig says how to find the client's address.
type ClientIPConfig struct {
	// Source is where the address is read from.
	Source ClientIPSource
	// Header is the header read when Source is SourceHeader, lower case.
	Header string
	// TrustedHops is how many of the rightmost X-Forwarded-For or Forwarded
	// entries were added by proxies the operator trusts.
	TrustedHops int
	// TrustedCIDRs are proxies whose entries are skipped when walking
	// X-Forwarded-For or Forwarded from the right; with SourceHeader, the
	// peers whose header is believed.
	TrustedCIDRs []netip.Prefix
}

// ResolveReason says why no client address could be resolved. The values
// are fixed strings, safe to log: they never contain header text.
type ResolveReason string

// Reasons a client address could not be resolved.
const (
	ReasonNoPeer          ResolveReason = "no_source_address"
	ReasonBadPeer         ResolveReason = "malformed_source_address"
	ReasonHeaderMissing   ResolveReason = "header_missing"
	ReasonHeaderRepeated  ResolveReason = "header_repeated"
	ReasonMalformed       ResolveReason = "malformed_header"
	ReasonUnknownClient   ResolveReason = "client_unknown"
	ReasonTooFewHops      ResolveReason = "fewer_entries_than_trusted_hops"
	ReasonUnspecifiedAddr ResolveReason = "unspecified_address"
)

// RequestAddrs is what resolution reads from a request: Envoy's
// source.address property and the request headers, in order, with lower-case
// names.
type RequestAddrs struct {
	SourceAddress string
	Headers       [][2]string
}

// ResolveClientIP finds the client's address by c. It returns the address
// (IPv4-mapped IPv6 unmapped) or the reason it could not be resolved safely;
// then no lookup must happen and the failure action applies.
//
// X-Forwarded-For and Forwarded are read as Envoy passes them to filters:
// every line of the header, joined in order, then walked from the right.
// The first c.TrustedHops entries are skipped unexamined, then entries inside
// c.TrustedCIDRs; the next entry is the client. An entry that is malformed,
// "unknown" or obfuscated where the walk needs an address stops resolution:
// an attacker controls everything left of the first trusted hop, so a guess
// is never made.
func ResolveClientIP(c *ClientIPConfig, r *RequestAddrs) (netip.Addr, ResolveReason) {
	switch c.Source {
	case SourceXFF:
		var elems []string
		for _, h := range r.Headers {
			if h[0] == "x-forwarded-for" {
				elems = append(elems, anonymize.SplitXFF(h[1])...)
			}
		}
		if len(elems) == 0 {
			return netip.Addr{}, ReasonHeaderMissing
		}
		return c.walk(elems)
	case SourceForwarded:
		var elems []string
		for _, h := range r.Headers {
			if h[0] != "forwarded" {
				continue
			}
			fe, err := anonymize.ParseForwarded(h[1])
			if err != nil {
				return netip.Addr{}, ReasonMalformed
			}
			for _, e := range fe {
				elems = append(elems, e.For)
			}
		}
		if len(elems) == 0 {
			return netip.Addr{}, ReasonHeaderMissing
		}
		return c.walk(elems)
	case SourceHeader:
		peer, why := parsePeer(r.SourceAddress)
		if why != "" {
			return netip.Addr{}, why
		}
		if !containsAny(c.TrustedCIDRs, peer) {
			// The peer is not a proxy we trust: it is the client, and
			// whatever it claims in the header is ignored.
			return peer, ""
		}
		var val string
		n := 0
		for _, h := range r.Headers {
			if h[0] == c.Header {
				val = h[1]
				n++
			}
		}
		switch {
		case n == 0:
			return netip.Addr{}, ReasonHeaderMissing
		case n > 1:
			return netip.Addr{}, ReasonHeaderRepeated
		}
		return entryAddr(strings.TrimSpace(val))
	default:
		return parsePeer(r.SourceAddress)
	}
}

func parsePeer(s string) (netip.Addr, ResolveReason) {
	if s == "" {
		return netip.Addr{}, ReasonNoPeer
	}
	a, err := anonymize.ParsePeer(s)
	if err != nil {
		return netip.Addr{}, ReasonBadPeer
	}
	if a.IsUnspecified() {
		return netip.Addr{}, ReasonUnspecifiedAddr
	}
	return a, ""
}

// walk picks the client from entries ordered left (origin) to right
// (nearest proxy).
func (c *ClientIPConfig) walk(elems []string) (netip.Addr, ResolveReason) {
	i := len(elems) - 1 - c.TrustedHops
	if i < 0 {
		return netip.Addr{}, ReasonTooFewHops
	}
	for ; i >= 0; i-- {
		a, why := entryAddr(elems[i])
		if why != "" {
			return netip.Addr{}, why
		}
		if i > 0 && containsAny(c.TrustedCIDRs, a) {
			continue
		}
		// The leftmost entry is the client even when it is inside a
		// trusted range: every proxy on the way vouched for it.
		return a, ""
	}
	return netip.Addr{}, ReasonHeaderMissing // unreachable: i == 0 returns
}

// entryAddr parses one X-Forwarded-For / Forwarded / client header entry.
func entryAddr(e string) (netip.Addr, ResolveReason) {
	if e == "" {
		return netip.Addr{}, ReasonMalformed
	}
	if strings.EqualFold(e, "unknown") || e[0] == '_' {
		return netip.Addr{}, ReasonUnknownClient
	}
	a, err := anonymize.ParseHostPort(e)
	if err != nil {
		return netip.Addr{}, ReasonMalformed
	}
	if a.IsUnspecified() {
		return netip.Addr{}, ReasonUnspecifiedAddr
	}
	return a, ""
}

func containsAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

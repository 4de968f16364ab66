package anonymize

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Pseudonymizer replaces addresses by keyed, reversible pseudonyms, with a set
// of keys named by key id so that keys can be rotated: pseudonyms are always
// made with the current key, and any key of the set can reveal the
// pseudonyms it made.
//
// A pseudonym is the key id, a colon and the encrypted address in its usual
// text form:
//
//	k1:100.115.72.131
//	k1:c180:5dd4:2587:3524:30ab:fa65:6ab6:f88
//
// The key id comes first and never contains a colon, so the pseudonym splits
// at its first colon; the address part is a valid IP address, so log tools
// keep working. The cipher is chosen by the length of the key:
//
//   - 64 hex digits (32 bytes): ipcrypt-pfx, prefix-preserving. An IPv4
//     address stays IPv4 and addresses of one network share a pseudonym
//     prefix, so per-network counting still works; the network structure is
//     what leaks.
//   - 32 hex digits (16 bytes): ipcrypt-deterministic. Nothing but equality
//     is kept: the same address gives the same pseudonym, an IPv4 address
//     becomes an IPv6-looking one, and neighbours are unrelated. It is one
//     AES operation, about 15 times cheaper than ipcrypt-pfx for IPv4 and 60
//     times for IPv6, which matters in a Wasm VM (see [IPCryptPfx]).
//
// Both are deterministic: whoever sees two pseudonyms made with one key can
// tell whether they are the same address. That is the point (counting,
// rate limiting, joining logs) and also the limit: a pseudonym is personal
// data for whoever holds the key. Rotate keys to bound how long pseudonyms
// stay linkable. A Pseudonymizer is safe for concurrent use. Make one with
// [NewPseudonymizer]; a nil or zero Pseudonymizer gives [Placeholder] for
// every address and reveals nothing.
type Pseudonymizer struct {
	current string
	enc     addrCipher
	keys    map[string]addrCipher
}

type addrCipher interface {
	Encrypt(netip.Addr) netip.Addr
	Decrypt(netip.Addr) netip.Addr
}

// ErrPseudonym reports text that is not a pseudonym this Pseudonymizer can
// reveal.
var ErrPseudonym = errors.New("anonymize: not a pseudonym (want keyid:address)")

var (
	errKeyID       = errors.New("anonymize: key id must be 1 to 32 ASCII letters, digits, '-' or '_'")
	errNoKeys      = errors.New("anonymize: no pseudonym keys")
	errUnknownKey  = &detailError{"pseudonym was made with a key id this Pseudonymizer does not have", ErrPseudonym}
	errPseudonymIP = &detailError{"pseudonym does not hold a valid address", ErrPseudonym}
)

// NewPseudonymizer returns a Pseudonymizer with the keys given as a map from
// key id to hex key (32 or 64 hex digits, see [Pseudonymizer]; surrounding
// white space is ignored), making pseudonyms with the key named current. Key
// ids are 1 to 32 ASCII letters, digits, '-' or '_'. Errors name the key id
// at fault, never the key.
func NewPseudonymizer(current string, keys map[string]string) (*Pseudonymizer, error) {
	if len(keys) == 0 {
		return nil, errNoKeys
	}
	p := &Pseudonymizer{current: current, keys: make(map[string]addrCipher, len(keys))}
	for _, id := range slices.Sorted(maps.Keys(keys)) {
		if !validKeyID(id) {
			return nil, errKeyID
		}
		c, err := newAddrCipher(keys[id])
		if err != nil {
			return nil, fmt.Errorf("anonymize: pseudonym key %q: %w", id, err)
		}
		p.keys[id] = c
	}
	if !validKeyID(current) {
		return nil, errKeyID
	}
	enc, ok := p.keys[current]
	if !ok {
		return nil, fmt.Errorf("anonymize: current pseudonym key id %q is not among the keys", current)
	}
	p.enc = enc
	return p, nil
}

// ParsePseudonymKeys reads a key list in the form the filter and the CLI
// take from the environment, "id:hex[,id:hex…]", the first key current, and
// returns the Pseudonymizer. Errors name the entry or key id at fault, never
// a key.
func ParsePseudonymKeys(s string) (*Pseudonymizer, error) {
	keys := map[string]string{}
	current := ""
	for i, part := range strings.Split(s, ",") {
		id, hexKey, found := strings.Cut(strings.TrimSpace(part), ":")
		if !found || id == "" {
			return nil, fmt.Errorf("anonymize: pseudonym key %d is not id:hex", i+1)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("anonymize: pseudonym key id %q appears twice", id)
		}
		keys[id] = hexKey
		if current == "" {
			current = id
		}
	}
	return NewPseudonymizer(current, keys)
}

var (
	errPseudonymKeyHex  = errors.New("must be 32 hex digits (ipcrypt-deterministic) or 64 hex digits (ipcrypt-pfx)")
	errPseudonymKeyZero = errors.New("is all zeros, which is not a secret")
)

func newAddrCipher(hexKey string) (addrCipher, error) {
	hexKey = strings.TrimSpace(hexKey)
	if len(hexKey) != 32 && len(hexKey) != 64 {
		return nil, errPseudonymKeyHex
	}
	key, err := hex.DecodeString(hexKey)
	if err != nil {
		// hex's error quotes the offending character: never pass it on.
		return nil, errPseudonymKeyHex
	}
	if allZero(key) {
		return nil, errPseudonymKeyZero
	}
	if len(key) == 16 {
		return NewIPCryptDeterministic(key)
	}
	c, err := NewIPCryptPfx(key)
	if err != nil {
		return nil, errors.New("has two equal 16-byte halves; ipcrypt-pfx needs them to differ")
	}
	return c, nil
}

// validKeyID reports whether id is 1 to 32 ASCII letters, digits, '-' or '_'.
func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(isAlpha(c) || isDigit(c) || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// KeyID returns the id of the key that new pseudonyms are made with.
func (p *Pseudonymizer) KeyID() string { return p.current }

// Pseudonym returns the pseudonym of a made with the current key, such as
// k1:100.115.72.131. An IPv4-mapped address is unmapped first and a zone is
// ignored. An invalid a gives [Placeholder].
func (p *Pseudonymizer) Pseudonym(a netip.Addr) string {
	var buf [64]byte
	return string(p.AppendPseudonym(buf[:0], a))
}

// AppendPseudonym appends the text of [Pseudonymizer.Pseudonym] to b and
// returns the extended slice.
func (p *Pseudonymizer) AppendPseudonym(b []byte, a netip.Addr) []byte {
	if !a.IsValid() || p == nil || p.enc == nil {
		return append(b, Placeholder...)
	}
	e := p.enc.Encrypt(a.WithZone("").Unmap())
	b = append(b, p.current...)
	b = append(b, ':')
	return e.AppendTo(b)
}

// Reveal returns the address behind a pseudonym made by a Pseudonymizer with
// the same key. Errors never contain s.
func (p *Pseudonymizer) Reveal(s string) (netip.Addr, error) {
	id, addr, ok := strings.Cut(s, ":")
	if !ok || !validKeyID(id) {
		return netip.Addr{}, ErrPseudonym
	}
	if p == nil {
		return netip.Addr{}, errUnknownKey
	}
	c, ok := p.keys[id]
	if !ok {
		return netip.Addr{}, errUnknownKey
	}
	e, err := ParseIP(addr)
	if err != nil {
		return netip.Addr{}, errPseudonymIP
	}
	return c.Decrypt(e), nil
}

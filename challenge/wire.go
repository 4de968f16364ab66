package challenge

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

// Kinds of signed values. The kind is the first byte of every payload and
// is covered by the signature, so a value of one kind is never accepted as
// another (a pass cookie is not a puzzle, a CAPTCHA ticket needs no work).
const (
	kindPuzzle byte = 0x01
	kindPass   byte = 0x02
	kindTicket byte = 0x03
)

// Limits on what tokens and cookies carry.
const (
	// MaxNetworkLen is the longest network label, in bytes. The longest
	// masked IPv6 prefix is 43 bytes; the rest leaves room for keyed
	// pseudonyms.
	MaxNetworkLen = 96
	// MaxHostLen is the longest host, in bytes.
	MaxHostLen = 255
	// MaxReturnPathLen is the longest return path kept; a longer one
	// becomes "/".
	MaxReturnPathLen = 2048
	// MinDifficulty and MaxDifficulty bound a puzzle's difficulty, in
	// leading zero bits.
	MinDifficulty = 1
	MaxDifficulty = 32
	// MaxPuzzleTTL is the longest lifetime of a puzzle or CAPTCHA ticket.
	MaxPuzzleTTL = time.Hour
	// MaxPassTTL is the longest lifetime of a pass cookie.
	MaxPassTTL = 30 * 24 * time.Hour

	sigLen    = 32
	sigB64Len = 43

	maxPuzzlePayload = 1 + 1 + MaxKeyIDLen + 16 + 8 + 8 + 1 + 1 + MaxNetworkLen + 1 + MaxHostLen + 2 + MaxReturnPathLen
	maxPassPayload   = 1 + 1 + MaxKeyIDLen + 8 + 1 + MaxNetworkLen + 1 + MaxHostLen

	// MaxTokenLen is the longest puzzle or ticket token; longer input is
	// refused before any decoding.
	MaxTokenLen = (maxPuzzlePayload*4+2)/3 + 1 + sigB64Len
	// MaxPassLen is the longest pass cookie value.
	MaxPassLen = (maxPassPayload*4+2)/3 + 1 + sigB64Len
)

var (
	errNilKeyring   = errors.New("challenge: no keyring (parse one with ParseKeyring)")
	errNetworkEmpty = errors.New("challenge: network is empty (pass the masked client network, such as 203.0.113.0/24)")
	errNetworkChars = errors.New("challenge: network must be 1 to 96 printable ASCII bytes without spaces (a masked network such as 203.0.113.0/24)")
	errNetworkAddr  = errors.New("challenge: network is a single address; pass the masked network (such as 203.0.113.0/24), never a raw client address")
	errNetworkBits  = errors.New("challenge: network has host bits set; pass the masked network (Prefix.Masked()), never a raw client address")
	errHost         = errors.New("challenge: host must be at most 255 printable ASCII bytes without spaces")
	errBeforeEpoch  = errors.New("challenge: the clock is before 1970")
)

// checkNetwork makes sure a network label cannot carry a raw client
// address: an address (with or without port, brackets or zone), or a
// prefix with host bits set or of full length, is refused.
func checkNetwork(network string) error {
	if network == "" {
		return errNetworkEmpty
	}
	if len(network) > MaxNetworkLen || !printable(network) {
		return errNetworkChars
	}
	s := network
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return errNetworkAddr
	}
	if _, err := netip.ParseAddrPort(network); err == nil {
		return errNetworkAddr
	}
	if p, err := netip.ParsePrefix(network); err == nil {
		if p.Bits() == p.Addr().BitLen() {
			return errNetworkAddr
		}
		if p != p.Masked() {
			return errNetworkBits
		}
	}
	return nil
}

func checkHost(host string) error {
	if len(host) > MaxHostLen || !printable(host) {
		return errHost
	}
	return nil
}

// printable reports whether s is only ASCII 0x21..0x7e.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// ttlSeconds converts a lifetime to whole seconds, at least one.
func ttlSeconds(ttl, max time.Duration) (int64, bool) {
	if ttl < time.Second || ttl > max {
		return 0, false
	}
	return int64(ttl / time.Second), true
}

// sign returns base64url(payload) "." base64url(HMAC-SHA256(current key, payload)).
func (kr *Keyring) sign(payload []byte) string {
	mac := kr.keys[0].mac(payload)
	out := make([]byte, b64.EncodedLen(len(payload))+1+sigB64Len)
	b64.Encode(out, payload)
	n := b64.EncodedLen(len(payload))
	out[n] = '.'
	b64.Encode(out[n+1:], mac[:])
	return string(out)
}

// splitSigned decodes a signed value into payload (which must be large
// enough) and its signature. It checks the format only.
func splitSigned(value string, payload []byte, sig *[sigLen]byte) ([]byte, bool) {
	dot := -1
	for i := 0; i < len(value); i++ {
		if value[i] == '.' {
			dot = i
			break
		}
	}
	if dot <= 0 || len(value)-dot-1 != sigB64Len {
		return nil, false
	}
	n, ok := b64Decode(payload, value[:dot])
	if !ok || n == 0 {
		return nil, false
	}
	if m, ok := b64Decode(sig[:], value[dot+1:]); !ok || m != sigLen {
		return nil, false
	}
	return payload[:n], true
}

// checkSig finds the payload's key and compares signatures in constant time.
func (kr *Keyring) checkSig(keyID, payload []byte, sig *[sigLen]byte) error {
	k := kr.lookup(keyID)
	if k == nil {
		return ErrUnknownKey
	}
	mac := k.mac(payload)
	if subtle.ConstantTimeCompare(mac[:], sig[:]) != 1 {
		return ErrBadSignature
	}
	return nil
}

// reader walks a payload; any overrun clears ok and returns zero values.
type reader struct {
	b  []byte
	ok bool
}

func (r *reader) next(n int) []byte {
	if !r.ok || n > len(r.b) {
		r.ok = false
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	if v := r.next(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() int {
	if v := r.next(2); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (r *reader) i64() int64 {
	if v := r.next(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// str8 reads a string with a one-byte length prefix.
func (r *reader) str8() []byte { return r.next(int(r.u8())) }

// done reports whether the payload was read exactly to its end.
func (r *reader) done() bool { return r.ok && len(r.b) == 0 }

// keyID reads and checks a key id.
func (r *reader) keyID() []byte {
	id := r.str8()
	if len(id) == 0 || len(id) > MaxKeyIDLen {
		r.ok = false
		return nil
	}
	for _, c := range id {
		if !isKeyIDByte(c) {
			r.ok = false
			return nil
		}
	}
	return id
}

func appendStr8(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

// equalFoldASCII compares b and s ignoring ASCII case, without allocating.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

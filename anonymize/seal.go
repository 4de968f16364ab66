package anonymize

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
)

// sealInfo is the HPKE info prefix: it names the format and its version, and
// the key id follows it, so that a token sealed for one key id or format never
// opens as another.
const sealInfo = "ipveil sealed client address v1"

const sealedLen = 32 + 16 + 16 // X25519 enc, address, Poly1305 tag

var (
	// ErrToken reports a sealed token that is malformed, or that does not
	// open with the Opener's key: wrong key, or altered token.
	ErrToken = errors.New("anonymize: sealed token is malformed or does not open with this key")

	// ErrKeyMismatch reports a sealed token made for another key id than
	// the Opener's.
	ErrKeyMismatch = errors.New("anonymize: sealed token was made for another key id")

	errSealFailed = errors.New("anonymize: sealing failed")
	errNoSealer   = errors.New("anonymize: Sealer has no key; make one with NewSealer")
	errSealKey    = errors.New("anonymize: X25519 key must be the raw 32 bytes in base64 (standard or URL alphabet, padded or not) or 64 hex digits")
	errSealPub    = errors.New("anonymize: not a usable X25519 public key")
)

var sealKEM = hpke.DHKEM(ecdh.X25519())

// Sealer encrypts addresses to an operator's public key, so that the proxy
// can write an address it cannot read back: only the holder of the private
// key (see [Opener]) can. Use it for the rare record that must allow the
// address to be recovered later, for example for an abuse investigation,
// while everything else stays masked. Each seal makes a fresh X25519 key
// pair and a Diffie-Hellman exchange: about 0.2 ms natively and 1 ms in a
// Wasm VM, so seal the records that need it (a block, a challenge), not every
// request. A Sealer is safe for concurrent use; make one with [NewSealer].
//
// A token is printable ASCII, safe in headers, JSON and log lines:
//
//	<keyid>.<base64url(enc || ciphertext), unpadded>
//
// where enc || ciphertext is the output of single-shot HPKE (RFC 9180, base
// mode) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305
// (fast and constant-time in portable code, which is what a Wasm VM runs).
// The HPKE info is "ipveil sealed client address v1", a zero byte and the
// key id, binding both the format version and the key id. The plaintext is
// the 16-byte IPv6 form of the address (IPv4 addresses IPv4-mapped), so a
// token does not tell IPv4 from IPv6 by its length: it is always 86
// characters after the key id, and differs every time, even for the same
// address.
type Sealer struct {
	keyID string
	pub   hpke.PublicKey
	info  []byte
}

// NewSealer returns a Sealer for the given key id (1 to 32 ASCII letters,
// digits, '-' or '_') and X25519 public key: the raw 32 bytes in standard or
// URL-safe base64, padded or not, or as 64 hex digits; surrounding white
// space is ignored. [GenerateKeyPair] makes such keys.
func NewSealer(keyID, publicKey string) (*Sealer, error) {
	if !validKeyID(keyID) {
		return nil, errKeyID
	}
	raw, err := decodeKey32(publicKey)
	if err != nil {
		return nil, err
	}
	pub, err := sealKEM.NewPublicKey(raw)
	if err != nil {
		return nil, errSealPub
	}
	s := &Sealer{keyID: keyID, pub: pub, info: sealInfoFor(keyID)}
	// A low-order point passes NewPublicKey but fails every Seal: find out
	// now rather than on the first request.
	if _, err := s.Seal(netip.IPv6Unspecified()); err != nil {
		return nil, errSealPub
	}
	return s, nil
}

// KeyID returns the key id written in front of every token.
func (s *Sealer) KeyID() string { return s.keyID }

// Seal returns a token holding a, in the format described at [Sealer]. An
// IPv4-mapped address is unmapped first and a zone is dropped. An invalid a
// is an error ([ErrEmpty]).
func (s *Sealer) Seal(a netip.Addr) (string, error) {
	if s == nil || s.pub == nil {
		return "", errNoSealer
	}
	if !a.IsValid() {
		return "", ErrEmpty
	}
	pt := a.WithZone("").Unmap().As16()
	ct, err := hpke.Seal(s.pub, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), s.info, pt[:])
	if err != nil {
		return "", errSealFailed
	}
	b := make([]byte, 0, len(s.keyID)+1+base64.RawURLEncoding.EncodedLen(len(ct)))
	b = append(b, s.keyID...)
	b = append(b, '.')
	b = base64.RawURLEncoding.AppendEncode(b, ct)
	return string(b), nil
}

// Opener opens tokens made by a [Sealer] with the matching public key. It
// belongs with the operator, not in the proxy. An Opener is safe for
// concurrent use; make one with [NewOpener].
type Opener struct {
	keyID string
	priv  hpke.PrivateKey
	info  []byte
}

// NewOpener returns an Opener for the given key id and X25519 private key, in
// the encodings [NewSealer] accepts. Errors never contain the key.
func NewOpener(keyID, privateKey string) (*Opener, error) {
	if !validKeyID(keyID) {
		return nil, errKeyID
	}
	raw, err := decodeKey32(privateKey)
	if err != nil {
		return nil, err
	}
	priv, err := sealKEM.NewPrivateKey(raw)
	if err != nil {
		return nil, errSealKey
	}
	return &Opener{keyID: keyID, priv: priv, info: sealInfoFor(keyID)}, nil
}

// KeyID returns the key id of the tokens this Opener opens.
func (o *Opener) KeyID() string { return o.keyID }

// Open returns the address sealed in token. It fails with [ErrKeyMismatch]
// when the token names another key id, and with [ErrToken] when it is
// malformed, was made for another key, or was altered. Errors never contain
// the token.
func (o *Opener) Open(token string) (netip.Addr, error) {
	id, body, ok := strings.Cut(token, ".")
	if !ok || !validKeyID(id) || o == nil || o.priv == nil {
		return netip.Addr{}, ErrToken
	}
	if id != o.keyID {
		return netip.Addr{}, ErrKeyMismatch
	}
	if base64.RawURLEncoding.DecodedLen(len(body)) != sealedLen {
		return netip.Addr{}, ErrToken
	}
	// Strict: one token text per ciphertext, no variants in unused bits.
	ct, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil || len(ct) != sealedLen {
		return netip.Addr{}, ErrToken
	}
	pt, err := hpke.Open(o.priv, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), o.info, ct)
	if err != nil || len(pt) != 16 {
		return netip.Addr{}, ErrToken
	}
	return netip.AddrFrom16([16]byte(pt)).Unmap(), nil
}

// SealedKeyID returns the key id a sealed token names, so that a caller
// holding several Openers can pick the right one. It reports false for text
// that is not shaped like a token.
func SealedKeyID(token string) (string, bool) {
	id, _, ok := strings.Cut(token, ".")
	if !ok || !validKeyID(id) {
		return "", false
	}
	return id, true
}

// GenerateKeyPair makes a new X25519 key pair for [NewSealer] and
// [NewOpener], each the raw 32 bytes in standard padded base64. Give the
// public key to the proxy and keep the private key away from it.
func GenerateKeyPair() (publicKey, privateKey string, err error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(k.PublicKey().Bytes()),
		base64.StdEncoding.EncodeToString(k.Bytes()), nil
}

func sealInfoFor(keyID string) []byte {
	return []byte(sealInfo + "\x00" + keyID)
}

// decodeKey32 decodes a 32-byte key given as 64 hex digits or as base64 in
// any of the usual alphabets and paddings.
func decodeKey32(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 64 {
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, errSealKey
		}
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errSealKey
}

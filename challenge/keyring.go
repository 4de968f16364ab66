package challenge

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Key sizes accepted by [ParseKeyring], in bytes.
const (
	MinKeyBytes = 32
	MaxKeyBytes = 64
	// MaxKeyIDLen is the longest key id.
	MaxKeyIDLen = 16
	// MaxKeys is the largest number of keys in one keyring.
	MaxKeys = 16
)

// Keyring holds the HMAC-SHA256 keys that sign and verify puzzles, CAPTCHA
// tickets and pass cookies. Each key has a short id that travels in every
// token and cookie it signs. The first key is the current one: it signs
// everything new. All keys verify, so a key can be rotated without
// invalidating what is already out there:
//
//  1. prepend a new key: "k2:NEW,k1:OLD" (k2 now signs, k1 still verifies);
//  2. after the longest pass lifetime, drop the old one: "k2:NEW".
//
// Every replica and worker must have the same keyring. A Keyring is
// immutable and safe for concurrent use.
type Keyring struct {
	keys []ringKey // keys[0] is the current key
}

type ringKey struct {
	id string
	// ipad and opad are the key, zero-padded to the SHA-256 block size and
	// XORed with HMAC's inner and outer pad bytes (RFC 2104).
	ipad, opad [sha256.BlockSize]byte
}

var (
	errNoKeys       = errors.New("challenge: keys: no keys (want \"id:base64key\", comma-separated, current key first)")
	errTooManyKeys  = errors.New("challenge: keys: more than 16 keys")
	errKeyEntryForm = "is not id:base64key"
	errKeyIDForm    = "has an invalid key id (want 1 to 16 ASCII letters, digits, '-' or '_')"
	errKeyBase64    = "is not valid base64 (standard or URL alphabet, padded or not)"
	errKeySize      = "must decode to " + strconv.Itoa(MinKeyBytes) + " to " + strconv.Itoa(MaxKeyBytes) + " bytes (e.g. openssl rand -base64 32)"
	errKeyZero      = "is all zero bytes, which is not a secret"
)

// keyError names the entry (and its id when the id is valid) but never the
// key material.
func keyError(index int, id, problem string) error {
	s := "challenge: keys: entry " + strconv.Itoa(index+1)
	if id != "" {
		s += " (key id " + strconv.Quote(id) + ")"
	}
	return errors.New(s + " " + problem)
}

// ParseKeyring parses keys written as comma-separated id:key entries, the
// current (signing) key first:
//
//	k2:3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,k1:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=
//
// A key id is 1 to 16 ASCII letters, digits, '-' or '_'; ids must be
// distinct. A key is the base64 (standard or URL alphabet, with or without
// padding) of 32 to 64 random bytes, such as the output of
// "openssl rand -base64 32" or [NewKeyEntry]. White space around entries,
// ids and keys is ignored. At most 16 keys.
//
// The filter reads the string from the VM environment so that keys never
// appear in plain configuration. Errors name the entry by position and,
// when it is valid, by key id; they never contain key material.
func ParseKeyring(s string) (*Keyring, error) {
	entries := strings.Split(s, ",")
	if strings.TrimSpace(s) == "" {
		return nil, errNoKeys
	}
	if len(entries) > MaxKeys {
		return nil, errTooManyKeys
	}
	kr := &Keyring{keys: make([]ringKey, 0, len(entries))}
	for i, e := range entries {
		idPart, keyPart, ok := strings.Cut(e, ":")
		if !ok {
			return nil, keyError(i, "", errKeyEntryForm)
		}
		id := strings.TrimSpace(idPart)
		if !validKeyID(id) {
			return nil, keyError(i, "", errKeyIDForm)
		}
		for _, k := range kr.keys {
			if k.id == id {
				return nil, keyError(i, id, "repeats a key id used by an earlier entry")
			}
		}
		secret, ok := decodeKey(strings.TrimSpace(keyPart))
		if !ok {
			return nil, keyError(i, id, errKeyBase64)
		}
		if len(secret) < MinKeyBytes || len(secret) > MaxKeyBytes {
			return nil, keyError(i, id, errKeySize)
		}
		zero := true
		for _, b := range secret {
			zero = zero && b == 0
		}
		if zero {
			return nil, keyError(i, id, errKeyZero)
		}
		rk := ringKey{id: id}
		for j := range rk.ipad {
			var b byte
			if j < len(secret) {
				b = secret[j]
			}
			rk.ipad[j] = b ^ 0x36
			rk.opad[j] = b ^ 0x5c
		}
		clear(secret)
		kr.keys = append(kr.keys, rk)
	}
	return kr, nil
}

// decodeKey accepts standard or URL base64, padded or not.
func decodeKey(s string) ([]byte, bool) {
	if s == "" {
		return nil, false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && !strings.ContainsAny(s, "\r\n") {
			return b, true
		}
	}
	return nil, false
}

// NewKeyEntry returns a fresh keyring entry "id:base64key" holding 32
// bytes from crypto/rand, ready to be prepended to a keyring string. It
// fails only for an invalid id.
func NewKeyEntry(id string) (string, error) {
	if !validKeyID(id) {
		return "", keyError(0, "", errKeyIDForm)
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	return id + ":" + base64.StdEncoding.EncodeToString(b[:]), nil
}

// CurrentID returns the id of the key that signs new tokens and cookies.
func (kr *Keyring) CurrentID() string { return kr.keys[0].id }

// IDs returns the key ids, the current one first.
func (kr *Keyring) IDs() []string {
	ids := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		ids[i] = k.id
	}
	return ids
}

// lookup returns the key whose id is the bytes id, without allocating.
func (kr *Keyring) lookup(id []byte) *ringKey {
	for i := range kr.keys {
		if kr.keys[i].id == string(id) {
			return &kr.keys[i]
		}
	}
	return nil
}

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > MaxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isKeyIDByte(id[i]) {
			return false
		}
	}
	return true
}

func isKeyIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// macBuf is big enough for the HMAC of a pass payload without allocating.
const macStackBytes = sha256.BlockSize + maxPassPayload

// mac returns HMAC-SHA256(key, msg) per RFC 2104. The key is at most one
// block long, so its padded forms are precomputed in ringKey. Messages up to
// maxPassPayload bytes are hashed without allocating.
func (k *ringKey) mac(msg []byte) [sha256.Size]byte {
	var stack [macStackBytes]byte
	var buf []byte
	if n := sha256.BlockSize + len(msg); n <= len(stack) {
		buf = stack[:n]
	} else {
		buf = make([]byte, n)
	}
	copy(buf, k.ipad[:])
	copy(buf[sha256.BlockSize:], msg)
	inner := sha256.Sum256(buf)
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], k.opad[:])
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:])
}

package challenge

import (
	"encoding/binary"
	"errors"
	"time"
)

var errPassTTL = errors.New("challenge: pass TTL must be between 1s and 720h (30 days)")

// IssuePass makes a pass: the value of the cookie that turns a challenge
// into an allow for ttl (1s to [MaxPassTTL], in whole seconds). It is
// signed with the keyring's current key and carries that key's id, the
// expiry, the masked network and the host; never a client address (a
// single address as network is refused, see [PuzzleParams].Network). At
// most [MaxPassLen] bytes, all base64url and '.', so it needs no quoting in
// a cookie. Errors report invalid parameters, never visitor input.
func IssuePass(kr *Keyring, now time.Time, ttl time.Duration, network, host string) (string, error) {
	if kr == nil {
		return "", errNilKeyring
	}
	secs, ok := ttlSeconds(ttl, MaxPassTTL)
	if !ok {
		return "", errPassTTL
	}
	if err := checkNetwork(network); err != nil {
		return "", err
	}
	if err := checkHost(host); err != nil {
		return "", err
	}
	if now.Unix() < 0 {
		return "", errBeforeEpoch
	}
	id := kr.CurrentID()
	var stack [maxPassPayload]byte
	b := append(stack[:0], kindPass)
	b = appendStr8(b, id)
	b = binary.BigEndian.AppendUint64(b, uint64(now.Unix()+secs))
	b = appendStr8(b, network)
	b = appendStr8(b, host)
	return kr.sign(b), nil
}

// VerifyPass checks a pass cookie value for a request from network to
// host, at time now. It returns nil for a valid pass, or [ErrMalformed],
// [ErrUnknownKey], [ErrBadSignature], [ErrExpired], [ErrWrongNetwork] or
// [ErrWrongHost]. It runs on every challenged request, so it does not
// allocate.
//
// A valid pass turns a challenge verdict into allow. It never overrides a
// block (nor a deny list): the caller checks it only when the verdict is
// challenge.
//
// Measured: about 0.5 µs natively, about 9 µs in the Wasm module under
// wazero (SHA-256 without CPU extensions).
func VerifyPass(kr *Keyring, value string, now time.Time, network, host string) error {
	if kr == nil {
		return ErrUnknownKey
	}
	if len(value) > MaxPassLen {
		return ErrMalformed
	}
	var buf [maxPassPayload]byte
	var sig [sigLen]byte
	payload, ok := splitSigned(value, buf[:], &sig)
	if !ok || payload[0] != kindPass {
		return ErrMalformed
	}
	r := reader{b: payload[1:], ok: true}
	keyID := r.keyID()
	exp := r.i64()
	net := r.str8()
	hst := r.str8()
	if !r.done() {
		return ErrMalformed
	}
	if err := kr.checkSig(keyID, payload, &sig); err != nil {
		return err
	}
	if now.Unix() >= exp {
		return ErrExpired
	}
	if string(net) != network {
		return ErrWrongNetwork
	}
	if !equalFoldASCII(hst, host) {
		return ErrWrongHost
	}
	return nil
}

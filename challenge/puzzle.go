package challenge

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
	"time"
)

// PuzzleParams describe a puzzle (or CAPTCHA ticket) to issue.
type PuzzleParams struct {
	// TTL is how long the visitor has to solve the puzzle and post the
	// answer: 1s to [MaxPuzzleTTL], in whole seconds. A few minutes is
	// right; a redeemed puzzle is remembered by the [ReplayGuard] until it
	// expires.
	TTL time.Duration
	// Difficulty is the number of leading zero bits the answer's SHA-256
	// must have, 1 to 32. Each bit doubles the expected work; see the
	// package documentation for timings. [IssueTicket] ignores it.
	Difficulty int
	// Network is the masked client network the puzzle is bound to, such as
	// "203.0.113.0/24", or another label that is not an address (a keyed
	// pseudonym). A single address, or a prefix with host bits set, is
	// refused: the token must never carry a raw client address.
	Network string
	// Host is the request's :authority. Verification compares it ignoring
	// ASCII case.
	Host string
	// ReturnPath is where the visitor goes after solving, normally the
	// challenged request's :path. It passes through [SafeReturnPath]
	// first, so anything but a same-origin path becomes "/".
	ReturnPath string
}

// Puzzle is a verified puzzle or CAPTCHA ticket.
type Puzzle struct {
	// ID is the puzzle's 16 random bytes, the key of the replay guard.
	ID [16]byte
	// KeyID names the key that signed the token.
	KeyID string
	// IssuedAt and Expires are the token's lifetime, in whole seconds.
	IssuedAt, Expires time.Time
	// Difficulty is the number of leading zero bits required; 0 for a
	// CAPTCHA ticket.
	Difficulty int
	// Network and Host are what the token was bound to.
	Network, Host string
	// ReturnPath is a same-origin path (see [SafeReturnPath]): redirect
	// the visitor there with the pass cookie.
	ReturnPath string
}

var (
	errDifficulty = errors.New("challenge: difficulty must be between 1 and 32 leading zero bits")
	errPuzzleTTL  = errors.New("challenge: puzzle TTL must be between 1s and 1h")
)

// Issue makes a new proof-of-work puzzle signed with the keyring's current
// key and returns its token, a compact ASCII string (base64url payload,
// '.', base64url HMAC-SHA256) that is safe in HTML attributes, form fields
// and URLs without escaping. The token carries the masked network, the
// host and the return path in the clear (base64 is not encryption): they
// are the visitor's own. Errors report invalid parameters, never visitor
// input.
func Issue(kr *Keyring, now time.Time, p PuzzleParams) (string, error) {
	if p.Difficulty < MinDifficulty || p.Difficulty > MaxDifficulty {
		return "", errDifficulty
	}
	return issue(kr, now, kindPuzzle, p)
}

// IssueTicket makes a signed CAPTCHA ticket: the same token as [Issue]
// with no work to do (Difficulty is ignored). The CAPTCHA page posts it
// with the provider's answer, and [VerifyTicket] checks it before the
// provider is asked. A ticket is never accepted by [Verify], nor a puzzle
// by [VerifyTicket].
func IssueTicket(kr *Keyring, now time.Time, p PuzzleParams) (string, error) {
	p.Difficulty = 0
	return issue(kr, now, kindTicket, p)
}

func issue(kr *Keyring, now time.Time, kind byte, p PuzzleParams) (string, error) {
	var pid [16]byte
	_, _ = rand.Read(pid[:])
	return issueWithID(kr, now, kind, p, pid)
}

func issueWithID(kr *Keyring, now time.Time, kind byte, p PuzzleParams, pid [16]byte) (string, error) {
	if kr == nil {
		return "", errNilKeyring
	}
	ttl, ok := ttlSeconds(p.TTL, MaxPuzzleTTL)
	if !ok {
		return "", errPuzzleTTL
	}
	if err := checkNetwork(p.Network); err != nil {
		return "", err
	}
	if err := checkHost(p.Host); err != nil {
		return "", err
	}
	iat := now.Unix()
	if iat < 0 {
		return "", errBeforeEpoch
	}
	rp, _ := SafeReturnPath(p.ReturnPath)
	id := kr.CurrentID()
	b := make([]byte, 0, 1+1+len(id)+16+8+8+1+1+len(p.Network)+1+len(p.Host)+2+len(rp))
	b = append(b, kind)
	b = appendStr8(b, id)
	b = append(b, pid[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(iat))
	b = binary.BigEndian.AppendUint64(b, uint64(iat+ttl))
	b = append(b, byte(p.Difficulty))
	b = appendStr8(b, p.Network)
	b = appendStr8(b, p.Host)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rp)))
	b = append(b, rp...)
	return kr.sign(b), nil
}

// Verify checks a solved puzzle posted by a visitor and returns it. In
// order, it checks the token's format ([ErrMalformed]), its key id
// ([ErrUnknownKey]) and signature ([ErrBadSignature]), its expiry
// ([ErrExpired]), that it was issued to network ([ErrWrongNetwork]) and host
// ([ErrWrongHost]), the nonce's format ([ErrMalformed]) and work
// ([ErrInsufficientWork]), and last that guard has not seen the puzzle
// before ([ErrReplayed]); so only a correct answer uses the puzzle up. A
// nil guard skips the replay check: only tests should pass one.
//
// network and host are the verify request's, computed exactly as when the
// puzzle was issued. On success, redirect to Puzzle.ReturnPath with a pass
// from [IssuePass].
func Verify(kr *Keyring, guard ReplayGuard, token, nonce string, now time.Time, network, host string) (Puzzle, error) {
	p, err := verifyToken(kr, kindPuzzle, token, now, network, host)
	if err != nil {
		return Puzzle{}, err
	}
	if !validNonce(nonce) {
		return Puzzle{}, ErrMalformed
	}
	if LeadingZeroBits(token, nonce) < p.Difficulty {
		return Puzzle{}, ErrInsufficientWork
	}
	if guard != nil && !guard.FirstUse(p.ID, p.Expires) {
		return Puzzle{}, ErrReplayed
	}
	return p, nil
}

// VerifyTicket checks a CAPTCHA ticket from [IssueTicket] like [Verify]
// checks a puzzle, without the work, and marks it used in guard. Call it
// before asking the provider: a ticket allows one siteverify callout, so
// a replayed form never reaches the provider.
func VerifyTicket(kr *Keyring, guard ReplayGuard, token string, now time.Time, network, host string) (Puzzle, error) {
	p, err := verifyToken(kr, kindTicket, token, now, network, host)
	if err != nil {
		return Puzzle{}, err
	}
	if guard != nil && !guard.FirstUse(p.ID, p.Expires) {
		return Puzzle{}, ErrReplayed
	}
	return p, nil
}

func verifyToken(kr *Keyring, kind byte, token string, now time.Time, network, host string) (Puzzle, error) {
	if kr == nil {
		return Puzzle{}, ErrUnknownKey
	}
	if len(token) > MaxTokenLen {
		return Puzzle{}, ErrMalformed
	}
	var sig [sigLen]byte
	payload, ok := splitSigned(token, make([]byte, b64DecodedLen(len(token))+3), &sig)
	if !ok || payload[0] != kind {
		return Puzzle{}, ErrMalformed
	}
	r := reader{b: payload[1:], ok: true}
	keyID := r.keyID()
	id := r.next(16)
	iat := r.i64()
	exp := r.i64()
	diff := int(r.u8())
	net := r.str8()
	hst := r.str8()
	rp := r.next(r.u16())
	if !r.done() {
		return Puzzle{}, ErrMalformed
	}
	if err := kr.checkSig(keyID, payload, &sig); err != nil {
		return Puzzle{}, err
	}
	// Signed by us, so these hold unless a key leaked; checked anyway.
	if kind == kindPuzzle && (diff < MinDifficulty || diff > MaxDifficulty) || kind == kindTicket && diff != 0 ||
		iat < 0 || exp <= iat || exp-iat > int64(MaxPuzzleTTL/time.Second) {
		return Puzzle{}, ErrMalformed
	}
	if now.Unix() >= exp {
		return Puzzle{}, ErrExpired
	}
	if string(net) != network {
		return Puzzle{}, ErrWrongNetwork
	}
	if !equalFoldASCII(hst, host) {
		return Puzzle{}, ErrWrongHost
	}
	p := Puzzle{
		KeyID:      string(keyID),
		IssuedAt:   time.Unix(iat, 0),
		Expires:    time.Unix(exp, 0),
		Difficulty: diff,
		Network:    string(net),
		Host:       string(hst),
		ReturnPath: string(rp),
	}
	copy(p.ID[:], id)
	// A signed path is ours, but a path that was safe under an older rule
	// must still be safe now.
	p.ReturnPath, _ = SafeReturnPath(p.ReturnPath)
	return p, nil
}

// MaxNonceLen is the longest nonce accepted, in decimal digits.
const MaxNonceLen = 20

// validNonce reports whether nonce is 1 to 20 ASCII decimal digits.
func validNonce(nonce string) bool {
	if len(nonce) == 0 || len(nonce) > MaxNonceLen {
		return false
	}
	for i := 0; i < len(nonce); i++ {
		if nonce[i] < '0' || nonce[i] > '9' {
			return false
		}
	}
	return true
}

// LeadingZeroBits returns the number of leading zero bits of
// SHA-256(token ":" nonce), the quantity a puzzle's difficulty bounds from
// below.
func LeadingZeroBits(token, nonce string) int {
	buf := make([]byte, 0, len(token)+1+len(nonce))
	buf = append(append(append(buf, token...), ':'), nonce...)
	return zeroBits(sha256.Sum256(buf))
}

func zeroBits(sum [sha256.Size]byte) int {
	n := 0
	for _, b := range sum {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// Solve finds the smallest nonce (0, 1, 2, … in decimal) that solves a
// puzzle token at the given difficulty, as the challenge page's script
// does. It is for tests and load tools: expect 2^difficulty hashes. For a
// difficulty outside 0..32 it returns "0".
func Solve(token string, difficulty int) string {
	if difficulty < 0 || difficulty > MaxDifficulty {
		return "0"
	}
	buf := make([]byte, 0, len(token)+1+MaxNonceLen)
	buf = append(append(buf, token...), ':')
	prefix := len(buf)
	for n := uint64(0); ; n++ {
		buf = strconv.AppendUint(buf[:prefix], n, 10)
		if zeroBits(sha256.Sum256(buf)) >= difficulty {
			return string(buf[prefix:])
		}
	}
}

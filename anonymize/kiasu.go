package anonymize

import "sync"

// A portable AES-128 round function with a tweak added to every round key:
// the KIASU-BC tweakable block cipher used by ipcrypt-nd. The Go standard
// library does not expose AES rounds, so they are written out here. The state
// is the usual column-major 4x4 byte matrix: byte i is row i%4, column i/4.

var (
	sboxOnce      sync.Once
	sbox, invSbox [256]byte
)

// initSbox builds the AES S-box: the multiplicative inverse in GF(2^8)
// followed by the affine map, walking the group with generator 3.
func initSbox() {
	p, q := byte(1), byte(1)
	for {
		// p *= 3
		hi := p & 0x80
		p ^= p << 1
		if hi != 0 {
			p ^= 0x1b
		}
		// q /= 3, so q is the inverse of p
		q ^= q << 1
		q ^= q << 2
		q ^= q << 4
		if q&0x80 != 0 {
			q ^= 0x09
		}
		x := q ^ rotl8(q, 1) ^ rotl8(q, 2) ^ rotl8(q, 3) ^ rotl8(q, 4) ^ 0x63
		sbox[p] = x
		if p == 1 {
			break
		}
	}
	sbox[0] = 0x63
	for i := range 256 {
		invSbox[sbox[i]] = byte(i)
	}
}

func rotl8(x byte, n uint) byte { return x<<n | x>>(8-n) }

// xtime multiplies by x (that is, 2) in GF(2^8).
func xtime(b byte) byte {
	if b&0x80 != 0 {
		return b<<1 ^ 0x1b
	}
	return b << 1
}

func gmul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		a = xtime(a)
		b >>= 1
	}
	return p
}

// expandKey128 is the AES-128 key schedule.
func expandKey128(key *[16]byte, rk *[11][16]byte) {
	sboxOnce.Do(initSbox)
	rk[0] = *key
	rcon := byte(1)
	for r := 1; r <= 10; r++ {
		prev := &rk[r-1]
		cur := &rk[r]
		t := [4]byte{sbox[prev[13]] ^ rcon, sbox[prev[14]], sbox[prev[15]], sbox[prev[12]]}
		for i := range 4 {
			cur[i] = prev[i] ^ t[i]
		}
		for i := 4; i < 16; i++ {
			cur[i] = prev[i] ^ cur[i-4]
		}
		rcon = xtime(rcon)
	}
}

// padTweak spreads an 8-byte tweak over 16 bytes, two bytes at the start of
// each 4-byte column: t0 t1 0 0 t2 t3 0 0 t4 t5 0 0 t6 t7 0 0.
func padTweak(t *[8]byte) [16]byte {
	var p [16]byte
	for i := range 4 {
		p[4*i] = t[2*i]
		p[4*i+1] = t[2*i+1]
	}
	return p
}

func addRoundKey(s, k, t *[16]byte) {
	for i := range 16 {
		s[i] ^= k[i] ^ t[i]
	}
}

func subShift(s *[16]byte) {
	var o [16]byte
	for c := range 4 {
		for r := range 4 {
			o[4*c+r] = sbox[s[4*((c+r)&3)+r]]
		}
	}
	*s = o
}

func invShiftSub(s *[16]byte) {
	var o [16]byte
	for c := range 4 {
		for r := range 4 {
			o[4*((c+r)&3)+r] = invSbox[s[4*c+r]]
		}
	}
	*s = o
}

func mixColumns(s *[16]byte) {
	for c := range 4 {
		a0, a1, a2, a3 := s[4*c], s[4*c+1], s[4*c+2], s[4*c+3]
		all := a0 ^ a1 ^ a2 ^ a3
		s[4*c] = a0 ^ all ^ xtime(a0^a1)
		s[4*c+1] = a1 ^ all ^ xtime(a1^a2)
		s[4*c+2] = a2 ^ all ^ xtime(a2^a3)
		s[4*c+3] = a3 ^ all ^ xtime(a3^a0)
	}
}

func invMixColumns(s *[16]byte) {
	for c := range 4 {
		a0, a1, a2, a3 := s[4*c], s[4*c+1], s[4*c+2], s[4*c+3]
		s[4*c] = gmul(a0, 14) ^ gmul(a1, 11) ^ gmul(a2, 13) ^ gmul(a3, 9)
		s[4*c+1] = gmul(a0, 9) ^ gmul(a1, 14) ^ gmul(a2, 11) ^ gmul(a3, 13)
		s[4*c+2] = gmul(a0, 13) ^ gmul(a1, 9) ^ gmul(a2, 14) ^ gmul(a3, 11)
		s[4*c+3] = gmul(a0, 11) ^ gmul(a1, 13) ^ gmul(a2, 9) ^ gmul(a3, 14)
	}
}

// kiasuEncrypt encrypts s in place with KIASU-BC.
func kiasuEncrypt(rk *[11][16]byte, tweak *[8]byte, s *[16]byte) {
	t := padTweak(tweak)
	addRoundKey(s, &rk[0], &t)
	for r := 1; r < 10; r++ {
		subShift(s)
		mixColumns(s)
		addRoundKey(s, &rk[r], &t)
	}
	subShift(s)
	addRoundKey(s, &rk[10], &t)
}

// kiasuDecrypt decrypts s in place with KIASU-BC.
func kiasuDecrypt(rk *[11][16]byte, tweak *[8]byte, s *[16]byte) {
	t := padTweak(tweak)
	addRoundKey(s, &rk[10], &t)
	invShiftSub(s)
	for r := 9; r >= 1; r-- {
		addRoundKey(s, &rk[r], &t)
		invMixColumns(s)
		invShiftSub(s)
	}
	addRoundKey(s, &rk[0], &t)
}

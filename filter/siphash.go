package filter

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// clientKey is a keyed hash of a client address: SipHash-2-4 with the
// process-wide secret over the 16-byte (unmapped, then IPv6) form. It names
// the client in the verdict cache without being reversible: unlike a plain
// hash of an IPv4 address, it cannot be inverted by trying all 2^32 inputs
// without the secret.
type clientKey uint64

type sipKey struct{ k0, k1 uint64 }

func newSipKey(secret []byte) sipKey {
	return sipKey{binary.LittleEndian.Uint64(secret[0:8]), binary.LittleEndian.Uint64(secret[8:16])}
}

func (k sipKey) client(a netip.Addr) clientKey {
	b := a.Unmap().As16()
	return clientKey(sipHash24(k.k0, k.k1, b[:]))
}

// sipHash24 is SipHash-2-4 (Aumasson and Bernstein) with a 64-bit output.
func sipHash24(k0, k1 uint64, m []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(m)
	for len(m) >= 8 {
		w := binary.LittleEndian.Uint64(m)
		v3 ^= w
		round()
		round()
		v0 ^= w
		m = m[8:]
	}
	last := uint64(n) << 56
	for i := len(m) - 1; i >= 0; i-- {
		last |= uint64(m[i]) << (8 * uint(i))
	}
	v3 ^= last
	round()
	round()
	v0 ^= last
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}

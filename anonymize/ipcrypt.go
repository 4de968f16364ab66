package anonymize

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"net/netip"
)

// This file implements the four ciphers of draft-denis-ipcrypt. Every one of
// them works on the 16-byte IPv6 form of an address, IPv4 addresses being
// IPv4-mapped (::ffff:a.b.c.d), and shows IPv4-mapped results as IPv4.

var (
	errKey16         = errors.New("anonymize: ipcrypt key must be 16 bytes")
	errKey32         = errors.New("anonymize: ipcrypt key must be 32 bytes")
	errKeyHalves     = errors.New("anonymize: the two 16-byte halves of an ipcrypt key must differ")
	errCiphertextLen = errors.New("anonymize: ipcrypt ciphertext has the wrong length")
)

// IPCryptDeterministic is ipcrypt-deterministic: AES-128 applied to the
// 16-byte form of an address. The same address always gives the same result,
// which is shown as an address (IPv4 only when the result happens to be
// IPv4-mapped, so an IPv4 address nearly always becomes an IPv6-looking one).
// It hides everything, including which addresses share a network.
type IPCryptDeterministic struct {
	block cipher.Block
}

// NewIPCryptDeterministic returns ipcrypt-deterministic with a 16-byte key.
// The error never contains the key.
func NewIPCryptDeterministic(key []byte) (*IPCryptDeterministic, error) {
	if len(key) != 16 {
		return nil, errKey16
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, errKey16
	}
	return &IPCryptDeterministic{block: b}, nil
}

// Encrypt returns the pseudonym of a. An invalid a gives the zero Addr; a
// zone is ignored.
func (c *IPCryptDeterministic) Encrypt(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return netip.Addr{}
	}
	b := a.As16()
	c.block.Encrypt(b[:], b[:])
	return netip.AddrFrom16(b).Unmap()
}

// Decrypt returns the address whose pseudonym is a. An invalid a gives the
// zero Addr.
func (c *IPCryptDeterministic) Decrypt(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return netip.Addr{}
	}
	b := a.As16()
	c.block.Decrypt(b[:], b[:])
	return netip.AddrFrom16(b).Unmap()
}

// IPCryptPfx is ipcrypt-pfx, the prefix-preserving mode: two addresses that
// share their first n bits give pseudonyms that share their first n bits, so
// networks can still be counted and compared, and an IPv4 address stays an
// IPv4 address. This is also what it leaks: whoever sees many pseudonyms
// sees the network structure. Every bit costs two AES-128 operations (64 for
// IPv4, 256 for IPv6): about 1 µs and 4 µs natively with AES instructions,
// but about 14 µs and 50 µs in a Wasm VM, where AES runs in portable code.
type IPCryptPfx struct {
	k1, k2 cipher.Block
}

// NewIPCryptPfx returns ipcrypt-pfx with a 32-byte key, split into two
// AES-128 keys that must differ. The error never contains the key.
func NewIPCryptPfx(key []byte) (*IPCryptPfx, error) {
	if len(key) != 32 {
		return nil, errKey32
	}
	if subtle.ConstantTimeCompare(key[:16], key[16:]) == 1 {
		return nil, errKeyHalves
	}
	k1, err1 := aes.NewCipher(key[:16])
	k2, err2 := aes.NewCipher(key[16:])
	if err1 != nil || err2 != nil {
		return nil, errKey32
	}
	return &IPCryptPfx{k1: k1, k2: k2}, nil
}

// Encrypt returns the prefix-preserving pseudonym of a. An invalid a gives the
// zero Addr; a zone is ignored.
func (c *IPCryptPfx) Encrypt(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return netip.Addr{}
	}
	return c.run(a.As16(), true)
}

// Decrypt returns the address whose prefix-preserving pseudonym is a. An
// invalid a gives the zero Addr.
func (c *IPCryptPfx) Decrypt(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return netip.Addr{}
	}
	return c.run(a.As16(), false)
}

// run encrypts or decrypts in, bit by bit from the most significant. Bit i of
// the output is bit i of the input XOR a pseudorandom bit computed from the
// i bits of the original address before it. That prefix is fed to the
// pseudorandom function as a 128-bit block holding a 1 followed by the prefix
// bits, right-aligned; the function is AES(K1, block) XOR AES(K2, block), of
// which the least significant bit is used. IPv4-mapped addresses start at bit
// 96 with the 96-bit mapping prefix, so IPv4 stays IPv4.
func (c *IPCryptPfx) run(in [16]byte, encrypt bool) netip.Addr {
	var out [16]byte
	start := 0
	var hi, lo uint64 = 0, 1 // 1 || empty prefix
	if isMapped(&in) {
		start = 96
		out[10], out[11] = 0xff, 0xff
		hi, lo = 1<<32, 0xffff // 1 || 80 zero bits || 16 one bits
	}
	// One buffer for the block and both AES outputs: passing slices to an
	// interface method moves them to the heap, so allocate once.
	var scratch [48]byte
	blk, e1, e2 := scratch[:16], scratch[16:32], scratch[32:]
	for i := start; i < 128; i++ {
		binary.BigEndian.PutUint64(blk[:8], hi)
		binary.BigEndian.PutUint64(blk[8:], lo)
		c.k1.Encrypt(e1, blk)
		c.k2.Encrypt(e2, blk)
		prf := (e1[15] ^ e2[15]) & 1
		shift := 7 - uint(i&7)
		inBit := in[i>>3] >> shift & 1
		outBit := inBit ^ prf
		out[i>>3] |= outBit << shift
		orig := inBit // the original address's bit feeds the prefix
		if !encrypt {
			orig = outBit
		}
		hi = hi<<1 | lo>>63
		lo = lo<<1 | uint64(orig)
	}
	return netip.AddrFrom16(out).Unmap()
}

func isMapped(b *[16]byte) bool {
	return allZero(b[:10]) && b[10] == 0xff && b[11] == 0xff
}

// IPCryptND is ipcrypt-nd: the KIASU-BC tweakable block cipher (AES-128 with
// an 8-byte tweak added to every round key) applied to the 16-byte form of an
// address under a random tweak. The same address gives a different 24-byte
// ciphertext (tweak || block) every time, so ciphertexts cannot be linked
// without the key. Its AES rounds are computed here in portable Go with
// table lookups, which are not constant-time; use it where the key holder
// controls the machine (for example in the CLI), not to serve untrusted
// requests with a secret key on shared hardware.
type IPCryptND struct {
	rk [11][16]byte
}

// NewIPCryptND returns ipcrypt-nd with a 16-byte key. The error never contains
// the key.
func NewIPCryptND(key []byte) (*IPCryptND, error) {
	if len(key) != 16 {
		return nil, errKey16
	}
	c := new(IPCryptND)
	expandKey128((*[16]byte)(key), &c.rk)
	return c, nil
}

// Encrypt appends to dst the 24-byte ciphertext of a under a fresh random
// tweak and returns the extended slice. An invalid a appends nothing.
func (c *IPCryptND) Encrypt(dst []byte, a netip.Addr) []byte {
	var t [8]byte
	rand.Read(t[:])
	return c.EncryptTweak(dst, a, t)
}

// EncryptTweak is Encrypt with a given tweak. A tweak must never be reused
// with the same key: it is for tests and for callers with their own source of
// unique tweaks.
func (c *IPCryptND) EncryptTweak(dst []byte, a netip.Addr, tweak [8]byte) []byte {
	if !a.IsValid() {
		return dst
	}
	b := a.As16()
	kiasuEncrypt(&c.rk, &tweak, &b)
	dst = append(dst, tweak[:]...)
	return append(dst, b[:]...)
}

// Decrypt returns the address in a 24-byte ciphertext made by Encrypt.
func (c *IPCryptND) Decrypt(ciphertext []byte) (netip.Addr, error) {
	if len(ciphertext) != 24 {
		return netip.Addr{}, errCiphertextLen
	}
	var t [8]byte
	var b [16]byte
	copy(t[:], ciphertext[:8])
	copy(b[:], ciphertext[8:])
	kiasuDecrypt(&c.rk, &t, &b)
	return netip.AddrFrom16(b).Unmap(), nil
}

// IPCryptNDX is ipcrypt-ndx: AES-XTS-style tweakable encryption of the
// 16-byte form of an address with a 32-byte key (K1 encrypts, K2 encrypts the
// tweak) and a random 16-byte tweak, giving a 32-byte ciphertext
// (tweak || block). Like [IPCryptND] it cannot be linked without the key, and
// its larger tweak makes collisions negligible for any number of addresses.
type IPCryptNDX struct {
	k1, k2 cipher.Block
}

// NewIPCryptNDX returns ipcrypt-ndx with a 32-byte key. The error never
// contains the key.
func NewIPCryptNDX(key []byte) (*IPCryptNDX, error) {
	if len(key) != 32 {
		return nil, errKey32
	}
	k1, err1 := aes.NewCipher(key[:16])
	k2, err2 := aes.NewCipher(key[16:])
	if err1 != nil || err2 != nil {
		return nil, errKey32
	}
	return &IPCryptNDX{k1: k1, k2: k2}, nil
}

// Encrypt appends to dst the 32-byte ciphertext of a under a fresh random
// tweak and returns the extended slice. An invalid a appends nothing.
func (c *IPCryptNDX) Encrypt(dst []byte, a netip.Addr) []byte {
	var t [16]byte
	rand.Read(t[:])
	return c.EncryptTweak(dst, a, t)
}

// EncryptTweak is Encrypt with a given tweak, which must never be reused with
// the same key.
func (c *IPCryptNDX) EncryptTweak(dst []byte, a netip.Addr, tweak [16]byte) []byte {
	if !a.IsValid() {
		return dst
	}
	b := a.As16()
	var et [16]byte
	c.k2.Encrypt(et[:], tweak[:])
	subtle.XORBytes(b[:], b[:], et[:])
	c.k1.Encrypt(b[:], b[:])
	subtle.XORBytes(b[:], b[:], et[:])
	dst = append(dst, tweak[:]...)
	return append(dst, b[:]...)
}

// Decrypt returns the address in a 32-byte ciphertext made by Encrypt.
func (c *IPCryptNDX) Decrypt(ciphertext []byte) (netip.Addr, error) {
	if len(ciphertext) != 32 {
		return netip.Addr{}, errCiphertextLen
	}
	var et, b [16]byte
	c.k2.Encrypt(et[:], ciphertext[:16])
	subtle.XORBytes(b[:], ciphertext[16:], et[:])
	c.k1.Decrypt(b[:], b[:])
	subtle.XORBytes(b[:], b[:], et[:])
	return netip.AddrFrom16(b).Unmap(), nil
}

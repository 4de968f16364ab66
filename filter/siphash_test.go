package filter

import "testing"

// The reference vectors of the SipHash paper (appendix A): key 00..0f,
// messages 00, 00 01, 00 01 02, … of length 0..63.
func TestSipHash24Vectors(t *testing.T) {
	want := map[int]uint64{
		0:  0x726fdb47dd0e0e31,
		1:  0x74f839c593dc67fd,
		7:  0xab0200f58b01d137,
		8:  0x93f5f5799a932462,
		15: 0xa129ca6149be45e5,
		16: 0x3f2acc7f57c29bdb,
		63: 0x958a324ceb064572,
	}
	var k [16]byte
	for i := range k {
		k[i] = byte(i)
	}
	key := newSipKey(k[:])
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	for n, w := range want {
		if got := sipHash24(key.k0, key.k1, msg[:n]); got != w {
			t.Errorf("len %d: %#x, want %#x", n, got, w)
		}
	}
}

package challenge

import "encoding/base64"

// b64 encodes tokens and cookies: base64url without padding (RFC 4648 §5).
var b64 = base64.RawURLEncoding

// b64DecodedLen is the number of bytes n base64url characters decode to,
// or -1 if no canonical encoding has n characters.
func b64DecodedLen(n int) int {
	if n%4 == 1 {
		return -1
	}
	return n/4*3 + (n%4*6)/8
}

// b64Value maps an ASCII byte to its base64url value, or 0xff.
var b64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// b64Decode decodes unpadded base64url s into dst, which must hold
// b64DecodedLen(len(s)) bytes, without allocating. It is strict: every
// character must be in the URL alphabet (no padding, no line breaks) and
// the unused low bits of the last character must be zero, so each byte
// string has exactly one accepted text.
func b64Decode(dst []byte, s string) (int, bool) {
	n := b64DecodedLen(len(s))
	if n < 0 || n > len(dst) {
		return 0, false
	}
	di := 0
	i := 0
	for ; i+4 <= len(s); i += 4 {
		a, b, c, d := b64Value[s[i]], b64Value[s[i+1]], b64Value[s[i+2]], b64Value[s[i+3]]
		if (a|b|c|d)&0xc0 != 0 { // 0xff (not in the alphabet) has these bits set
			return 0, false
		}
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		dst[di], dst[di+1], dst[di+2] = byte(v>>16), byte(v>>8), byte(v)
		di += 3
	}
	switch len(s) - i {
	case 2:
		a, b := b64Value[s[i]], b64Value[s[i+1]]
		if (a|b)&0xc0 != 0 || b&0x0f != 0 {
			return 0, false
		}
		dst[di] = a<<2 | b>>4
		di++
	case 3:
		a, b, c := b64Value[s[i]], b64Value[s[i+1]], b64Value[s[i+2]]
		if (a|b|c)&0xc0 != 0 || c&0x03 != 0 {
			return 0, false
		}
		dst[di], dst[di+1] = a<<2|b>>4, b<<4|c>>2
		di += 2
	}
	return di, true
}

package anonymize

import (
	"errors"
	"net/netip"
)

// Placeholder is written in place of a value that is not a valid address (or
// could not be masked), so that malformed input is never echoed. It is a valid
// HTTP token, so it can stand in X-Forwarded-For and RFC 7239 Forwarded
// values, and it is not an address, so no reader mistakes it for one.
const Placeholder = "invalid"

// Masker reduces an address to the network it belongs to: the first V4Bits
// bits of an IPv4 address or the first V6Bits bits of an IPv6 address are kept
// and the rest are set to zero.
//
// Build one with [NewMasker], or use [DefaultMasker] (/24 and /64) or
// [StrongMasker] (/16 and /48). A Masker is a small value type and is safe for
// concurrent use. A Masker whose fields are out of range (set directly rather
// than through NewMasker) masks every address to [Placeholder]: out-of-range
// widths are never clamped, because clamping up would keep the whole address.
//
// Masking rules, applied in order:
//
//   - An invalid (zero) [netip.Addr] gives [Placeholder]. A zone is dropped.
//   - An IPv4-mapped address (::ffff:192.0.2.1) is unmapped first and masked
//     as IPv4, never as IPv6 (which with /64 would give ::/64 or keep it whole).
//   - A deprecated IPv4-compatible address (::192.0.2.1: ::/96 with nonzero low
//     32 bits, except :: and ::1) is masked as the IPv4 address it carries and
//     shown as IPv4 (192.0.2.0/24).
//   - An IPv6 address that carries an IPv4 address at a known bit offset is
//     masked to min(V6Bits, offset+V4Bits) bits, so that no more of the
//     embedded IPv4 address survives than V4Bits:
//     6to4 2002::/16 (offset 16, so /40 by default);
//     Teredo 2001::/32 (server IPv4 at offset 32, so /56 by default; the
//     obfuscated client IPv4 address and port in the low 48 bits are always
//     removed);
//     NAT64 well-known prefix 64:ff9b::/96 (offset 96, so /64 by default,
//     which removes the IPv4 address entirely);
//     NAT64 local-use 64:ff9b:1::/48 (RFC 8215): the operator may embed the
//     IPv4 address with any RFC 6052 prefix length from /48 up, so it is
//     assumed to start at the earliest possible offset, 48 (/64 by default,
//     which keeps at most 16 of its bits);
//     SIIT IPv4-translated ::ffff:0:0/96 (RFC 2765) and ISATAP interface
//     identifiers (::0:5efe:a.b.c.d and ::200:5efe:a.b.c.d, RFC 5214) at
//     offset 96, which matters only when V6Bits is above 64.
//     IPv4 addresses embedded under an operator's own NAT64 prefix cannot be
//     recognised; keep V6Bits at 64 or less to remove them.
//   - Any other IPv6 address is masked to V6Bits.
//
// V4Bits 32 or V6Bits 128 keep whole addresses; use them only where that is
// what is wanted.
type Masker struct {
	// V4Bits is the number of leading bits kept of an IPv4 address, 0 to 32.
	V4Bits int
	// V6Bits is the number of leading bits kept of an IPv6 address, 0 to 128.
	V6Bits int
}

// DefaultMasker keeps an IPv4 /24 and an IPv6 /64: the network of a typical
// subscriber line or LAN, still useful to tell abusive networks apart.
var DefaultMasker = Masker{V4Bits: 24, V6Bits: 64}

// StrongMasker keeps an IPv4 /16 and an IPv6 /48: enough to see a provider or
// a site, no longer a single household.
var StrongMasker = Masker{V4Bits: 16, V6Bits: 48}

var (
	errV4Bits = errors.New("anonymize: IPv4 prefix length must be between 0 and 32")
	errV6Bits = errors.New("anonymize: IPv6 prefix length must be between 0 and 128")
)

// NewMasker returns a Masker keeping v4 bits of IPv4 addresses (0 to 32) and
// v6 bits of IPv6 addresses (0 to 128).
func NewMasker(v4, v6 int) (Masker, error) {
	if v4 < 0 || v4 > 32 {
		return Masker{}, errV4Bits
	}
	if v6 < 0 || v6 > 128 {
		return Masker{}, errV6Bits
	}
	return Masker{V4Bits: v4, V6Bits: v6}, nil
}

func (m Masker) valid() bool {
	return 0 <= m.V4Bits && m.V4Bits <= 32 && 0 <= m.V6Bits && m.V6Bits <= 128
}

// Prefix returns the masked network of a: its address has every bit past the
// prefix length set to zero. See [Masker] for the rules. It returns the zero
// [netip.Prefix] (whose IsValid is false) for an invalid address or an
// out-of-range Masker. Prefix does not allocate.
func (m Masker) Prefix(a netip.Addr) netip.Prefix {
	if !a.IsValid() || !m.valid() {
		return netip.Prefix{}
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, m.V4Bits).Masked()
	}
	b := a.As16()
	if v4, ok := ipv4Compatible(&b); ok {
		return netip.PrefixFrom(v4, m.V4Bits).Masked()
	}
	bits := m.V6Bits
	if off := embeddedIPv4Offset(&b); off >= 0 {
		bits = min(bits, off+m.V4Bits)
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// String returns the masked network of a as text, network/length:
// 203.0.113.0/24, 2001:db8:1:2::/64. It returns [Placeholder] for an invalid
// address or an out-of-range Masker.
func (m Masker) String(a netip.Addr) string {
	var buf [64]byte
	return string(m.AppendTo(buf[:0], a))
}

// AppendTo appends the text of [Masker.String] to b and returns the extended
// slice. It does not allocate when b has room.
func (m Masker) AppendTo(b []byte, a netip.Addr) []byte {
	p := m.Prefix(a)
	if !p.IsValid() {
		return append(b, Placeholder...)
	}
	return p.AppendTo(b)
}

// ipv4Compatible reports the IPv4 address carried by a deprecated
// IPv4-compatible IPv6 address (RFC 4291 section 2.5.5.1): ::/96 with nonzero
// low 32 bits, except ::1.
func ipv4Compatible(b *[16]byte) (netip.Addr, bool) {
	for i := 0; i < 12; i++ {
		if b[i] != 0 {
			return netip.Addr{}, false
		}
	}
	if b[12]|b[13]|b[14] == 0 && b[15] <= 1 {
		return netip.Addr{}, false // :: and ::1
	}
	return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
}

// embeddedIPv4Offset returns the bit offset at which an IPv6 address of a
// known IPv4-embedding form carries an IPv4 address, or -1.
func embeddedIPv4Offset(b *[16]byte) int {
	switch {
	case b[0] == 0x20 && b[1] == 0x02:
		return 16 // 6to4, RFC 3056: 2002:AABB:CCDD::/48
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0:
		return 32 // Teredo, RFC 4380: 2001:0:SSSS:SSSS:flags:port:cccc:cccc
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b:
		if allZero(b[4:12]) {
			return 96 // NAT64 well-known prefix, RFC 6052: 64:ff9b::/96
		}
		if b[4] == 0 && b[5] == 1 {
			return 48 // NAT64 local-use prefix, RFC 8215: 64:ff9b:1::/48
		}
	case allZero(b[0:8]) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0:
		return 96 // IPv4-translated, RFC 2765: ::ffff:0:a.b.c.d
	}
	if (b[8] == 0 || b[8] == 0x02) && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe {
		return 96 // ISATAP interface identifier, RFC 5214
	}
	return -1
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

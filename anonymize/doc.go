// Package anonymize parses, masks, pseudonymizes and seals client IP addresses
// so that a raw address never has to be written anywhere it could persist.
//
// It is pure Go on the standard library and compiles to WebAssembly for a
// Proxy-Wasm filter: it uses [net/netip], never net (whose WASI imports Envoy
// does not provide). Everything is safe for concurrent use.
//
// # Parsing
//
// [ParseIP], [ParseHostPort] and [ParsePeer] are strict: they accept only the
// canonical textual forms of RFC 4291 and dotted-decimal IPv4 without leading
// zeros, reject zones on anything that came from a request header (a zone is
// free text and could smuggle anything into a log), and return IPv4-mapped
// IPv6 addresses unmapped, so that ::ffff:192.0.2.1 and 192.0.2.1 are the same
// client everywhere. Their errors are fixed values that never contain the
// input, because errors end up in logs.
//
// # Masking
//
// A [Masker] reduces an address to its network: 203.0.113.7 becomes
// 203.0.113.0/24 and 2001:db8:1:2:3:4:5:6 becomes 2001:db8:1:2::/64 with
// [DefaultMasker]. Addresses that carry an IPv4 address inside an IPv6 one
// (IPv4-compatible, 6to4, NAT64, Teredo, ISATAP, SIIT) are masked so that the
// embedded IPv4 address is never kept beyond the IPv4 prefix length. The
// header helpers ([Masker.MaskXFF], [Masker.MaskForwarded],
// [Masker.MaskHeaderValue]) mask every address in X-Forwarded-For, RFC 7239
// Forwarded and single-address headers; anything that does not parse becomes
// [Placeholder].
//
// Masked /24 and /64 networks are pseudonymous, not anonymous: a /24 is often
// one household or one small office. [StrongMasker] keeps /16 and /48.
//
// # Pseudonyms
//
// [Pseudonymizer] replaces an address by a keyed, reversible pseudonym such as
// k1:100.115.72.131, using ipcrypt-pfx or ipcrypt-deterministic from
// draft-denis-ipcrypt. The ciphers themselves are [IPCryptDeterministic],
// [IPCryptPfx], [IPCryptND] and [IPCryptNDX].
//
// # Sealed audit values
//
// A [Sealer] encrypts an address to an operator's X25519 public key with HPKE
// (RFC 9180). The proxy holds only the public key, so it cannot open what it
// wrote; the operator opens a token with an [Opener] when an investigation
// needs the address.
//
// # Scrubbing
//
// [ScrubText] finds every IPv4 and IPv6 address in a line of free text (access
// logs, JSON lines) and replaces it.
package anonymize

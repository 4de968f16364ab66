package anonymize

import "errors"

// Errors returned by the parsers. They are fixed values: an error never
// contains the text that was rejected, so it is safe to log. Compare with
// [errors.Is]; more specific errors match the general one they refine (every
// malformed-address error matches [ErrSyntax]).
var (
	// ErrEmpty reports an empty address.
	ErrEmpty = errors.New("anonymize: empty address")

	// ErrSyntax reports text that is not an IP address in a form this
	// package accepts: dotted-decimal IPv4 with four octets 0-255 and no
	// leading zeros, or RFC 4291 IPv6. Surrounding white space is not
	// trimmed.
	ErrSyntax = errors.New("anonymize: not an IP address (want dotted-decimal IPv4 or RFC 4291 IPv6)")

	// ErrZone reports an IPv6 zone (scope) suffix such as %eth0 in a value
	// that came from a request header. A zone is free text chosen by the
	// sender, so it is refused rather than carried along.
	ErrZone = errors.New("anonymize: address has a zone suffix (%...), which is not accepted from request headers")

	// ErrPort reports a port that is empty, longer than five digits, not
	// decimal, or greater than 65535.
	ErrPort = errors.New("anonymize: invalid port (want 1 to 5 decimal digits, at most 65535)")

	// ErrUnknown reports the RFC 7239 / X-Forwarded-For node "unknown": the
	// sender did not know the address.
	ErrUnknown = errors.New(`anonymize: node is "unknown"`)

	// ErrObfuscated reports an RFC 7239 obfuscated node identifier (one
	// starting with an underscore): a label, not an address.
	ErrObfuscated = errors.New("anonymize: node is an obfuscated identifier, not an address")
)

// detailError is a more precise form of a sentinel error: it matches base
// with errors.Is. Values are package-level, so returning one never allocates.
type detailError struct {
	msg  string
	base error
}

func (e *detailError) Error() string        { return "anonymize: " + e.msg }
func (e *detailError) Is(target error) bool { return target == e.base }

var (
	errIPv4Syntax = &detailError{"malformed IPv4 address (want four decimal octets 0-255 without leading zeros)", ErrSyntax}
	errIPv6Syntax = &detailError{"malformed IPv6 address (want RFC 4291 text form)", ErrSyntax}
	errBrackets   = &detailError{"misplaced brackets (only an IPv6 address may be bracketed, as [v6] or [v6]:port)", ErrSyntax}
	errZoneSyntax = &detailError{"malformed zone (want printable ASCII without spaces after %)", ErrSyntax}
	errHostPort   = &detailError{"text after the address (want address, address:port, [v6] or [v6]:port)", ErrSyntax}
)

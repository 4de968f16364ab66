package challenge

import (
	"errors"
	"strings"
)

// Error is the type of every error this package returns for a visitor's
// input. Its message says what happened and what to do about it and never
// contains a key, a token, a cookie or an address, so it is safe to log.
// Reason gives a short, fixed snake_case name for metrics and decision lines.
//
// The values below are the only Errors; compare with [errors.Is]. A
// [*CaptchaError] matches [ErrCaptchaFailed].
type Error struct {
	reason string
	msg    string
}

// Error returns the message, prefixed with "challenge: ".
func (e *Error) Error() string { return "challenge: " + e.msg }

// Reason returns the fixed metric-safe name of the error, such as "expired".
// Reasons contain only [a-z_].
func (e *Error) Reason() string { return e.reason }

var (
	// ErrMalformed reports a token, cookie or nonce that is not in this
	// package's format (bad base64, wrong length, unknown version, trailing
	// bytes, a token of another kind). The visitor should get a new
	// challenge.
	ErrMalformed = &Error{"malformed", "token or cookie is malformed; answer with a new challenge"}

	// ErrBadSignature reports a token or cookie whose signature does not
	// match its content: it was altered or forged. Answer with a new
	// challenge.
	ErrBadSignature = &Error{"bad_signature", "token or cookie signature does not match (altered or forged); answer with a new challenge"}

	// ErrUnknownKey reports a token or cookie signed with a key id that is
	// not in the keyring, usually because the key was removed after a
	// rotation. Answer with a new challenge; keep old keys in the keyring
	// for at least the longest pass lifetime after a rotation.
	ErrUnknownKey = &Error{"unknown_key", "token or cookie was signed with a key id that is not in the keyring (removed after a rotation?); answer with a new challenge"}

	// ErrExpired reports a token or cookie past its expiry. Answer with a
	// new challenge.
	ErrExpired = &Error{"expired", "token or cookie has expired; answer with a new challenge"}

	// ErrWrongNetwork reports a token or cookie issued to another client
	// network than the one the request comes from (the visitor moved, or
	// the value was copied). Answer with a new challenge.
	ErrWrongNetwork = &Error{"wrong_network", "token or cookie was issued to another client network; answer with a new challenge"}

	// ErrWrongHost reports a token or cookie issued for another host, or a
	// CAPTCHA solved on another site. Answer with a new challenge.
	ErrWrongHost = &Error{"wrong_host", "token, cookie or CAPTCHA answer belongs to another host; answer with a new challenge"}

	// ErrInsufficientWork reports a nonce that does not solve the puzzle:
	// SHA-256(token ":" nonce) has fewer leading zero bits than the puzzle's
	// difficulty. Answer with a new challenge.
	ErrInsufficientWork = &Error{"insufficient_work", "nonce does not solve the puzzle; answer with a new challenge"}

	// ErrReplayed reports a puzzle or CAPTCHA ticket that was already
	// redeemed. Answer with a new challenge.
	ErrReplayed = &Error{"replayed", "puzzle was already redeemed; answer with a new challenge"}

	// ErrBadForm reports a verify request whose body is not an
	// application/x-www-form-urlencoded form, or has a malformed percent
	// escape. Answer 400 or with a new challenge.
	ErrBadForm = &Error{"bad_form", "verify request body is not a valid application/x-www-form-urlencoded form"}

	// ErrTooLarge reports a verify request body larger than the limit
	// passed to the form parser. Answer 413 or with a new challenge.
	ErrTooLarge = &Error{"too_large", "verify request body is larger than the configured limit"}

	// ErrMissingField reports a verify request without a required field
	// (token, nonce, or the CAPTCHA provider's response field), or with
	// an empty one. Answer with a new challenge.
	ErrMissingField = &Error{"missing_field", "verify request lacks a required field (token, nonce or CAPTCHA response)"}

	// ErrCaptchaFailed reports a CAPTCHA answer the provider refused. The
	// error returned is a [*CaptchaError] carrying the provider's error
	// codes. Answer with a new challenge.
	ErrCaptchaFailed = &Error{"captcha_failed", "the CAPTCHA provider refused the answer; answer with a new challenge"}

	// ErrProviderDown reports a siteverify answer that is not a 2xx status
	// with a JSON object holding a boolean "success" (timeouts, resets and
	// 5xx arrive here too), or a provider-side "internal-error". The
	// visitor did nothing wrong: answer with a new challenge, and check the
	// provider's status and the callout cluster if this repeats.
	ErrProviderDown = &Error{"provider_down", "the CAPTCHA provider's siteverify answer was not a usable 2xx JSON answer; check the provider and the callout cluster"}
)

// CaptchaError is returned when a CAPTCHA provider refused an answer. It
// matches [ErrCaptchaFailed] with [errors.Is] and has the same Reason.
type CaptchaError struct {
	// Codes are the provider's "error-codes", such as
	// "timeout-or-duplicate" or "invalid-input-secret" (the latter means
	// the configured secret is wrong). Only codes made of ASCII letters,
	// digits, '-' and '_' are kept, at most 8 of at most 64 bytes each, so
	// they are safe in logs and metric names.
	Codes []string
}

// Error lists the provider's error codes.
func (e *CaptchaError) Error() string {
	if len(e.Codes) == 0 {
		return ErrCaptchaFailed.Error()
	}
	return ErrCaptchaFailed.Error() + " (provider error codes: " + strings.Join(e.Codes, ", ") + ")"
}

// Reason returns "captcha_failed".
func (e *CaptchaError) Reason() string { return ErrCaptchaFailed.reason }

// Is reports whether target is [ErrCaptchaFailed].
func (e *CaptchaError) Is(target error) bool { return target == ErrCaptchaFailed }

// Reason returns the Reason of err if it is (or wraps) an error of this
// package, "" for nil and "error" for anything else. It is the value to put
// into a metric name or a decision line.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var r interface{ Reason() string }
	if errors.As(err, &r) {
		return r.Reason()
	}
	return "error"
}

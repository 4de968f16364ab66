package policy

import (
	"errors"
	"strconv"
)

// Kind classifies why a reputation lookup produced no usable answer. One
// enum serves Extract, the filter's callout handling, metrics and decision
// lines; String gives the stable, metric-safe name of each kind.
type Kind uint8

const (
	// KindNone is the zero Kind: no error.
	KindNone Kind = iota
	// KindHTTPStatus: the API answered with a non-2xx status.
	KindHTTPStatus
	// KindQuota: the API refused for quota or rate reasons (HTTP 429, a
	// status listed in Provider.QuotaStatuses, or a 2xx body that says a
	// quota, limit or credit was exceeded).
	KindQuota
	// KindProviderError: a 2xx answer whose body reports an error.
	KindProviderError
	// KindEmptyBody: a 2xx answer with no body.
	KindEmptyBody
	// KindUnparsable: the body is not JSON, or not a JSON object.
	KindUnparsable
	// KindTooLarge: the body is longer than Provider.MaxBodyBytes. It is
	// rejected whole, never parsed truncated.
	KindTooLarge
	// KindNoSignals: the body parsed but none of the configured fields were
	// present; usually a field map that does not fit the API's response.
	KindNoSignals
	// KindTimeout: the callout timed out (Envoy answers :status 504).
	KindTimeout
	// KindReset: the callout was reset (no headers and no body).
	KindReset
	// KindUnknownCluster: Envoy refused the callout because the cluster does
	// not exist.
	KindUnknownCluster

	kindCount
)

var kindNames = [kindCount]string{
	KindNone:           "none",
	KindHTTPStatus:     "http_status",
	KindQuota:          "quota",
	KindProviderError:  "provider_error",
	KindEmptyBody:      "empty_body",
	KindUnparsable:     "unparsable",
	KindTooLarge:       "too_large",
	KindNoSignals:      "no_signals",
	KindTimeout:        "timeout",
	KindReset:          "reset",
	KindUnknownCluster: "unknown_cluster",
}

// String returns the kind's stable snake_case name, e.g. "quota". The names
// contain only [a-z_] so they can be used inside metric names.
func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return "kind_" + strconv.Itoa(int(k))
}

// Kinds returns every error kind (KindNone excluded), for defining one
// metric per kind up front.
func Kinds() []Kind {
	out := make([]Kind, 0, kindCount-1)
	for k := KindNone + 1; k < kindCount; k++ {
		out = append(out, k)
	}
	return out
}

// Error is a failed lookup. Its message is built only from the kind, the
// HTTP status and fixed text: it never quotes the provider's body, which may
// echo the client address.
type Error struct {
	// Kind classifies the failure.
	Kind Kind
	// Status is the HTTP status of the answer, or 0 when there was none.
	Status int
	// Detail is fixed explanatory text chosen by ipveil; it may be empty.
	Detail string
}

// Error formats the failure as "reputation lookup failed (kind, HTTP n): detail".
func (e *Error) Error() string {
	b := make([]byte, 0, 96)
	b = append(b, "reputation lookup failed ("...)
	b = append(b, e.Kind.String()...)
	if e.Status != 0 {
		b = append(b, ", HTTP "...)
		b = strconv.AppendInt(b, int64(e.Status), 10)
	}
	b = append(b, ')')
	if e.Detail != "" {
		b = append(b, ": "...)
		b = append(b, e.Detail...)
	}
	return string(b)
}

// KindOf returns the Kind of err: KindNone for nil, the Kind of an *Error
// anywhere in err's chain, and KindProviderError for any other error.
func KindOf(err error) Kind {
	if err == nil {
		return KindNone
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindProviderError
}

func fail(kind Kind, status int, detail string) error {
	return &Error{Kind: kind, Status: status, Detail: detail}
}

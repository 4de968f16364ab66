package bootstrap

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultFormat is the text format Envoy uses for an access log that sets
// none. It writes the X-Forwarded-For header, which holds client addresses,
// so CompileFormat refuses it; an access log without a format is therefore an
// error in this package (see the message for what to log instead).
const DefaultFormat = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" " +
	"%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% " +
	"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" " +
	"\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n"

// MaskedClientFormat is the command operator that logs the client address
// the way ipveil allows: the masked form its filter stores in filter state.
const MaskedClientFormat = "%FILTER_STATE(wasm.ipveil.client:PLAIN)%"

// LogEntry is what one request tells the access log. Callbacks may be nil;
// a value that is missing renders as "-", as in Envoy.
type LogEntry struct {
	// Start is when the request started; START_TIME renders it in UTC.
	Start time.Time
	// Method, Path and Authority are the request's :method, :path and
	// :authority; Protocol is "HTTP/1.0", "HTTP/1.1", "HTTP/2" or "HTTP/3".
	Method, Path, Protocol, Authority string
	// Status is the response code sent downstream (0 when none was sent).
	Status int
	// Duration is the time from the request's start to the last byte sent.
	Duration time.Duration
	// BytesReceived and BytesSent count body bytes, as Envoy does.
	BytesReceived, BytesSent int64
	// ResponseFlags is Envoy's short response-flags string, e.g. "UF" or
	// "UT"; empty renders as "-".
	ResponseFlags string
	// RequestHeader looks a request header up by lower-case name and returns
	// its first value.
	RequestHeader func(name string) (string, bool)
	// FilterState looks a filter-state value up by its full name, e.g.
	// "wasm.ipveil.client" for what the ipveil filter set as property
	// "ipveil.client".
	FilterState func(name string) (string, bool)
	// ResponseHeader looks a response header up by lower-case name.
	ResponseHeader func(name string) (string, bool)
	// UpstreamHost is the upstream host:port the request went to, or empty.
	UpstreamHost string
}

// Format is a compiled Envoy text access-log format.
type Format struct {
	src string
	ops []op
}

type op struct {
	lit      string // when cmd == ""
	cmd      string
	hdr, alt string // REQ, RESP
	key      string // FILTER_STATE
	plain    bool   // FILTER_STATE(...:PLAIN)
	max      int    // truncation, -1 for none
	tf       []timePiece
}

// String returns the format as written.
func (f *Format) String() string { return f.src }

var commandRe = regexp.MustCompile(`^%([A-Z0-9_]+)(\([^)]*\))?(:[0-9]+)?%`)

// supportedCommands lists the command operators devproxy renders.
var supportedCommands = []string{
	"START_TIME", "REQ", "RESP", "PROTOCOL", "RESPONSE_CODE", "RESPONSE_FLAGS",
	"DURATION", "BYTES_RECEIVED", "BYTES_SENT", "UPSTREAM_HOST", "FILTER_STATE",
}

// clientAddressCommands render the downstream peer or the effective client
// address.
var clientAddressCommands = map[string]bool{
	"DOWNSTREAM_REMOTE_ADDRESS":                     true,
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":        true,
	"DOWNSTREAM_REMOTE_PORT":                        true,
	"DOWNSTREAM_DIRECT_REMOTE_ADDRESS":              true,
	"DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT": true,
	"DOWNSTREAM_DIRECT_REMOTE_PORT":                 true,
	"DOWNSTREAM_PEER_IP_SAN":                        true,
}

// clientAddressHeaders carry client addresses, set by the client, by a proxy
// in front, or by Envoy itself (x-envoy-external-address).
var clientAddressHeaders = map[string]bool{
	"x-forwarded-for":          true,
	"x-real-ip":                true,
	"forwarded":                true,
	"x-envoy-external-address": true,
	"true-client-ip":           true,
	"cf-connecting-ip":         true,
	"fastly-client-ip":         true,
	"x-client-ip":              true,
	"x-cluster-client-ip":      true,
	"x-original-forwarded-for": true,
	"x-forwarded":              true,
	"forwarded-for":            true,
	"client-ip":                true,
	"x-azure-clientip":         true,
	"x-appengine-user-ip":      true,
}

// CompileFormat compiles an Envoy text access-log format (command operators
// such as %REQ(:PATH)% between literal text; %% is a literal percent sign).
// It refuses a format that would write a raw client address, and command
// operators devproxy does not render.
func CompileFormat(s string) (*Format, error) {
	f := &Format{src: s}
	var lit strings.Builder
	var privacyErr, otherErr error
	flush := func() {
		if lit.Len() > 0 {
			f.ops = append(f.ops, op{lit: lit.String()})
			lit.Reset()
		}
	}
	for pos := 0; pos < len(s); {
		if s[pos] != '%' {
			lit.WriteByte(s[pos])
			pos++
			continue
		}
		if pos+1 < len(s) && s[pos+1] == '%' {
			lit.WriteByte('%')
			pos += 2
			continue
		}
		flush()
		m := commandRe.FindStringSubmatch(s[pos:])
		if m == nil {
			if otherErr == nil {
				otherErr = fmt.Errorf("access-log format: no command operator at byte %d (%q): write %%%% for a literal percent sign, or a command such as %%PROTOCOL%%", pos, clip(s[pos:], 24))
			}
			break
		}
		pos += len(m[0])
		o, perr, err := compileCommand(m[1], strings.TrimSuffix(strings.TrimPrefix(m[2], "("), ")"), m[2] != "", m[3])
		if perr != nil && privacyErr == nil {
			privacyErr = perr
		}
		if err != nil && otherErr == nil {
			otherErr = err
		}
		f.ops = append(f.ops, o)
	}
	flush()
	if privacyErr != nil {
		return nil, privacyErr
	}
	if otherErr != nil {
		return nil, otherErr
	}
	return f, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func privacyError(what string) error {
	return fmt.Errorf("access-log format writes the raw client address with %s: ipveil never writes a client IP anywhere it could persist, and devproxy refuses to; log the masked address with %s instead", what, MaskedClientFormat)
}

// compileCommand returns the op, a privacy error (raw client address) and
// any other error.
func compileCommand(cmd, arg string, hasArg bool, length string) (op, error, error) {
	o := op{cmd: cmd, max: -1}
	token := "%" + cmd
	if hasArg {
		token += "(" + arg + ")"
	}
	token += length + "%"
	if clientAddressCommands[cmd] {
		return o, privacyError(token), nil
	}
	if length != "" {
		n, err := strconv.Atoi(length[1:])
		if err != nil {
			return o, nil, fmt.Errorf("access-log format: %s: length %q is not a number", token, length[1:])
		}
		o.max = n
	}
	switch cmd {
	case "REQ", "RESP":
		if arg == "" {
			return o, nil, fmt.Errorf("access-log format: %s needs a header name, e.g. %%%s(USER-AGENT)%%", token, cmd)
		}
		main, alt, _ := strings.Cut(arg, "?")
		if strings.Contains(alt, "?") {
			return o, nil, fmt.Errorf("access-log format: %s: only one alternative header may follow '?'", token)
		}
		o.hdr, o.alt = strings.ToLower(main), strings.ToLower(alt)
		for _, h := range []string{o.hdr, o.alt} {
			if clientAddressHeaders[h] {
				return o, privacyError(token), nil
			}
		}
		return o, nil, nil
	case "FILTER_STATE":
		if arg == "" {
			return o, nil, fmt.Errorf("access-log format: %s needs a key, e.g. %s", token, MaskedClientFormat)
		}
		parts := strings.Split(arg, ":")
		o.key = parts[0]
		if len(parts) > 1 {
			switch parts[1] {
			case "PLAIN":
				o.plain = true
			case "TYPED":
			case "FIELD":
				return o, nil, fmt.Errorf("access-log format: %s: FIELD serialization is not supported by devproxy; use :PLAIN", token)
			default:
				return o, nil, fmt.Errorf("access-log format: %s: serialization %q is not one of PLAIN, TYPED (Envoy rejects it too)", token, parts[1])
			}
		}
		if len(parts) > 2 && parts[1] != "FIELD" {
			return o, nil, fmt.Errorf("access-log format: %s: too many ':' parts; write KEY or KEY:PLAIN", token)
		}
		return o, nil, nil
	case "START_TIME":
		if length != "" {
			return o, nil, fmt.Errorf("access-log format: %s: START_TIME takes no length", token)
		}
		layout := defaultTimeFormat
		if arg != "" {
			layout = arg
		}
		tf, err := compileStrftime(layout)
		if err != nil {
			return o, nil, fmt.Errorf("access-log format: %s: %v", token, err)
		}
		o.tf = tf
		return o, nil, nil
	case "PROTOCOL", "RESPONSE_CODE", "RESPONSE_FLAGS", "DURATION", "BYTES_RECEIVED", "BYTES_SENT", "UPSTREAM_HOST":
		if hasArg || length != "" {
			return o, nil, fmt.Errorf("access-log format: %s: %s takes no parameters or length (Envoy rejects it too)", token, cmd)
		}
		return o, nil, nil
	}
	return o, nil, fmt.Errorf("access-log format: %s is not supported by devproxy (supported: %s)", token, strings.Join(supportedCommands, ", "))
}

// Render formats one access-log line. A newline is appended when the format
// does not end with one. Envoy writes exactly what the format says, so end
// a format with \n to get one line per request from a real Envoy too.
func (f *Format) Render(e *LogEntry) string {
	var b strings.Builder
	for i := range f.ops {
		o := &f.ops[i]
		if o.cmd == "" {
			b.WriteString(o.lit)
			continue
		}
		v, ok := o.value(e)
		if !ok {
			b.WriteByte('-')
			continue
		}
		if o.max >= 0 && len(v) > o.max {
			v = v[:o.max]
		}
		b.WriteString(v)
	}
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteByte('\n')
	}
	return b.String()
}

func (o *op) value(e *LogEntry) (string, bool) {
	switch o.cmd {
	case "START_TIME":
		if e.Start.IsZero() {
			return "", false
		}
		return formatTime(o.tf, e.Start.UTC()), true
	case "REQ":
		if v, ok := requestHeader(e, o.hdr); ok {
			return v, true
		}
		if o.alt != "" {
			return requestHeader(e, o.alt)
		}
		return "", false
	case "RESP":
		if e.ResponseHeader == nil {
			return "", false
		}
		if v, ok := e.ResponseHeader(o.hdr); ok {
			return v, true
		}
		if o.alt != "" {
			return e.ResponseHeader(o.alt)
		}
		return "", false
	case "PROTOCOL":
		return e.Protocol, e.Protocol != ""
	case "RESPONSE_CODE":
		return strconv.Itoa(e.Status), true
	case "RESPONSE_FLAGS":
		return e.ResponseFlags, e.ResponseFlags != ""
	case "DURATION":
		return strconv.FormatInt(e.Duration.Milliseconds(), 10), true
	case "BYTES_RECEIVED":
		return strconv.FormatInt(e.BytesReceived, 10), true
	case "BYTES_SENT":
		return strconv.FormatInt(e.BytesSent, 10), true
	case "UPSTREAM_HOST":
		return e.UpstreamHost, e.UpstreamHost != ""
	case "FILTER_STATE":
		if e.FilterState == nil {
			return "", false
		}
		v, ok := e.FilterState(o.key)
		if !ok {
			return "", false
		}
		if o.plain {
			return v, true
		}
		return typedWasmState(v), true
	}
	return "", false
}

// typedWasmState renders a Proxy-Wasm property the way Envoy's FILTER_STATE
// does without :PLAIN: Envoy stores the property as bytes, serializes it as a
// google.protobuf.Any holding a BytesValue, and prints that as compact JSON,
// where bytes are base64.
func typedWasmState(v string) string {
	return `{"@type":"type.googleapis.com/google.protobuf.BytesValue","value":"` +
		base64.StdEncoding.EncodeToString([]byte(v)) + `"}`
}

func requestHeader(e *LogEntry, name string) (string, bool) {
	switch name {
	case ":method":
		if e.Method != "" {
			return e.Method, true
		}
	case ":path":
		if e.Path != "" {
			return e.Path, true
		}
	case ":authority":
		if e.Authority != "" {
			return e.Authority, true
		}
	}
	if e.RequestHeader == nil {
		return "", false
	}
	return e.RequestHeader(name)
}

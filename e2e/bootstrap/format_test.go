package bootstrap

import (
	"strings"
	"testing"
	"time"
)

func entry() *LogEntry {
	req := map[string]string{"user-agent": "curl/8.5.0", "x-request-id": "abc-123", "x-envoy-original-path": "/orig"}
	resp := map[string]string{"x-envoy-upstream-service-time": "3"}
	state := map[string]string{"wasm.ipveil.client": "192.0.2.0/24", "wasm.empty": ""}
	return &LogEntry{
		Start:         time.Date(2026, 3, 5, 7, 8, 9, 123456789, time.UTC),
		Method:        "POST",
		Path:          "/api/v1/items?q=1",
		Protocol:      "HTTP/1.1",
		Authority:     "shop.example",
		Status:        201,
		Duration:      1500*time.Millisecond + 700*time.Microsecond,
		BytesReceived: 42,
		BytesSent:     1024,
		ResponseFlags: "UT",
		UpstreamHost:  "127.0.0.1:10002",
		RequestHeader: func(n string) (string, bool) { v, ok := req[n]; return v, ok },
		ResponseHeader: func(n string) (string, bool) {
			v, ok := resp[n]
			return v, ok
		},
		FilterState: func(n string) (string, bool) { v, ok := state[n]; return v, ok },
	}
}

func TestFormatRender(t *testing.T) {
	tests := []struct {
		format string
		e      *LogEntry
		want   string
	}{
		{"%START_TIME%", entry(), "2026-03-05T07:08:09.123Z\n"},
		{"%START_TIME(%Y/%m/%d %H:%M:%S %z)%", entry(), "2026/03/05 07:08:09 +0000\n"},
		{"%START_TIME(%s.%3f)%", entry(), "1772694489.123\n"},
		{"%START_TIME(%s.%6f|%f|%E6S|%E*S|%E0S)%", entry(), "1772694489.123456|123456789|09.123456|09.123456789|09\n"},
		{"%START_TIME(%a %b %e %T %Z %j %y %I%p %F %D %R %%)%", entry(), "Thu Mar  5 07:08:09 UTC 064 26 07AM 2026-03-05 03/05/26 07:08 %\n"},
		{"%START_TIME%", &LogEntry{}, "-\n"},
		{"%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%", entry(), "POST /api/v1/items?q=1 HTTP/1.1\n"},
		{"%REQ(:authority)% %REQ(User-Agent)%", entry(), "shop.example curl/8.5.0\n"},
		{"%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", entry(), "/orig\n"},
		{"%REQ(X-MISSING?:PATH)%", entry(), "/api/v1/items?q=1\n"},
		{"%REQ(X-MISSING?X-ALSO-MISSING)%", entry(), "-\n"},
		{"%REQ(:PATH):4%|%REQ(USER-AGENT):0%|%REQ(X-REQUEST-ID):100%", entry(), "/api||abc-123\n"},
		{"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% %RESP(X-NONE)%", entry(), "3 -\n"},
		{"%RESPONSE_CODE% %RESPONSE_FLAGS% %DURATION% %BYTES_RECEIVED% %BYTES_SENT% %UPSTREAM_HOST%", entry(), "201 UT 1500 42 1024 127.0.0.1:10002\n"},
		{"%RESPONSE_CODE% %RESPONSE_FLAGS% %PROTOCOL% %UPSTREAM_HOST% %REQ(:METHOD)%", &LogEntry{}, "0 - - - -\n"},
		{"%FILTER_STATE(wasm.ipveil.client:PLAIN)%", entry(), "192.0.2.0/24\n"},
		{"%FILTER_STATE(wasm.ipveil.client:PLAIN):9%", entry(), "192.0.2.0\n"},
		{"[%FILTER_STATE(wasm.empty:PLAIN)%]", entry(), "[]\n"},
		{"%FILTER_STATE(wasm.missing:PLAIN)% %FILTER_STATE(wasm.missing)%", entry(), "- -\n"},
		{"%FILTER_STATE(wasm.ipveil.client)%", entry(), `{"@type":"type.googleapis.com/google.protobuf.BytesValue","value":"MTkyLjAuMi4wLzI0"}` + "\n"},
		{"%FILTER_STATE(wasm.ipveil.client:TYPED)%", entry(), `{"@type":"type.googleapis.com/google.protobuf.BytesValue","value":"MTkyLjAuMi4wLzI0"}` + "\n"},
		{"%FILTER_STATE(wasm.ipveil.client):9%", entry(), `{"@type":` + "\n"},
		{"%FILTER_STATE(wasm.ipveil.client:PLAIN)%", &LogEntry{}, "-\n"},
		{"100%% done\n", entry(), "100% done\n"},
		{"two\nlines\n", entry(), "two\nlines\n"},
		{"", entry(), "\n"},
	}
	for _, tc := range tests {
		f, err := CompileFormat(tc.format)
		if err != nil {
			t.Errorf("CompileFormat(%q): %v", tc.format, err)
			continue
		}
		if got := f.Render(tc.e); got != tc.want {
			t.Errorf("Render(%q)\n got %q\nwant %q", tc.format, got, tc.want)
		}
		if f.String() != tc.format {
			t.Errorf("String() = %q, want %q", f.String(), tc.format)
		}
	}
}

func TestFormatRefusesClientAddresses(t *testing.T) {
	for _, s := range []string{
		"%DOWNSTREAM_REMOTE_ADDRESS%",
		"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
		"%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%",
		"%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%",
		"%DOWNSTREAM_REMOTE_PORT%",
		"%REQ(X-FORWARDED-FOR)%",
		"%REQ(x-forwarded-for):7%",
		"%REQ(X-REAL-IP)%",
		"%REQ(FORWARDED)%",
		"%REQ(X-ENVOY-EXTERNAL-ADDRESS)%",
		"%REQ(TRUE-CLIENT-IP)%",
		"%REQ(CF-CONNECTING-IP)%",
		"%REQ(USER-AGENT?X-FORWARDED-FOR)%",
		"%RESP(X-REAL-IP)%",
		// A privacy problem wins over an unsupported command before it.
		"%HOSTNAME% %DOWNSTREAM_REMOTE_ADDRESS%",
		DefaultFormat,
	} {
		_, err := CompileFormat(s)
		if err == nil {
			t.Errorf("CompileFormat(%q) succeeded, want a refusal", s)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "raw client address") || !strings.Contains(msg, MaskedClientFormat+" instead") {
			t.Errorf("CompileFormat(%q) = %q: want why and what to log instead", s, msg)
		}
	}
}

func TestFormatErrors(t *testing.T) {
	tests := []struct{ format, want string }{
		{"%HOSTNAME%", "%HOSTNAME% is not supported by devproxy (supported: START_TIME, REQ, RESP"},
		{"%CEL(request.path)%", "%CEL(request.path)% is not supported by devproxy"},
		{"50% off", `no command operator at byte 2 ("% off"): write %% for a literal percent sign`},
		{"%PROTOCOL", "no command operator at byte 0"},
		{"%req(:path)%", "no command operator at byte 0"},
		{"%REQ%", "%REQ% needs a header name"},
		{"%REQ()%", "%REQ()% needs a header name"},
		{"%REQ(A?B?C)%", "only one alternative header"},
		{"%PROTOCOL(x)%", "PROTOCOL takes no parameters or length"},
		{"%DURATION:3%", "DURATION takes no parameters or length"},
		{"%START_TIME:3%", "START_TIME takes no length"},
		{"%START_TIME(%Q)%", "%Q is not supported (supported: %Y"},
		{"%START_TIME(%EQ)%", "%EQ is not supported"},
		{"%START_TIME(abc%)%", "ends with a lone %"},
		{"%FILTER_STATE%", "needs a key"},
		{"%FILTER_STATE(k:FIELD:f)%", "FIELD serialization is not supported by devproxy; use :PLAIN"},
		{"%FILTER_STATE(k:RAW)%", `serialization "RAW" is not one of PLAIN, TYPED`},
		{"%FILTER_STATE(k:PLAIN:x)%", "too many ':' parts"},
	}
	for _, tc := range tests {
		_, err := CompileFormat(tc.format)
		if err == nil {
			t.Errorf("CompileFormat(%q) succeeded, want error containing %q", tc.format, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CompileFormat(%q) = %q, want it to contain %q", tc.format, err, tc.want)
		}
	}
}

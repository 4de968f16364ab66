package policy

import (
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestRequestPath(t *testing.T) {
	tests := []struct{ tmpl, ip, want string }{
		{"/v1/lookup?ip={ip}", "192.0.2.1", "/v1/lookup?ip=192.0.2.1"},
		{"/v1/lookup?ip={ip}", "2001:db8::1", "/v1/lookup?ip=2001%3Adb8%3A%3A1"},
		{"/{ip}/privacy", "2001:db8::1", "/2001:db8::1/privacy"},
		{"/{ip}/x?again={ip}", "2001:db8::1", "/2001:db8::1/x?again=2001%3Adb8%3A%3A1"},
		{"/a?ip={ip}", "fe80::1%eth0", "/a?ip=fe80%3A%3A1%25eth0"},
		{"/{ip}", "a/b?c#d", "/a%2Fb%3Fc%23d"},
		{"/static", "192.0.2.1", "/static"},
	}
	for _, tt := range tests {
		p := &Provider{Path: tt.tmpl}
		if got := p.RequestPath(tt.ip); got != tt.want {
			t.Errorf("%q with %q: got %q, want %q", tt.tmpl, tt.ip, got, tt.want)
		}
	}
	p := &Provider{Body: `{"ip":"{ip}"}`}
	if got := p.RequestBody("2001:db8::1"); got != `{"ip":"2001:db8::1"}` {
		t.Errorf("RequestBody = %q", got)
	}
}

func TestExpandEnv(t *testing.T) {
	lookup := env(map[string]string{"KEY": "s3cr3t", "EMPTY": "", "K_2": "v"})
	tests := []struct {
		tmpl, want, err string
	}{
		{"Bearer ${KEY}", "Bearer s3cr3t", ""},
		{"${KEY}${K_2}", "s3cr3tv", ""},
		{"no refs $ here $KEY {x}", "no refs $ here $KEY {x}", ""},
		{"${MISSING}", "", "environment variable MISSING is not set"},
		{"${EMPTY}", "", "environment variable EMPTY is empty"},
		{"${KEY", "", "not closed"},
		{"${}", "", "names no variable"},
		{"${lower}", "", "upper-case"},
		{"${1ABC}", "", "upper-case"},
		{"${ip}", "", "write {ip}"},
	}
	for _, tt := range tests {
		got, err := ExpandEnv(tt.tmpl, lookup)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("%q: got %q, %v; want %q", tt.tmpl, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: error %v, want one containing %q", tt.tmpl, err, tt.err)
		case err != nil && strings.Contains(err.Error(), "s3cr3t"):
			t.Errorf("%q: error leaks a value: %v", tt.tmpl, err)
		}
	}
}

func TestProviderExpand(t *testing.T) {
	p := &Provider{
		Path:    "/k/${KEY}/{ip}?token=${KEY}&ip={ip}",
		Body:    `{"key":"${KEY}"}`,
		Headers: [][2]string{{"authorization", "Bearer ${KEY}"}, {"accept", "application/json"}},
	}
	e, err := p.Expand(env(map[string]string{"KEY": "a/b&c"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := "/k/a%2Fb&c/{ip}?token=a%2Fb%26c&ip={ip}"; e.Path != want {
		t.Errorf("path %q, want %q", e.Path, want)
	}
	if e.Body != `{"key":"a/b&c"}` || e.Headers[0][1] != "Bearer a/b&c" || e.Headers[1][1] != "application/json" {
		t.Errorf("body %q headers %q", e.Body, e.Headers)
	}
	if p.Headers[0][1] != "Bearer ${KEY}" {
		t.Error("Expand changed the original")
	}
	if got := e.RequestPath("192.0.2.1"); got != "/k/a%2Fb&c/192.0.2.1?token=a%2Fb%26c&ip=192.0.2.1" {
		t.Errorf("RequestPath after Expand = %q", got)
	}

	_, err = p.Expand(env(nil))
	if err == nil || !strings.Contains(err.Error(), "provider.path: environment variable KEY is not set") {
		t.Errorf("missing variable: %v", err)
	}
	q := &Provider{Path: "/{ip}", Headers: [][2]string{{"x-api-key", "${KEY}"}}}
	_, err = q.Expand(env(map[string]string{"KEY": "evil\r\nx-injected: 1"}))
	if err == nil || !strings.Contains(err.Error(), "provider.headers.x-api-key") || strings.Contains(err.Error(), "evil") {
		t.Errorf("header injection: %v", err)
	}
	_, err = q.Expand(env(nil))
	if err == nil || !strings.Contains(err.Error(), "provider.headers.x-api-key: environment variable KEY is not set") {
		t.Errorf("missing header variable: %v", err)
	}
}

func TestProviderDefaults(t *testing.T) {
	var p Provider
	if p.Timeout() != DefaultTimeoutMs || p.BodyLimit() != DefaultMaxBodyBytes {
		t.Error("zero Provider defaults")
	}
	if !TriOf(true).Known() || Unknown.Known() || True.String() != "true" || False.String() != "false" || Unknown.String() != "unknown" {
		t.Error("Tri helpers")
	}
}

package anonymize

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestMaskHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":           "203.0.113.0/24",
		"  203.0.113.7\t":       "203.0.113.0/24",
		"203.0.113.7:4711":      "203.0.113.0/24",
		"[2001:db8:1:2::7]:443": "2001:db8:1:2::/64",
		"2001:db8:1:2::7":       "2001:db8:1:2::/64",
		"::ffff:203.0.113.7":    "203.0.113.0/24",
		"":                      Placeholder,
		"   ":                   Placeholder,
		"unknown":               Placeholder,
		"203.0.113.7, 10.0.0.1": Placeholder,
		"fe80::1%eth0":          Placeholder,
		"0x7f.0.0.1":            Placeholder,
		"<script>203.0.113.7":   Placeholder,
	} {
		if got := DefaultMasker.MaskHeaderValue(in); got != want {
			t.Errorf("MaskHeaderValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskXFF(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"203.0.113.7", "203.0.113.0/24"},
		{"203.0.113.7, 198.51.100.23", "203.0.113.0/24, 198.51.100.0/24"},
		{"203.0.113.7:4711,[2001:db8::1]:443,2001:db8:1:2::3", "203.0.113.0/24, 2001:db8::/64, 2001:db8:1:2::/64"},
		{" 203.0.113.7 ,\t, ,198.51.100.23,", "203.0.113.0/24, 198.51.100.0/24"},
		{"unknown, 203.0.113.7", "unknown, 203.0.113.0/24"},
		{"UNKNOWN", "unknown"},
		{"junk, 203.0.113.7, 1.2.3.4.5, fe80::1%eth0", "invalid, 203.0.113.0/24, invalid, invalid"},
		{"::ffff:192.0.2.1", "192.0.2.0/24"},
		{"2002:c000:201::1", "2002:c000:200::/40"},
		{"\"203.0.113.7\"", Placeholder},
		{"", ""},
		{" , ,", ""},
	} {
		if got := DefaultMasker.MaskXFF(c.in); got != c.want {
			t.Errorf("MaskXFF(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := StrongMasker.MaskXFF("203.0.113.7, 2001:db8:1:2::3"); got != "203.0.0.0/16, 2001:db8:1::/48" {
		t.Errorf("StrongMasker.MaskXFF = %q", got)
	}
}

func TestSplitXFF(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" ,\t,", nil},
		{"203.0.113.7", []string{"203.0.113.7"}},
		{" 203.0.113.7 ,, [2001:db8::1]:443 ,unknown,\tjunk\t", []string{"203.0.113.7", "[2001:db8::1]:443", "unknown", "junk"}},
	} {
		if got := SplitXFF(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("SplitXFF(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseForwarded(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []ForwardedElement
	}{
		{`for="_gazonk"`, []ForwardedElement{{For: "_gazonk"}}},
		{`For="[2001:db8:cafe::17]:4711"`, []ForwardedElement{{For: "[2001:db8:cafe::17]:4711"}}},
		{`for=192.0.2.60;proto=http;by=203.0.113.43`, []ForwardedElement{{For: "192.0.2.60", Proto: "http", By: "203.0.113.43"}}},
		{`for=192.0.2.43, for=198.51.100.17`, []ForwardedElement{{For: "192.0.2.43"}, {For: "198.51.100.17"}}},
		{`for=192.0.2.43 ; host=example.com ;PROTO=https,for="[::1]"`, []ForwardedElement{{For: "192.0.2.43", Host: "example.com", Proto: "https"}, {For: "[::1]"}}},
		{`for=unknown;secret="x;y,z", , for=10.0.0.1`, []ForwardedElement{{For: "unknown"}, {For: "10.0.0.1"}}},
		{`host="a\"b\\c"`, []ForwardedElement{{Host: `a"b\c`}}},
		{`for=[2001:db8::1]:80`, []ForwardedElement{{For: "[2001:db8::1]:80"}}},
		{`ext=1`, []ForwardedElement{{}}},
		{``, nil},
		{` , ;, `, nil},
	} {
		got, err := ParseForwarded(c.in)
		if err != nil {
			t.Errorf("ParseForwarded(%q) error: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseForwarded(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
	for _, in := range []string{
		`for`,
		`for=`,
		`=192.0.2.1`,
		`for=192.0.2.1 192.0.2.2`,
		`for="192.0.2.1`,
		`for="192.0.2.1\`,
		`for=192.0.2.1;for=192.0.2.2`,
		`for=192.0.2.1;FOR=192.0.2.2`,
		`for=192.0.2.1/24`,
		`for="192.0.2.1"x`,
		"for=\"a\x01b\"",
		`for=192.0.2.1, by`,
		`fo r=192.0.2.1`,
	} {
		got, err := ParseForwarded(in)
		if err == nil {
			t.Errorf("ParseForwarded(%q) = %+v, want an error", in, got)
			continue
		}
		if !errors.Is(err, ErrForwarded) {
			t.Errorf("ParseForwarded(%q) error %v does not match ErrForwarded", in, err)
		}
		if strings.Contains(err.Error(), "192.0.2") {
			t.Errorf("ParseForwarded(%q) error %q echoes the input", in, err)
		}
	}
}

func TestMaskForwarded(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`for=192.0.2.60;proto=http;by=203.0.113.43`, `for="192.0.2.0/24";proto=http;by="203.0.113.0/24"`},
		{`for="[2001:db8:cafe::17]:4711"`, `for="2001:db8:cafe::/64"`},
		{`For="[2001:db8::1]:4711";Proto=https, for=192.0.2.7;by=_x`, `for="2001:db8::/64";proto=https, for="192.0.2.0/24";by=_hidden`},
		{`for=unknown, for="unknown:80"`, `for=unknown, for=unknown`},
		{`for="_gazonk"`, `for=_hidden`},
		{`for=_192.0.2.1`, `for=_hidden`},
		{`for="192.0.2.43:_p1"`, `for="192.0.2.0/24"`},
		{`for=junk;host=example.com`, `for=invalid;host=example.com`},
		{`for="fe80::1%eth0"`, `for=invalid`},
		{`for="192.0.2.1`, `for=invalid`},
		{`for=192.0.2.1 junk;proto=https`, `for=invalid;proto=https`},
		{`for=[2001:db8::1]:80`, `for="2001:db8::/64"`},
		{`host="example.com:8080";for=192.0.2.1`, `host="example.com:8080";for="192.0.2.0/24"`},
		{`host="a\"b";proto=https`, `host="a\"b";proto=https`},
		{`secret=192.0.2.1;for=192.0.2.1`, `for="192.0.2.0/24"`},
		{`secret=192.0.2.1, for=192.0.2.1`, `for="192.0.2.0/24"`},
		{`=192.0.2.1;for=192.0.2.1`, `for="192.0.2.0/24"`},
		{`for=192.0.2.1;for=198.51.100.1`, `for="192.0.2.0/24"`},
		{`by=_x;FOR=192.0.2.1;for=198.51.100.1;by=198.51.100.2`, `by=_hidden;for="192.0.2.0/24"`},
		{`host="192.0.2.1 x;proto=https`, ``},
		{``, ``},
		{`, ,`, ``},
	} {
		got := DefaultMasker.MaskForwarded(c.in)
		if got != c.want {
			t.Errorf("MaskForwarded(%q) = %q, want %q", c.in, got, c.want)
		}
		if got != "" {
			if _, err := ParseForwarded(got); err != nil {
				t.Errorf("MaskForwarded(%q) = %q, which is not valid RFC 7239: %v", c.in, got, err)
			}
		}
	}
}

func TestHeaderAllocs(t *testing.T) {
	xff := "203.0.113.7, 198.51.100.23:4711, [2001:db8::1]:443"
	if n := testing.AllocsPerRun(100, func() { DefaultMasker.MaskXFF(xff) }); n > 1 {
		t.Errorf("MaskXFF allocates %v times", n)
	}
	fwd := `for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::1]:4711"`
	if n := testing.AllocsPerRun(100, func() { DefaultMasker.MaskForwarded(fwd) }); n > 1 {
		t.Errorf("MaskForwarded allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { DefaultMasker.MaskHeaderValue("203.0.113.7") }); n > 1 {
		t.Errorf("MaskHeaderValue allocates %v times", n)
	}
}

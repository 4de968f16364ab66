package anonymize

import (
	"strings"
	"testing"
)

func TestParsePseudonymKeys(t *testing.T) {
	p, err := ParsePseudonymKeys(" k2:0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301 , k1:0123456789abcdeffedcba9876543210")
	if err != nil || p.KeyID() != "k2" {
		t.Fatalf("%v %v", p, err)
	}
	for _, bad := range []string{"", "k1", ":abc", "k1:zz", "k1:0123456789abcdeffedcba9876543210,k1:0123456789abcdeffedcba9876543210"} {
		if _, err := ParsePseudonymKeys(bad); err == nil || strings.Contains(err.Error(), "0123456789abcdef") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

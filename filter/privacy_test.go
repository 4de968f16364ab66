package filter

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ipveil/ipveil/anonymize"
)

const pfxKey = "0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301"

func TestPseudonymFilterState(t *testing.T) {
	t.Setenv("IPVEIL_PSEUDONYM_KEYS", "k2:"+pfxKey+",k1:0123456789abcdeffedcba9876543210")
	e := newEnv(t, `"privacy": {"pseudonym": {}}`)
	r := e.send("192.0.2.1:0", "/")
	e.answer(r, 200, fmt.Sprintf(bodyClean, "192.0.2.1"))
	e.wantContinue(r)
	// ipcrypt-pfx of 192.0.2.1 under this key (draft-denis-ipcrypt vector).
	if got := e.state(StatePseudonym); got != "k2:100.115.72.131" {
		t.Errorf("pseudonym %q", got)
	}
	e.wantNoRawIP([]*req{r}, "192.0.2.1")
}

func TestPseudonymKeysAreRequired(t *testing.T) {
	_, err := ParseConfig([]byte(`{"provider":{"cluster":"c"},"privacy":{"pseudonym":{"keys_env":"NOPE_KEYS"}}}`),
		func(n string) (string, bool) {
			if n == "NOPE_KEYS" {
				return "", false
			}
			return "x", true
		})
	if err == nil || !strings.Contains(err.Error(), "privacy.pseudonym.keys_env") {
		t.Fatalf("%v", err)
	}
	_, err = ParseConfig([]byte(`{"provider":{"cluster":"c"},"privacy":{"pseudonym":{}}}`),
		func(n string) (string, bool) { return "k1:abc", true })
	if err == nil || strings.Contains(err.Error(), "abc") {
		t.Fatalf("a bad key must be refused without echoing it: %v", err)
	}
}

func TestSealedFilterState(t *testing.T) {
	pub, priv, err := anonymize.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, `"privacy": {"seal": {"key_id": "audit-1", "public_key": "`+pub+`"}}`)
	r := e.send("203.0.113.7:0", "/")
	e.answer(r, 200, fmt.Sprintf(bodyTor, "203.0.113.7"))
	e.wantReply(r, 403)
	tok := e.state(StateSealed)
	if !strings.HasPrefix(tok, "audit-1.") {
		t.Fatalf("sealed value %q", tok)
	}
	o, err := anonymize.NewOpener("audit-1", priv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := o.Open(tok)
	if err != nil || a.String() != "203.0.113.7" {
		t.Fatalf("opened %v, %v", a, err)
	}
	e.wantNoRawIP([]*req{r}, "203.0.113.7")

	// By default only non-allow decisions are sealed.
	before := tok
	r2 := e.send("192.0.2.10:0", "/")
	e.answer(r2, 200, fmt.Sprintf(bodyClean, "192.0.2.10"))
	e.wantContinue(r2)
	if got := e.state(StateSealed); got != before {
		t.Errorf("an allowed request was sealed: %q", got)
	}
}

func TestSealConfigErrors(t *testing.T) {
	for _, tc := range []struct{ doc, path string }{
		{`{"seal":{}}`, "privacy.seal.key_id"},
		{`{"seal":{"key_id":"a"}}`, "privacy.seal.public_key"},
		{`{"seal":{"key_id":"a","public_key":"bm90IGEga2V5"}}`, "privacy.seal.public_key"},
		{`{"seal":{"key_id":"a","public_key":"x","when":"sometimes"}}`, "privacy.seal.when"},
	} {
		_, err := ParseConfig([]byte(`{"provider":{"cluster":"c"},"privacy":`+tc.doc+`}`), anyEnv)
		if err == nil || !strings.Contains(err.Error(), tc.path+":") {
			t.Errorf("%s: %v", tc.doc, err)
		}
	}
}

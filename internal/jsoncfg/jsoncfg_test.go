package jsoncfg

import (
	"strings"
	"testing"
)

func TestReaderCollectsEveryProblem(t *testing.T) {
	var errs Errors
	o := Parse([]byte(`{"a": "x", "n": 1.5, "b": 3, "list": ["ok", 2], "obj": [], "dup": 1, "dup": 2, "typo": true, "e": "z"}`), &errs)
	if got := o.String("a", ""); got != "x" {
		t.Errorf("a = %q", got)
	}
	o.Int("n", 0, 0, 10)
	o.Bool("b", false)
	if got := o.Strings("list", nil); len(got) != 1 || got[0] != "ok" {
		t.Errorf("list = %q", got)
	}
	o.Object("obj").Done()
	o.Int("dup", 0, 0, 10)
	o.Enum("e", "y", "y", "w")
	if !o.Has("a") || o.Has("missing") {
		t.Error("Has")
	}
	o.Done()
	want := []string{
		"n: must be a whole number",
		"b: must be true or false",
		"list[1]: must be a string",
		"obj: must be an object",
		`e: must be one of "y", "w", got "z"`,
		"dup: given more than once",
		"typo: unknown key",
	}
	all := errs.Err().Error()
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("missing %q in:\n%s", w, all)
		}
	}
	if errs.Len() != len(want) {
		t.Errorf("%d problems, want %d:\n%s", errs.Len(), len(want), all)
	}
}

func TestParseRejectsNonObjects(t *testing.T) {
	for _, doc := range []string{`[1]`, `"s"`, `{`, `{"a":1}x`} {
		var errs Errors
		Parse([]byte(doc), &errs)
		if errs.Len() != 1 || errs.Problems()[0].Path != "" {
			t.Errorf("%s: %v", doc, errs.Err())
		}
	}
	var errs Errors
	Parse(nil, &errs).Done()
	if errs.Err() != nil {
		t.Errorf("an empty document is {}: %v", errs.Err())
	}
}

func TestKeysWithDotsAreLiteral(t *testing.T) {
	var errs Errors
	o := Parse([]byte(`{"a.b": "dotted", "a": {"b": "nested"}}`), &errs)
	if got := o.String("a.b", ""); got != "dotted" {
		t.Errorf("a.b = %q", got)
	}
	if got := o.Object("a").String("b", ""); got != "nested" {
		t.Errorf("a/b = %q", got)
	}
	if p := o.Object("a").Path("b"); p != "a.b" || Index("r", 2) != "r[2]" {
		t.Errorf("paths %q", p)
	}
}

func TestSyntaxErrorsSayWhere(t *testing.T) {
	var errs Errors
	Parse([]byte("{\n  \"a\": 1,\n}"), &errs)
	if msg := errs.Err().Error(); !strings.Contains(msg, "line 3, column 1") {
		t.Errorf("%s", msg)
	}
	var errs2 Errors
	Parse([]byte(`{"a": [1, 2`), &errs2)
	if msg := errs2.Err().Error(); !strings.Contains(msg, "unexpected end") {
		t.Errorf("%s", msg)
	}
}

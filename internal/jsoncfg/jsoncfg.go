// Package jsoncfg reads ipveil's JSON configuration with gjson and collects
// every problem it finds, each named by its JSON path, instead of stopping at
// the first one.
//
// A reader is an Object: typed getters read a key, check its type and range,
// record a Problem when it is wrong and return the default, so a caller can
// read a whole document and report everything at once. Done reports the keys
// nobody asked for, which catches typos such as "ttl_sec" for "ttl_s".
package jsoncfg

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Problem is one configuration error at one JSON path.
type Problem struct {
	// Path is the JSON path of the offending value, e.g. "cache.ttl_s" or
	// "policy.rules[2].action". The empty path means the document itself.
	Path string
	// Msg says what is wrong and what would be accepted.
	Msg string
}

// Error formats the problem as "path: message".
func (p Problem) Error() string {
	if p.Path == "" {
		return "(document): " + p.Msg
	}
	return p.Path + ": " + p.Msg
}

// Errors collects Problems. The zero value is ready to use.
type Errors struct {
	list []Problem
}

// Addf records a problem at path.
func (e *Errors) Addf(path, format string, args ...any) {
	e.list = append(e.list, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Problems returns the recorded problems in the order they were found.
func (e *Errors) Problems() []Problem { return e.list }

// Len reports how many problems were recorded.
func (e *Errors) Len() int { return len(e.list) }

// Err returns nil when nothing was recorded, else an *Error holding them all.
func (e *Errors) Err() error {
	if len(e.list) == 0 {
		return nil
	}
	return &Error{Problems: append([]Problem(nil), e.list...)}
}

// Error is the error returned for an invalid document. Its message lists
// every problem, one per line.
type Error struct {
	// Problems holds every problem found, in document order.
	Problems []Problem
}

// Error lists every problem, one per line.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteByte('s')
	}
	b.WriteString("):")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Object reads the keys of one JSON object.
type Object struct {
	res  gjson.Result
	path string
	errs *Errors
	seen map[string]bool
}

// Parse checks that doc is a JSON object and returns a reader for it. An
// empty document is read as {}. On invalid JSON it records a problem and
// returns an empty reader, so callers can go on and fill in defaults.
func Parse(doc []byte, errs *Errors) *Object {
	s := strings.TrimSpace(string(doc))
	if s == "" {
		s = "{}"
	}
	if !gjson.Valid(s) {
		errs.Addf("", "not valid JSON%s: check quotes, commas and braces (the plugin configuration is JSON, not YAML; from envoy.yaml or a WasmPlugin, take the configuration value itself)", syntaxPosition(s))
		return &Object{res: gjson.Parse("{}"), errs: errs, seen: map[string]bool{}}
	}
	r := gjson.Parse(s)
	if !r.IsObject() {
		errs.Addf("", "must be a JSON object, got %s", kind(r))
		r = gjson.Parse("{}")
	}
	return &Object{res: r, errs: errs, seen: map[string]bool{}}
}

// syntaxPosition returns " at line L, column C" for the first syntax error
// in doc, or "" when it cannot tell.
func syntaxPosition(doc string) string {
	var v any
	err := json.Unmarshal([]byte(doc), &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return ""
	}
	// Offset counts the bytes read, the offending one included.
	off := int(se.Offset) - 1
	if off < 0 {
		off = 0
	}
	if off > len(doc) {
		off = len(doc)
	}
	line := 1 + strings.Count(doc[:off], "\n")
	col := off - strings.LastIndex(doc[:off], "\n")
	return fmt.Sprintf(" at line %d, column %d (%s)", line, col, se.Error())
}

// Wrap returns a reader for r, which must be an object, at path.
func Wrap(r gjson.Result, path string, errs *Errors) *Object {
	return &Object{res: r, path: path, errs: errs, seen: map[string]bool{}}
}

// Path returns the JSON path of key inside this object.
func (o *Object) Path(key string) string { return Join(o.path, key) }

// Here returns the JSON path of this object itself.
func (o *Object) Here() string { return o.path }

// Errs returns the collector this object records into.
func (o *Object) Errs() *Errors { return o.errs }

// Join builds the JSON path of key under parent.
func Join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// Index builds the JSON path of element i under parent.
func Index(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

// Has reports whether key is present (and not null) and marks it as read.
func (o *Object) Has(key string) bool {
	o.seen[key] = true
	v := o.get(key)
	return v.Exists() && v.Type != gjson.Null
}

// Raw returns the value at key and marks it as read. It does not check types.
func (o *Object) Raw(key string) gjson.Result {
	o.seen[key] = true
	return o.get(key)
}

func (o *Object) get(key string) gjson.Result {
	// Iterate rather than use a gjson path: keys may hold '.', '*' or '?'.
	var out gjson.Result
	o.res.ForEach(func(k, v gjson.Result) bool {
		if k.String() == key {
			out = v
			return false
		}
		return true
	})
	return out
}

// Addf records a problem at key inside this object.
func (o *Object) Addf(key, format string, args ...any) {
	o.errs.Addf(o.Path(key), format, args...)
}

// String reads a string at key, or def when absent.
func (o *Object) String(key, def string) string {
	v := o.Raw(key)
	if !v.Exists() || v.Type == gjson.Null {
		return def
	}
	if v.Type != gjson.String {
		o.Addf(key, "must be a string, got %s", kind(v))
		return def
	}
	return v.Str
}

// Enum reads a string at key that must be one of allowed, or def when absent.
func (o *Object) Enum(key, def string, allowed ...string) string {
	s := o.String(key, def)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	o.Addf(key, "must be one of %s, got %q", quoteList(allowed), s)
	return def
}

// Bool reads a boolean at key, or def when absent.
func (o *Object) Bool(key string, def bool) bool {
	v := o.Raw(key)
	if !v.Exists() || v.Type == gjson.Null {
		return def
	}
	if v.Type != gjson.True && v.Type != gjson.False {
		o.Addf(key, "must be true or false, got %s", kind(v))
		return def
	}
	return v.Bool()
}

// Int reads an integer at key in [min, max], or def when absent.
func (o *Object) Int(key string, def, min, max int64) int64 {
	v := o.Raw(key)
	if !v.Exists() || v.Type == gjson.Null {
		return def
	}
	if v.Type != gjson.Number {
		o.Addf(key, "must be a number, got %s", kind(v))
		return def
	}
	f := v.Float()
	if f != float64(int64(f)) {
		o.Addf(key, "must be a whole number, got %s", v.Raw)
		return def
	}
	n := int64(f)
	if n < min || n > max {
		o.Addf(key, "must be between %d and %d, got %d", min, max, n)
		return def
	}
	return n
}

// Float reads a number at key in [min, max], or def when absent.
func (o *Object) Float(key string, def, min, max float64) float64 {
	v := o.Raw(key)
	if !v.Exists() || v.Type == gjson.Null {
		return def
	}
	if v.Type != gjson.Number {
		o.Addf(key, "must be a number, got %s", kind(v))
		return def
	}
	f := v.Float()
	if f < min || f > max {
		o.Addf(key, "must be between %g and %g, got %s", min, max, v.Raw)
		return def
	}
	return f
}

// Strings reads an array of strings at key, or def when absent.
func (o *Object) Strings(key string, def []string) []string {
	v := o.Raw(key)
	if !v.Exists() || v.Type == gjson.Null {
		return def
	}
	if !v.IsArray() {
		o.Addf(key, "must be an array of strings, got %s", kind(v))
		return def
	}
	var out []string
	for i, e := range v.Array() {
		if e.Type != gjson.String {
			o.errs.Addf(Index(o.Path(key), i), "must be a string, got %s", kind(e))
			continue
		}
		out = append(out, e.Str)
	}
	return out
}

// Object returns a reader for the object at key. When the key is absent it
// returns an empty reader, so defaults apply; when it is not an object it
// records a problem and returns an empty reader.
func (o *Object) Object(key string) *Object {
	v := o.Raw(key)
	p := o.Path(key)
	if !v.Exists() || v.Type == gjson.Null {
		return Wrap(gjson.Parse("{}"), p, o.errs)
	}
	if !v.IsObject() {
		o.Addf(key, "must be an object, got %s", kind(v))
		return Wrap(gjson.Parse("{}"), p, o.errs)
	}
	return Wrap(v, p, o.errs)
}

// Array returns the elements of the array at key, or nil when absent.
func (o *Object) Array(key string) []gjson.Result {
	v := o.Raw(key)
	if !v.Exists() || v.Type == gjson.Null {
		return nil
	}
	if !v.IsArray() {
		o.Addf(key, "must be an array, got %s", kind(v))
		return nil
	}
	return v.Array()
}

// Keys returns the object's keys in document order and marks them as read.
func (o *Object) Keys() []string {
	var keys []string
	o.res.ForEach(func(k, _ gjson.Result) bool {
		keys = append(keys, k.String())
		o.seen[k.String()] = true
		return true
	})
	return keys
}

// Done records a problem for every key that was present but never read
// (an unknown key is a typo until proven otherwise) and for every key given
// twice (only the first would count, silently).
func (o *Object) Done() {
	var unknown []string
	count := map[string]int{}
	o.res.ForEach(func(k, _ gjson.Result) bool {
		count[k.String()]++
		if count[k.String()] == 2 {
			o.Addf(k.String(), "given more than once: merge the two into one")
		}
		if !o.seen[k.String()] && count[k.String()] == 1 {
			unknown = append(unknown, k.String())
		}
		return true
	})
	sort.Strings(unknown)
	for _, k := range unknown {
		o.Addf(k, "unknown key: check its spelling against the configuration reference")
	}
}

// ObjectAt returns a reader for r at path, recording a problem when r is not
// an object (then the reader is empty).
func ObjectAt(r gjson.Result, path string, errs *Errors) *Object {
	if !r.IsObject() {
		errs.Addf(path, "must be an object, got %s", kind(r))
		return Wrap(gjson.Parse("{}"), path, errs)
	}
	return Wrap(r, path, errs)
}

// Kind names the JSON type of r for error messages.
func Kind(r gjson.Result) string { return kind(r) }

func kind(r gjson.Result) string {
	switch {
	case !r.Exists():
		return "nothing"
	case r.Type == gjson.Null:
		return "null"
	case r.Type == gjson.String:
		return "a string"
	case r.Type == gjson.Number:
		return "a number"
	case r.Type == gjson.True || r.Type == gjson.False:
		return "a boolean"
	case r.IsArray():
		return "an array"
	case r.IsObject():
		return "an object"
	}
	return "an unknown value"
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

package policy

import (
	"bytes"
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Extract reads a reputation API's answer into Signals using p's field map.
//
// It fails, with an *Error whose Kind says why, when the status is not 2xx
// (KindQuota for 429 and p.QuotaStatuses, else KindHTTPStatus), when the body
// is larger than p.BodyLimit() (KindTooLarge; it is never parsed truncated),
// empty (KindEmptyBody), not a JSON object (KindUnparsable), reports an
// error through p.ErrorPath or p.StatusPath (KindQuota or KindProviderError),
// or holds none of the configured fields (KindNoSignals).
//
// A single field that is missing, null or does not coerce leaves its signal
// Unknown and does not fail the answer. Extract keeps no reference to body.
func Extract(p *Provider, status int, body []byte) (Signals, error) {
	if status < 200 || status > 299 {
		if status == 429 || containsInt(p.QuotaStatuses, status) {
			return Signals{}, fail(KindQuota, status, "the API refused for quota or rate limits: raise the plan's limits or keep verdicts cached longer")
		}
		return Signals{}, fail(KindHTTPStatus, status, "the API answered with an error status: check the API key, provider.path and provider.authority")
	}
	if len(body) > p.BodyLimit() {
		return Signals{}, fail(KindTooLarge, status, "the answer is larger than provider.max_body_bytes: raise the limit or ask the API for fewer fields")
	}
	body = bytes.TrimPrefix(bytes.TrimSpace(body), []byte("\xef\xbb\xbf"))
	if len(body) == 0 {
		return Signals{}, fail(KindEmptyBody, status, "the answer has no body")
	}
	// One copy: results then point into memory Extract owns, not the
	// caller's buffer.
	js := string(body)
	if !gjson.Valid(js) {
		return Signals{}, fail(KindUnparsable, status, "the answer is not JSON")
	}
	if js[0] != '{' {
		return Signals{}, fail(KindUnparsable, status, "the answer is not a JSON object")
	}
	if err := p.bodyError(js, status); err != nil {
		return Signals{}, err
	}

	var s Signals
	f := &p.Fields
	s.Tor = readTri(js, &f.Tor)
	s.Proxy = readTri(js, &f.Proxy)
	s.VPN = readTri(js, &f.VPN)
	s.Relay = readTri(js, &f.Relay)
	s.Datacenter = readTri(js, &f.Datacenter)
	s.Score, s.ScoreKnown = readScore(js, &f.Score, p.ScoreScale)
	s.ASN, s.ASNKnown = readASN(js, &f.ASN)
	s.ASNType = readASNType(js, &f.ASNType)
	if !s.AnyKnown() {
		return Signals{}, fail(KindNoSignals, status, "none of provider.fields was found in the answer: compare the field map with the API's response")
	}
	return s, nil
}

// bodyError detects an error reported inside a 2xx answer.
func (p *Provider) bodyError(js string, status int) error {
	var hit gjson.Result
	switch {
	case p.ErrorPath != "" && truthy(gjson.Get(js, p.ErrorPath)):
		hit = gjson.Get(js, p.ErrorPath)
	case p.StatusPath != "":
		r := gjson.Get(js, p.StatusPath)
		if !r.Exists() || r.Type == gjson.Null || inFold(strings.TrimSpace(scalarText(r)), p.StatusOK) {
			return nil
		}
		hit = r
	default:
		return nil
	}
	msg := ""
	if p.MessagePath != "" {
		msg = gjson.Get(js, p.MessagePath).String()
	}
	if mentionsQuota(msg) || mentionsQuota(hit.String()) {
		return fail(KindQuota, status, "the API says a quota, rate limit or credit balance is exhausted")
	}
	return fail(KindProviderError, status, "the API reported an error in its answer: check the API key and plan")
}

var quotaWords = []string{"quota", "limit", "exceeded", "credit", "too many", "insufficient"}

// mentionsQuota reports whether msg (at most its first KiB) names a quota
// problem. The text is only searched, never kept or logged.
func mentionsQuota(msg string) bool {
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	if msg == "" {
		return false
	}
	low := strings.ToLower(msg)
	for _, w := range quotaWords {
		if strings.Contains(low, w) {
			return true
		}
	}
	return false
}

// truthy reports whether r is present and not null, false, 0, "", [] or {}.
func truthy(r gjson.Result) bool {
	switch r.Type {
	case gjson.Null:
		return false
	case gjson.False:
		return false
	case gjson.True:
		return true
	case gjson.Number:
		return r.Num != 0
	case gjson.String:
		return strings.TrimSpace(r.Str) != ""
	case gjson.JSON:
		empty := true
		r.ForEach(func(_, _ gjson.Result) bool { empty = false; return false })
		return !empty
	}
	return false
}

func readTri(js string, f *FieldSpec) Tri {
	if len(f.Paths) == 0 {
		return Unknown
	}
	out, found := Unknown, false
	for _, path := range f.Paths {
		r := gjson.Get(js, path)
		if !r.Exists() {
			continue
		}
		found = true
		switch matchTri(r, f) {
		case True:
			out = True
		case False:
			if out == Unknown {
				out = False
			}
		}
		if out == True {
			break
		}
	}
	if !found {
		return f.Absent
	}
	if out == True {
		for _, u := range f.Unless {
			if boolOf(gjson.Get(js, u)) == True {
				return False
			}
		}
	}
	return out
}

func matchTri(r gjson.Result, f *FieldSpec) Tri {
	switch f.Match {
	case MatchEquals:
		if !scalar(r) {
			return Unknown
		}
		return textIn(scalarText(r), f.Values)
	case MatchContains:
		if r.Type == gjson.String {
			return textIn(r.Str, f.Values)
		}
		if !r.IsArray() {
			return Unknown
		}
		hit := false
		r.ForEach(func(_, e gjson.Result) bool {
			if scalar(e) && inFold(strings.TrimSpace(scalarText(e)), f.Values) {
				hit = true
				return false
			}
			return true
		})
		return TriOf(hit)
	}
	return boolOf(r)
}

// boolOf coerces r to a Tri: JSON booleans, the numbers 0 and 1, and the
// strings true/yes/y/on/1 and false/no/n/off/0 in any case.
func boolOf(r gjson.Result) Tri {
	switch r.Type {
	case gjson.True:
		return True
	case gjson.False:
		return False
	case gjson.Number:
		switch r.Num {
		case 0:
			return False
		case 1:
			return True
		}
	case gjson.String:
		s := strings.TrimSpace(r.Str)
		for _, t := range [...]string{"true", "yes", "y", "on", "1"} {
			if strings.EqualFold(s, t) {
				return True
			}
		}
		for _, f := range [...]string{"false", "no", "n", "off", "0"} {
			if strings.EqualFold(s, f) {
				return False
			}
		}
	}
	return Unknown
}

// textIn is True when s is one of list, False when it is not, and Unknown
// when s is blank: an empty category is the provider not knowing.
func textIn(s string, list []string) Tri {
	s = strings.TrimSpace(s)
	if s == "" {
		return Unknown
	}
	return TriOf(inFold(s, list))
}

func scalar(r gjson.Result) bool {
	switch r.Type {
	case gjson.String, gjson.Number, gjson.True, gjson.False:
		return true
	}
	return false
}

func scalarText(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Number:
		return r.Raw
	case gjson.True:
		return "true"
	case gjson.False:
		return "false"
	}
	return ""
}

func inFold(s string, list []string) bool {
	for _, v := range list {
		if strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}

func containsInt(list []int, n int) bool {
	for _, v := range list {
		if v == n {
			return true
		}
	}
	return false
}

// scoreSlack absorbs rounding when a 0..1 score is scaled by 100.
const scoreSlack = 1e-6

func readScore(js string, f *FieldSpec, scale float64) (float64, bool) {
	if scale == 0 {
		scale = 1
	}
	for _, path := range f.Paths {
		v, ok := numberOf(gjson.Get(js, path))
		if !ok {
			continue
		}
		v *= scale
		if math.IsNaN(v) || v < -scoreSlack || v > 100+scoreSlack {
			continue
		}
		return min(max(v, 0), 100), true
	}
	return 0, false
}

// numberOf coerces a JSON number or a numeric string (optionally ending in
// '%') to a finite float.
func numberOf(r gjson.Result) (float64, bool) {
	var v float64
	switch r.Type {
	case gjson.Number:
		v = r.Num
	case gjson.String:
		s := strings.TrimSpace(r.Str)
		s = strings.TrimSpace(strings.TrimSuffix(s, "%"))
		if s == "" || !numeric(s) {
			return 0, false
		}
		var err error
		if v, err = strconv.ParseFloat(s, 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// numeric reports whether s looks like a plain decimal number, so that
// ParseFloat's extras (hex, "inf", "nan", '_') are not accepted.
func numeric(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && c != '.' && c != '-' && c != '+' && c != 'e' && c != 'E' {
			return false
		}
	}
	return true
}

func readASN(js string, f *FieldSpec) (uint32, bool) {
	for _, path := range f.Paths {
		if n, ok := asnOf(gjson.Get(js, path)); ok {
			return n, true
		}
	}
	return 0, false
}

// asnOf coerces 13335, "13335", "AS13335", "as 13335" and "AS13335 Example
// Inc." to 13335. AS0 (not routed) is read as unknown.
func asnOf(r gjson.Result) (uint32, bool) {
	var n uint64
	switch r.Type {
	case gjson.Number:
		if r.Num < 1 || r.Num > math.MaxUint32 || r.Num != math.Trunc(r.Num) {
			return 0, false
		}
		n = uint64(r.Num)
	case gjson.String:
		s := strings.TrimSpace(r.Str)
		if len(s) >= 2 && (s[0] == 'A' || s[0] == 'a') && (s[1] == 'S' || s[1] == 's') {
			s = strings.TrimLeft(s[2:], " ")
		}
		end := 0
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		if end == 0 || (end < len(s) && s[end] != ' ') {
			return 0, false
		}
		var err error
		if n, err = strconv.ParseUint(s[:end], 10, 32); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if n == 0 {
		return 0, false
	}
	return uint32(n), true
}

// maxASNType bounds the category text kept from an answer.
const maxASNType = 64

func readASNType(js string, f *FieldSpec) string {
	for _, path := range f.Paths {
		r := gjson.Get(js, path)
		if r.Type != gjson.String {
			continue
		}
		s := strings.TrimSpace(r.Str)
		if s == "" || len(s) > maxASNType {
			continue
		}
		low := strings.ToLower(s)
		if low == s {
			low = strings.Clone(s)
		}
		return low
	}
	return ""
}

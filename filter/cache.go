package filter

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/ipveil/ipveil/policy"
)

// Entry is a cached verdict.
type Entry struct {
	// Verdict is the policy's verdict, or on_error for a failed lookup.
	Verdict policy.Verdict
	// Reason is the rule name, "default", or "error:<kind>".
	Reason string
	// Failed marks a remembered lookup failure (cached for the error TTL).
	Failed bool
	// Expires is when the entry stops being served.
	Expires time.Time
}

// Cache stores verdicts per client. Implementations key entries by a keyed
// hash of the address, never the address itself.
type Cache interface {
	// Get returns the live entry for a, if any.
	Get(a netip.Addr, now time.Time) (Entry, bool)
	// Put stores e for a.
	Put(a netip.Addr, e Entry)
}

// secretKey is the shared-data key of the hashing secret, shared by every
// worker of one Envoy process.
const secretKey = "ipveil.secret.v1"

// sharedSecret returns the process-wide hashing secret, creating it with
// crypto/rand on first use. Creation races between workers are settled by
// shared data's compare-and-swap: the first writer wins and everyone reads
// its value.
func sharedSecret() ([]byte, error) {
	for attempt := 0; attempt < 8; attempt++ {
		v, cas, err := proxywasm.GetSharedData(secretKey)
		if err == nil && len(v) == 32 {
			return v, nil
		}
		if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
			return nil, err
		}
		s := make([]byte, 32)
		if _, err := rand.Read(s); err != nil {
			return nil, err
		}
		err = proxywasm.SetSharedData(secretKey, s, cas)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			return nil, err
		}
	}
	return nil, errors.New("shared data kept changing under compare-and-swap; restart the plugin")
}

// sharedCache keeps one shared-data key per client, named by a keyed hash.
type sharedCache struct {
	prefix string
	secret []byte
}

func newSharedCache(namespace string) (*sharedCache, error) {
	s, err := sharedSecret()
	if err != nil {
		return nil, err
	}
	return &sharedCache{prefix: namespace + ".v.", secret: s}, nil
}

func (c *sharedCache) key(a netip.Addr) string {
	m := hmac.New(sha256.New, c.secret)
	b := a.Unmap().As16()
	m.Write(b[:])
	return c.prefix + hex.EncodeToString(m.Sum(nil)[:16])
}

func (c *sharedCache) Get(a netip.Addr, now time.Time) (Entry, bool) {
	v, _, err := proxywasm.GetSharedData(c.key(a))
	if err != nil || len(v) == 0 {
		return Entry{}, false
	}
	e, ok := decodeEntry(string(v))
	if !ok || !now.Before(e.Expires) {
		return Entry{}, false
	}
	return e, true
}

func (c *sharedCache) Put(a netip.Addr, e Entry) {
	// cas 0: last writer wins; verdicts for one client are interchangeable.
	if err := proxywasm.SetSharedData(c.key(a), []byte(encodeEntry(e)), 0); err != nil {
		proxywasm.LogWarnf("ipveil: cannot store a verdict in shared data: %v", err)
	}
}

// encodeEntry writes "1|verdict|failed|expiry-unix-ms|reason".
func encodeEntry(e Entry) string {
	f := "0"
	if e.Failed {
		f = "1"
	}
	return "1|" + e.Verdict.String() + "|" + f + "|" + strconv.FormatInt(e.Expires.UnixMilli(), 10) + "|" + e.Reason
}

func decodeEntry(s string) (Entry, bool) {
	parts := strings.SplitN(s, "|", 5)
	if len(parts) != 5 || parts[0] != "1" {
		return Entry{}, false
	}
	v, err := policy.ParseVerdict(parts[1])
	if err != nil {
		return Entry{}, false
	}
	ms, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return Entry{}, false
	}
	return Entry{Verdict: v, Failed: parts[2] == "1", Expires: time.UnixMilli(ms), Reason: parts[4]}, true
}

package filter

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strconv"
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
	// Expires is when the entry stops being fresh.
	Expires time.Time
	// Signals is a summary of what the provider said (tri-states, score,
	// ASN), kept for operators inspecting shared data; never the address.
	Signals policy.Signals
	// Difficulty is the proof-of-work difficulty a challenge rule asked
	// for (0: the configured default).
	Difficulty uint8
	// Pending marks a claim, not a verdict: some worker is looking the
	// client up, and others wait for its answer until Expires.
	Pending bool
}

// CacheLevel says where a cached verdict was found.
type CacheLevel uint8

// Cache levels.
const (
	LevelNone   CacheLevel = iota
	LevelLocal             // the worker's own LRU, no hostcall
	LevelShared            // Envoy's shared data, visible to every worker
)

// Cache stores verdicts by keyed client hash, never by address.
type Cache interface {
	// Get returns the entry for k, if one is held: a fresh one (at now)
	// from either level when there is one, else the newest expired one,
	// whose use (serve-stale) the caller decides.
	Get(k clientKey, now time.Time) (Entry, CacheLevel, bool)
	// Put stores e for k.
	Put(k clientKey, e Entry)
	// Claim announces, until until, that this worker is looking k up. It
	// reports false when another worker's claim for k is still live: then
	// wait for that worker's verdict instead of calling the API again.
	Claim(k clientKey, until, now time.Time) bool
	// Release withdraws this worker's claim on k when it gives the lookup
	// up without a verdict, so others need not wait for the claim to run out.
	Release(k clientKey)
}

// secretKey is the shared-data key of the hashing secret, shared by every
// worker of one Envoy process and never logged.
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

// tieredCache is a per-worker LRU in front of a bounded shared-data table.
type tieredCache struct {
	local  *lru
	shared *slotTable
}

func (c *tieredCache) Get(k clientKey, now time.Time) (Entry, CacheLevel, bool) {
	var stale Entry
	haveStale := false
	if c.local != nil {
		if e, ok := c.local.get(k); ok {
			if now.Before(e.Expires) {
				return e, LevelLocal, true
			}
			// Expired here: another worker may have refreshed it in
			// shared data since.
			stale, haveStale = e, true
		}
	}
	e, ok := c.shared.get(k)
	if ok && (!haveStale || e.Expires.After(stale.Expires)) {
		if c.local != nil {
			c.local.put(k, e)
		}
		return e, LevelShared, true
	}
	if haveStale {
		return stale, LevelLocal, true
	}
	return Entry{}, LevelNone, false
}

func (c *tieredCache) Claim(k clientKey, until, now time.Time) bool {
	return c.shared.claim(k, until, now)
}

func (c *tieredCache) Release(k clientKey) { c.shared.release(k) }

func (c *tieredCache) Put(k clientKey, e Entry) {
	if c.local != nil {
		c.local.put(k, e)
	}
	c.shared.put(k, e)
}

// slotTable keeps verdicts in a fixed number of shared-data keys. Shared
// data has no delete and no eviction, so one key per client would grow
// Envoy's memory with every new address; here a client's key hash picks a
// slot, a newer verdict overwrites whatever the slot held, and the key
// count can never exceed the slot count. Each value carries the full key
// hash, so a slot never answers for another client.
type slotTable struct {
	prefix  string
	slots   uint64
	reasons *reasonTable
}

func (t *slotTable) key(k clientKey) string {
	return t.prefix + strconv.FormatUint(uint64(k)%t.slots, 10)
}

func (t *slotTable) get(k clientKey) (Entry, bool) {
	v, _, err := proxywasm.GetSharedData(t.key(k))
	if err != nil {
		return Entry{}, false
	}
	got, e, ok := decodeSlot(v, t.reasons)
	if !ok || got != k || e.Pending {
		return Entry{}, false
	}
	return e, true
}

// release expires k's pending marker, if the slot still holds one.
func (t *slotTable) release(k clientKey) {
	key := t.key(k)
	v, cas, err := proxywasm.GetSharedData(key)
	if err != nil {
		return
	}
	if got, e, ok := decodeSlot(v, t.reasons); ok && got == k && e.Pending {
		// A lost race means someone wrote the slot since: nothing to undo.
		_ = proxywasm.SetSharedData(key, encodeSlot(k, Entry{Pending: true}, t.reasons), cas)
	}
}

// claim writes a pending marker for k unless another worker's marker for k
// is live. Compare-and-swap settles two workers claiming at once: the
// loser sees the winner's marker.
func (t *slotTable) claim(k clientKey, until, now time.Time) bool {
	key := t.key(k)
	for attempt := 0; attempt < 2; attempt++ {
		v, cas, err := proxywasm.GetSharedData(key)
		if err != nil {
			cas = 0
		} else if got, e, ok := decodeSlot(v, t.reasons); ok && got == k && e.Pending && now.Before(e.Expires) {
			return false
		}
		err = proxywasm.SetSharedData(key, encodeSlot(k, Entry{Pending: true, Expires: until}, t.reasons), cas)
		if err == nil {
			return true
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			return true // shared data is unwell: look the client up anyway
		}
	}
	return true
}

func (t *slotTable) put(k clientKey, e Entry) {
	// Last writer wins and a collision replaces the older entry. The write
	// carries the slot's current CAS: Envoy treats CAS 0 as "no check", but
	// not every host does, and a race lost twice just drops this write.
	key, val := t.key(k), encodeSlot(k, e, t.reasons)
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		_, cas, gerr := proxywasm.GetSharedData(key)
		if gerr != nil {
			cas = 0
		}
		if err = proxywasm.SetSharedData(key, val, cas); err == nil || !errors.Is(err, types.ErrorStatusCasMismatch) {
			break
		}
	}
	if err != nil {
		proxywasm.LogWarnf("ipveil: cannot store a verdict in shared data: %v", err)
	}
}

// slotSize is the length of an encoded slot value:
//
//	[0]      version (1)
//	[1:9]    client key hash
//	[9]      verdict
//	[10]     flags (bit 0: failed lookup, bit 1: pending claim)
//	[11:13]  reason index
//	[13:21]  expiry, Unix milliseconds
//	[21:23]  tor, proxy, vpn, relay, datacenter: two bits each
//	[23]     score 0..100, 255 unknown
//	[24:28]  ASN, 0 unknown
//	[28]     challenge difficulty, 0 for the default
const slotSize = 29

func encodeSlot(k clientKey, e Entry, rt *reasonTable) []byte {
	b := make([]byte, slotSize)
	b[0] = 1
	binary.BigEndian.PutUint64(b[1:9], uint64(k))
	b[9] = byte(e.Verdict)
	if e.Failed {
		b[10] |= 1
	}
	if e.Pending {
		b[10] |= 2
	}
	binary.BigEndian.PutUint16(b[11:13], rt.index(e.Reason))
	binary.BigEndian.PutUint64(b[13:21], uint64(e.Expires.UnixMilli()))
	s := e.Signals
	tri := uint16(s.Tor) | uint16(s.Proxy)<<2 | uint16(s.VPN)<<4 | uint16(s.Relay)<<6 | uint16(s.Datacenter)<<8
	binary.BigEndian.PutUint16(b[21:23], tri)
	b[23] = 255
	if s.ScoreKnown {
		b[23] = byte(s.Score + 0.5)
	}
	if s.ASNKnown {
		binary.BigEndian.PutUint32(b[24:28], s.ASN)
	}
	b[28] = e.Difficulty
	return b
}

func decodeSlot(b []byte, rt *reasonTable) (clientKey, Entry, bool) {
	if len(b) != slotSize || b[0] != 1 {
		return 0, Entry{}, false
	}
	v := policy.Verdict(b[9])
	if v.String() == "" || v > policy.Flag {
		return 0, Entry{}, false
	}
	e := Entry{
		Verdict:    v,
		Failed:     b[10]&1 != 0,
		Pending:    b[10]&2 != 0,
		Reason:     rt.name(binary.BigEndian.Uint16(b[11:13])),
		Expires:    time.UnixMilli(int64(binary.BigEndian.Uint64(b[13:21]))),
		Difficulty: b[28],
	}
	tri := binary.BigEndian.Uint16(b[21:23])
	e.Signals.Tor = policy.Tri(tri & 3)
	e.Signals.Proxy = policy.Tri(tri >> 2 & 3)
	e.Signals.VPN = policy.Tri(tri >> 4 & 3)
	e.Signals.Relay = policy.Tri(tri >> 6 & 3)
	e.Signals.Datacenter = policy.Tri(tri >> 8 & 3)
	if b[23] != 255 {
		e.Signals.Score, e.Signals.ScoreKnown = float64(b[23]), true
	}
	if asn := binary.BigEndian.Uint32(b[24:28]); asn != 0 {
		e.Signals.ASN, e.Signals.ASNKnown = asn, true
	}
	return clientKey(binary.BigEndian.Uint64(b[1:9])), e, true
}

// reasonTable numbers every reason a configuration can cache, so a slot
// stores two bytes instead of a string. The table is derived from the
// configuration, whose hash also names the shared-data namespace, so all
// workers agree on it.
type reasonTable struct {
	names []string
	idx   map[string]uint16
}

// unknownReason is shown for an index the table does not know.
const unknownReason = "cached"

func newReasonTable(p *policy.Policy) *reasonTable {
	rt := &reasonTable{idx: map[string]uint16{}}
	add := func(s string) {
		if _, ok := rt.idx[s]; !ok {
			rt.idx[s] = uint16(len(rt.names))
			rt.names = append(rt.names, s)
		}
	}
	for _, r := range p.Rules {
		add(r.Name)
	}
	add(policy.ReasonDefault)
	for _, k := range policy.Kinds() {
		add("error:" + k.String())
	}
	return rt
}

func (rt *reasonTable) index(s string) uint16 {
	if i, ok := rt.idx[s]; ok {
		return i
	}
	return 0xffff
}

func (rt *reasonTable) name(i uint16) string {
	if int(i) < len(rt.names) {
		return rt.names[i]
	}
	return unknownReason
}

// lru is a fixed-capacity least-recently-used map from client key to entry,
// private to one worker VM: a hit costs no hostcall. Nodes live in one
// slice, linked by index, so the structure allocates only when it is built.
type lru struct {
	idx        map[clientKey]int32
	nodes      []lruNode
	head, tail int32 // most and least recently used; -1 when empty
}

type lruNode struct {
	key        clientKey
	e          Entry
	prev, next int32
}

func newLRU(capacity int) *lru {
	if capacity <= 0 {
		return nil
	}
	return &lru{idx: make(map[clientKey]int32, capacity), nodes: make([]lruNode, 0, capacity), head: -1, tail: -1}
}

func (l *lru) get(k clientKey) (Entry, bool) {
	i, ok := l.idx[k]
	if !ok {
		return Entry{}, false
	}
	l.moveFront(i)
	return l.nodes[i].e, true
}

func (l *lru) put(k clientKey, e Entry) {
	if i, ok := l.idx[k]; ok {
		l.nodes[i].e = e
		l.moveFront(i)
		return
	}
	var i int32
	if len(l.nodes) < cap(l.nodes) {
		i = int32(len(l.nodes))
		l.nodes = append(l.nodes, lruNode{prev: -1, next: -1})
	} else {
		i = l.tail
		l.unlink(i)
		delete(l.idx, l.nodes[i].key)
	}
	l.nodes[i].key, l.nodes[i].e = k, e
	l.idx[k] = i
	l.pushFront(i)
}

func (l *lru) len() int { return len(l.idx) }

func (l *lru) moveFront(i int32) {
	if l.head == i {
		return
	}
	l.unlink(i)
	l.pushFront(i)
}

func (l *lru) unlink(i int32) {
	n := &l.nodes[i]
	if n.prev >= 0 {
		l.nodes[n.prev].next = n.next
	} else {
		l.head = n.next
	}
	if n.next >= 0 {
		l.nodes[n.next].prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = -1, -1
}

func (l *lru) pushFront(i int32) {
	n := &l.nodes[i]
	n.prev, n.next = -1, l.head
	if l.head >= 0 {
		l.nodes[l.head].prev = i
	}
	l.head = i
	if l.tail < 0 {
		l.tail = i
	}
}

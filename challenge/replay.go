package challenge

import (
	"encoding/binary"
	"sync"
	"time"
)

// ReplayGuard remembers redeemed puzzles so that each is redeemed once.
// FirstUse records id until the time until (the puzzle's expiry, after
// which [Verify] refuses it anyway) and reports whether id was new. It
// must be safe for the caller's concurrency: one Proxy-Wasm VM calls it
// from one thread, native servers from many.
//
// Puzzle ids are 16 bytes from crypto/rand inside a signed token, so a
// visitor cannot choose them: an implementation may index slots by the id
// directly, without a keyed hash, and nobody can aim at a slot.
//
// A guard must stay bounded. When full it forgets the entry that expires
// first, which can let that one puzzle be redeemed twice; that costs an
// attacker a full slot table of solved puzzles and gains a second pass
// for the same network, which the first pass already gives.
type ReplayGuard interface {
	FirstUse(id [16]byte, until time.Time) bool
}

// MemoryReplayGuard is a [ReplayGuard] in process memory with a fixed
// number of slots, for tests and single-process use (one VM, one native
// server). In Envoy, where workers and replicas each have their own
// memory, the filter implements ReplayGuard over shared data instead.
// It is safe for concurrent use.
type MemoryReplayGuard struct {
	mu    sync.Mutex
	slots []replaySlot
}

type replaySlot struct {
	id    [16]byte
	until int64 // unix seconds; 0 means empty
}

// replayWays is how many neighbouring slots an id may occupy.
const replayWays = 4

// NewMemoryReplayGuard returns a guard with slots slots (at least 16;
// rounded up to a multiple of 4) of 24 bytes each. Size it to the number
// of puzzles redeemed within one puzzle TTL, with room to spare: 4096
// slots (96 KiB) cover 13 redemptions a second with a 5-minute TTL.
func NewMemoryReplayGuard(slots int) *MemoryReplayGuard {
	slots = max(slots, 16)
	slots = (slots + replayWays - 1) / replayWays * replayWays
	return &MemoryReplayGuard{slots: make([]replaySlot, slots)}
}

// FirstUse reports whether id is not yet recorded, and records it until
// until.
func (g *MemoryReplayGuard) FirstUse(id [16]byte, until time.Time) bool {
	u := until.Unix()
	if u <= 0 {
		u = 1
	}
	sets := uint64(len(g.slots) / replayWays)
	base := int(binary.LittleEndian.Uint64(id[:8])%sets) * replayWays
	g.mu.Lock()
	defer g.mu.Unlock()
	set := g.slots[base : base+replayWays]
	victim := 0
	for i := range set {
		if set[i].until != 0 && set[i].id == id {
			return false
		}
		if set[i].until < set[victim].until {
			victim = i
		}
	}
	set[victim] = replaySlot{id: id, until: u}
	return true
}

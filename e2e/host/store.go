package host

import (
	"math"
	"sort"
	"sync"
)

// Store is what an Envoy process shares between all its Wasm VMs: shared data
// (per vm_id, with compare-and-swap), shared queues and the stats that
// modules define. A Host uses its own Store unless Config.Store names one;
// give several Hosts the same Store to model several plugins in one process.
// A Store is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	data    map[string]map[string]*sharedEntry // vm_id → key → entry
	nextCAS uint32

	qmu       sync.Mutex
	queues    map[uint32]*sharedQueue
	queueKeys map[[2]string]uint32 // (vm_id, name) → token
	nextQueue uint32

	mmu     sync.Mutex
	metrics map[string]*metric
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{
		data:      map[string]map[string]*sharedEntry{},
		nextCAS:   1,
		queues:    map[uint32]*sharedQueue{},
		queueKeys: map[[2]string]uint32{},
		nextQueue: 1,
		metrics:   map[string]*metric{},
	}
}

func (s *Store) casValue() uint32 {
	c := s.nextCAS
	s.nextCAS++
	if s.nextCAS == 0 {
		s.nextCAS = 1
	}
	return c
}

func (s *Store) getShared(vmID, key string) ([]byte, uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.data[vmID][key]
	if !ok {
		return nil, 0, false
	}
	return e.value, e.cas, true
}

// setShared stores value under key. A non-zero cas must match the entry's
// current CAS value; as in Envoy, a cas for a missing key is ignored.
func (s *Store) setShared(vmID, key string, value []byte, cas uint32) status {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.data[vmID]
	if m == nil {
		m = map[string]*sharedEntry{}
		s.data[vmID] = m
	}
	v := append([]byte(nil), value...)
	if e, ok := m[key]; ok {
		if cas != 0 && cas != e.cas {
			return statusCASMismatch
		}
		e.value, e.cas = v, s.casValue()
		return statusOK
	}
	m[key] = &sharedEntry{value: v, cas: s.casValue()}
	return statusOK
}

// SharedDataStats reports the number of shared-data keys and the bytes held
// by keys and values, over every vm_id.
func (s *Store) SharedDataStats() (keys int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.data {
		for k, e := range m {
			keys++
			bytes += int64(len(k) + len(e.value))
		}
	}
	return keys, bytes
}

// SharedData returns a copy of the value stored under key for vmID, for tests
// and tools.
func (s *Store) SharedData(vmID, key string) ([]byte, bool) {
	v, _, ok := s.getShared(vmID, key)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), v...), true
}

// EachSharedData calls f with a copy of every shared-data entry, for tests
// and tools that must see everything a module stored (a leak scan, say).
func (s *Store) EachSharedData(f func(vmID, key string, value []byte)) {
	type entry struct {
		vm, key string
		value   []byte
	}
	var all []entry
	s.mu.Lock()
	for vm, m := range s.data {
		for k, e := range m {
			all = append(all, entry{vm, k, append([]byte(nil), e.value...)})
		}
	}
	s.mu.Unlock()
	for _, e := range all {
		f(e.vm, e.key, e.value)
	}
}

type sharedQueue struct {
	items  [][]byte
	notify func(token uint32) // posts proxy_on_queue_ready to the registering VM
}

func (s *Store) registerQueue(vmID, name string, notify func(uint32)) uint32 {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	key := [2]string{vmID, name}
	tok, ok := s.queueKeys[key]
	if !ok {
		for {
			tok = s.nextQueue
			s.nextQueue++
			if tok != 0 && s.queues[tok] == nil {
				break
			}
		}
		s.queueKeys[key] = tok
		s.queues[tok] = &sharedQueue{}
	}
	s.queues[tok].notify = notify // the last registrant is notified, as in Envoy
	return tok
}

func (s *Store) resolveQueue(vmID, name string) (uint32, bool) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	tok, ok := s.queueKeys[[2]string{vmID, name}]
	return tok, ok
}

func (s *Store) enqueue(token uint32, value []byte) status {
	s.qmu.Lock()
	q := s.queues[token]
	if q == nil {
		s.qmu.Unlock()
		return statusNotFound
	}
	q.items = append(q.items, append([]byte(nil), value...))
	notify := q.notify
	s.qmu.Unlock()
	if notify != nil {
		notify(token)
	}
	return statusOK
}

func (s *Store) dequeue(token uint32) ([]byte, status) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	q := s.queues[token]
	if q == nil {
		return nil, statusNotFound
	}
	if len(q.items) == 0 {
		return nil, statusEmpty
	}
	v := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	return v, statusOK
}

// MetricType is the kind of a module-defined metric.
type MetricType uint32

// The metric types of the Proxy-Wasm ABI.
const (
	Counter   MetricType = 0
	Gauge     MetricType = 1
	Histogram MetricType = 2
)

func (t MetricType) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Histogram:
		return "histogram"
	}
	return "unknown"
}

// Metric is a snapshot of one module-defined metric. Name carries Envoy's
// "wasmcustom." prefix, as /stats shows it.
type Metric struct {
	Name  string
	Type  MetricType
	Value int64 // counters and gauges
	// Histograms only: recorded values (the most recent 100,000, in no
	// particular order), plus the count and sum of all recorded values.
	Samples []uint64
	Count   uint64
	Sum     uint64
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of a histogram's samples, or
// NaN when it has none.
func (m Metric) Quantile(q float64) float64 {
	if len(m.Samples) == 0 {
		return math.NaN()
	}
	s := append([]uint64(nil), m.Samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q * float64(len(s)-1))
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return float64(s[i])
}

const maxHistogramSamples = 100_000

type metric struct {
	mu      sync.Mutex
	name    string
	typ     MetricType
	value   int64
	samples []uint64
	count   uint64
	sum     uint64
}

func (s *Store) defineMetric(typ MetricType, name string) *metric {
	full := "wasmcustom." + name
	s.mmu.Lock()
	defer s.mmu.Unlock()
	if m, ok := s.metrics[full]; ok && m.typ == typ {
		return m
	}
	m := &metric{name: full, typ: typ}
	s.metrics[full] = m
	return m
}

// Metrics returns a snapshot of every module-defined metric, sorted by name.
func (s *Store) Metrics() []Metric {
	s.mmu.Lock()
	ms := make([]*metric, 0, len(s.metrics))
	for _, m := range s.metrics {
		ms = append(ms, m)
	}
	s.mmu.Unlock()
	out := make([]Metric, 0, len(ms))
	for _, m := range ms {
		m.mu.Lock()
		out = append(out, Metric{
			Name: m.name, Type: m.typ, Value: m.value,
			Samples: append([]uint64(nil), m.samples...), Count: m.count, Sum: m.sum,
		})
		m.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (m *metric) add(d int64) {
	m.mu.Lock()
	m.value += d
	m.mu.Unlock()
}

func (m *metric) set(v int64) {
	m.mu.Lock()
	m.value = v
	m.mu.Unlock()
}

func (m *metric) get() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.value
}

func (m *metric) record(v uint64) {
	m.mu.Lock()
	if len(m.samples) < maxHistogramSamples {
		m.samples = append(m.samples, v)
	} else {
		m.samples[m.count%maxHistogramSamples] = v
	}
	m.count++
	m.sum += v
	m.mu.Unlock()
}

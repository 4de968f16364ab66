package host

import (
	"encoding/binary"
	"strings"
)

// Limits Envoy (proxy-wasm-cpp-host) applies when it parses a serialized map
// handed over by a module: a larger or malformed map is treated as empty.
const (
	maxPairsBytes = 1 << 20
	maxPairsCount = 1024
)

// encodePairs serializes header pairs in the Proxy-Wasm map format: a
// little-endian u32 count, then a (key length, value length) u32 pair per
// entry, then every key and value, each followed by a NUL byte.
func encodePairs(pairs [][2]string) []byte {
	if len(pairs) == 0 {
		return nil
	}
	size := 4 + 8*len(pairs)
	for _, p := range pairs {
		size += len(p[0]) + len(p[1]) + 2
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint32(b, uint32(len(pairs)))
	off := 4
	for _, p := range pairs {
		binary.LittleEndian.PutUint32(b[off:], uint32(len(p[0])))
		binary.LittleEndian.PutUint32(b[off+4:], uint32(len(p[1])))
		off += 8
	}
	for _, p := range pairs {
		off += copy(b[off:], p[0])
		b[off] = 0
		off++
		off += copy(b[off:], p[1])
		b[off] = 0
		off++
	}
	return b
}

// decodePairs parses a serialized map. Like Envoy it returns no pairs for
// anything malformed or over the limits, and it accepts the empty map as an
// empty buffer or a single zero byte.
func decodePairs(b []byte) [][2]string {
	if len(b) < 4 || len(b) > maxPairsBytes {
		return nil
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxPairsCount {
		return nil
	}
	sizes := 4 + 8*int(n)
	if len(b) < sizes {
		return nil
	}
	out := make([][2]string, 0, n)
	off := sizes
	for i := 0; i < int(n); i++ {
		kl := int(binary.LittleEndian.Uint32(b[4+8*i:]))
		vl := int(binary.LittleEndian.Uint32(b[8+8*i:]))
		if kl < 0 || vl < 0 || off+kl+1+vl+1 > len(b) || off+kl+1+vl+1 < off {
			return nil
		}
		k := string(b[off : off+kl])
		if b[off+kl] != 0 {
			return nil
		}
		off += kl + 1
		v := string(b[off : off+vl])
		if b[off+vl] != 0 {
			return nil
		}
		off += vl + 1
		out = append(out, [2]string{k, v})
	}
	if off != len(b) {
		return nil
	}
	return out
}

// headerMap is an ordered, case-insensitive multimap of HTTP fields, stored
// with lower-case keys as Envoy stores them.
type headerMap struct {
	pairs [][2]string
}

func newHeaderMap(pairs [][2]string) *headerMap {
	m := &headerMap{pairs: make([][2]string, 0, len(pairs)+4)}
	for _, p := range pairs {
		m.pairs = append(m.pairs, [2]string{strings.ToLower(p[0]), p[1]})
	}
	return m
}

// get returns the first value of key, as Envoy's get_header_map_value does.
func (m *headerMap) get(key string) (string, bool) {
	key = strings.ToLower(key)
	for _, p := range m.pairs {
		if p[0] == key {
			return p[1], true
		}
	}
	return "", false
}

func (m *headerMap) add(key, value string) {
	m.pairs = append(m.pairs, [2]string{strings.ToLower(key), value})
}

// replace sets key to value: the first occurrence is overwritten, others are
// removed; a missing key is appended.
func (m *headerMap) replace(key, value string) {
	key = strings.ToLower(key)
	out := m.pairs[:0]
	done := false
	for _, p := range m.pairs {
		if p[0] == key {
			if done {
				continue
			}
			p[1] = value
			done = true
		}
		out = append(out, p)
	}
	m.pairs = out
	if !done {
		m.pairs = append(m.pairs, [2]string{key, value})
	}
}

func (m *headerMap) remove(key string) {
	key = strings.ToLower(key)
	out := m.pairs[:0]
	for _, p := range m.pairs {
		if p[0] != key {
			out = append(out, p)
		}
	}
	m.pairs = out
}

func (m *headerMap) set(pairs [][2]string) {
	m.pairs = m.pairs[:0]
	for _, p := range pairs {
		m.pairs = append(m.pairs, [2]string{strings.ToLower(p[0]), p[1]})
	}
}

// byteSize is Envoy's HeaderMap::byteSize: the sum of key and value lengths.
func (m *headerMap) byteSize() uint32 {
	n := 0
	for _, p := range m.pairs {
		n += len(p[0]) + len(p[1])
	}
	return uint32(n)
}

func (m *headerMap) clone() [][2]string {
	if m == nil {
		return nil
	}
	out := make([][2]string, len(m.pairs))
	copy(out, m.pairs)
	return out
}

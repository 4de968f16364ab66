package filter

import "net/netip"

// memoSize bounds each per-worker memo. A memo that fills up is emptied and
// refilled: hot clients come back within a few requests.
const memoSize = 1024

// memo remembers, per worker VM, the masked forms computed for recent
// clients and header values. Masking is cheap natively but costs
// microseconds of allocation and formatting inside a Wasm VM, and a hot
// client sends the same values on every request. It holds masked values
// keyed by what they were computed from; it lives in the VM's memory only
// and is never written anywhere.
type memo struct {
	clients    map[netip.Addr][]byte
	pseudonyms map[netip.Addr][]byte
	headers    map[string]map[string]string // header name, then value
	size       int                          // entries in headers
}

func newMemo() *memo {
	return &memo{clients: make(map[netip.Addr][]byte), pseudonyms: make(map[netip.Addr][]byte), headers: make(map[string]map[string]string)}
}

// client returns the masked form of a, as bytes ready for filter state.
func (m *memo) client(cfg *Config, a netip.Addr) []byte {
	if v, ok := m.clients[a]; ok {
		return v
	}
	if len(m.clients) >= memoSize {
		clear(m.clients)
	}
	v := []byte(cfg.Masker.String(a))
	m.clients[a] = v
	return v
}

// header returns one masked line of a client-address header.
func (m *memo) header(cfg *Config, name, value string) string {
	byValue := m.headers[name]
	if v, ok := byValue[value]; ok {
		return v
	}
	if m.size >= memoSize {
		clear(m.headers)
		m.size, byValue = 0, nil
	}
	if byValue == nil {
		byValue = make(map[string]string)
		m.headers[name] = byValue
	}
	v := maskHeader(cfg, name, value)
	byValue[value] = v
	m.size++
	return v
}

// pseudonym returns the keyed pseudonym of a. ipcrypt is deterministic, so
// remembering it changes nothing but the cost: ipcrypt-pfx runs one AES
// block per address bit.
func (m *memo) pseudonym(cfg *Config, a netip.Addr) []byte {
	if v, ok := m.pseudonyms[a]; ok {
		return v
	}
	if len(m.pseudonyms) >= memoSize {
		clear(m.pseudonyms)
	}
	v := []byte(cfg.Pseudonymizer.Pseudonym(a))
	m.pseudonyms[a] = v
	return v
}

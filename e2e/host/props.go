package host

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// property resolves a proxy_get_property path (segments separated by NUL)
// the way Envoy's attribute lookup does, for stream st (nil: the plugin
// context). Values are serialized as Envoy serializes them: strings raw,
// integers and timestamps as 8-byte little endian, maps as header pairs.
func (v *vm) property(st *Stream, path string) ([]byte, status) {
	path = strings.TrimSuffix(path, "\x00")
	if path == "" {
		return nil, statusNotFound
	}
	parts := strings.Split(path, "\x00")
	p := v.w.h.cfg.Plugin
	if len(parts) == 1 {
		switch parts[0] {
		case "plugin_name":
			return []byte(p.Name), statusOK
		case "plugin_root_id":
			return []byte(p.RootID), statusOK
		case "plugin_vm_id":
			return []byte(p.VMID), statusOK
		}
	}
	if st == nil {
		return nil, statusNotFound // no stream info in the plugin context
	}
	if b, ok := st.props.Extra[strings.Join(parts, ".")]; ok {
		return b, statusOK
	}
	if b, ok := st.props.Extra[path]; ok {
		return b, statusOK
	}
	top := parts[0]
	rest := parts[1:]
	var fields map[string]any
	switch top {
	case "connection_id":
		if st.props.ConnectionID == 0 || len(rest) > 0 {
			return nil, statusNotFound
		}
		return u64le(st.props.ConnectionID), statusOK
	case "source":
		fields = addrFields(st.props.SourceAddress)
	case "destination":
		fields = addrFields(st.props.DestinationAddress)
	case "connection":
		fields = map[string]any{"mtls": false}
		if st.props.ConnectionID != 0 {
			fields["id"] = st.props.ConnectionID
		}
	case "request":
		fields = st.requestFields()
	case "response":
		fields = st.responseFields()
	default:
		if b, ok := st.getFilterState("wasm." + top); ok && len(rest) == 0 {
			return b, statusOK
		}
		return nil, statusNotFound
	}
	if len(rest) == 0 {
		return nil, statusSerializationFailure // Envoy cannot serialize these wrappers whole
	}
	val, ok := fields[rest[0]]
	if !ok {
		return nil, statusNotFound
	}
	rest = rest[1:]
	if hm, isMap := val.([][2]string); isMap {
		if len(rest) == 0 {
			return encodePairs(hm), statusOK
		}
		if len(rest) > 1 {
			return nil, statusNotFound
		}
		key := strings.ToLower(rest[0])
		var vals []string
		for _, kv := range hm {
			if kv[0] == key {
				vals = append(vals, kv[1])
			}
		}
		if len(vals) == 0 {
			return nil, statusNotFound
		}
		return []byte(strings.Join(vals, ",")), statusOK
	}
	if len(rest) > 0 {
		return nil, statusNotFound
	}
	return serialize(val), statusOK
}

func addrFields(ap netip.AddrPort) map[string]any {
	if !ap.IsValid() {
		return map[string]any{}
	}
	return map[string]any{"address": ap.String(), "port": int64(ap.Port())}
}

func (s *Stream) requestHeadersNow() [][2]string {
	if s.reqHeaders != nil {
		return s.reqHeaders.pairs
	}
	return s.lastReq
}

func (s *Stream) responseHeadersNow() [][2]string {
	if s.respHeaders != nil {
		return s.respHeaders.pairs
	}
	return s.lastResp
}

func (s *Stream) requestFields() map[string]any {
	h := s.requestHeadersNow()
	get := func(k string) (string, bool) {
		for _, p := range h {
			if p[0] == k {
				return p[1], true
			}
		}
		return "", false
	}
	f := map[string]any{
		"time":     s.props.StartTime,
		"protocol": s.props.Protocol,
		"headers":  h,
	}
	if path, ok := get(":path"); ok {
		f["path"] = path
		u, q, _ := strings.Cut(path, "?")
		f["url_path"] = u
		f["query"] = q
	}
	for _, kv := range [][2]string{{":authority", "host"}, {":method", "method"}, {":scheme", "scheme"},
		{"referer", "referer"}, {"user-agent", "useragent"}, {"x-request-id", "id"}} {
		if val, ok := get(kv[0]); ok {
			f[kv[1]] = val
		}
	}
	if _, ok := f["scheme"]; !ok {
		if val, ok := get("x-forwarded-proto"); ok {
			f["scheme"] = val
		}
	}
	if s.logPhase {
		f["duration"] = time.Since(s.props.StartTime)
	}
	return f
}

func (s *Stream) responseFields() map[string]any {
	h := s.responseHeadersNow()
	f := map[string]any{}
	if h == nil {
		return f
	}
	f["headers"] = h
	for _, p := range h {
		if p[0] == ":status" {
			if n, err := strconv.Atoi(p[1]); err == nil {
				f["code"] = int64(n)
			}
			break
		}
	}
	if s.details != "" {
		f["code_details"] = s.details
	} else if _, ok := f["code"]; ok {
		f["code_details"] = "via_upstream"
	}
	return f
}

func u64le(x uint64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, x)
	return b
}

func serialize(val any) []byte {
	switch x := val.(type) {
	case string:
		return []byte(x)
	case []byte:
		return x
	case int64:
		return u64le(uint64(x))
	case uint64:
		return u64le(x)
	case bool:
		if x {
			return []byte{1}
		}
		return []byte{0}
	case time.Time:
		return u64le(uint64(x.UnixNano()))
	case time.Duration:
		return u64le(uint64(x.Nanoseconds()))
	}
	return nil
}

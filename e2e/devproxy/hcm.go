package devproxy

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"strings"
)

// ClientAddress computes Envoy's trusted client address — what Envoy stores
// as the downstream remote address and a Wasm filter reads as
// source.address — from the connection's peer and the request's
// X-Forwarded-For value (xff, present when the header was sent), following
// the HTTP connection manager's rules:
//
//   - use_remote_address true, xff_num_trusted_hops N = 0: the peer.
//   - use_remote_address true, N > 0: the Nth address from the right of the
//     incoming XFF; the peer when XFF has fewer entries or that entry is not
//     an IP address.
//   - use_remote_address false: the (N+1)th address from the right of XFF;
//     the peer when there is none.
//
// An address taken from XFF has port 0. single reports whether XFF held a
// single address that was used (Envoy's single_xff_address), which decides
// internal versus external requests.
func ClientAddress(peer netip.AddrPort, xff string, present, useRemote bool, hops uint32) (addr netip.AddrPort, fromXFF, single bool) {
	if useRemote {
		single = !present
		if hops > 0 && present {
			if a, ok, _ := lastFromXFF(xff, hops-1); ok {
				return a, true, single
			}
		}
		return peer, false, single
	}
	if present {
		if a, ok, s := lastFromXFF(xff, hops); ok {
			return a, true, s
		}
	}
	return peer, false, false
}

// lastFromXFF is Envoy's Utility::getLastAddressFromXFF: skip the last skip
// entries, then parse the next one from the right.
func lastFromXFF(xff string, skip uint32) (netip.AddrPort, bool, bool) {
	s := xff
	for i := uint32(0); i < skip; i++ {
		c := strings.LastIndexByte(s, ',')
		if c < 0 {
			return netip.AddrPort{}, false, false
		}
		s = s[:c]
	}
	c := strings.LastIndexByte(s, ',')
	if c >= 0 && c+1 < len(s) {
		s = s[c+1:]
	}
	s = strings.TrimSpace(s)
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.AddrPort{}, false, false
	}
	return netip.AddrPortFrom(ip, 0), true, c < 0 && skip == 0
}

// isInternal is Envoy's Network::Utility::isInternalAddress: RFC 1918,
// 127.0.0.1, fd00::/8 and ::1.
func isInternal(a netip.Addr) bool {
	if a.Is4() {
		b := a.As4()
		return b[0] == 10 || (b[0] == 192 && b[1] == 168) || (b[0] == 172 && b[1] >= 16 && b[1] <= 31) ||
			a == netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if a.Is6() && !a.Is4In6() {
		b := a.As16()
		return b[0] == 0xfd || a == netip.IPv6Loopback()
	}
	return false
}

// headerList is an ordered list of lower-case header pairs.
type headerList [][2]string

func (h headerList) get(k string) (string, bool) {
	for _, p := range h {
		if p[0] == k {
			return p[1], true
		}
	}
	return "", false
}

// joined returns all values of k joined with ",", as Envoy's HTTP/1 codec
// coalesces inline headers such as X-Forwarded-For.
func (h headerList) joined(k string) (string, bool) {
	var vals []string
	for _, p := range h {
		if p[0] == k {
			vals = append(vals, p[1])
		}
	}
	if len(vals) == 0 {
		return "", false
	}
	return strings.Join(vals, ","), true
}

func (h headerList) del(k string) headerList {
	out := h[:0]
	for _, p := range h {
		if p[0] != k {
			out = append(out, p)
		}
	}
	return out
}

func (h headerList) set(k, v string) headerList {
	h = h.del(k)
	return append(h, [2]string{k, v})
}

// edgeHeaders are the x-envoy-* request headers Envoy removes from
// requests it does not consider internal.
var edgeHeaders = []string{
	"x-envoy-retry-on", "x-envoy-retry-grpc-on", "x-envoy-max-retries", "x-envoy-upstream-alt-stat-name",
	"x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-rq-per-try-timeout-ms",
	"x-envoy-upstream-rq-timeout-alt-response", "x-envoy-expected-rq-timeout-ms", "x-envoy-force-trace",
	"x-envoy-ip-tags", "x-envoy-original-url", "x-envoy-hedge-on-per-try-timeout",
}

// mutateRequest applies the connection manager's request header rules
// (Envoy's ConnectionManagerUtility::mutateRequestHeaders) and returns the
// trusted client address.
func mutateRequest(h headerList, peer, local netip.AddrPort, useRemote bool, hops uint32) (headerList, netip.AddrPort) {
	for _, k := range []string{"connection", "upgrade", "keep-alive", "proxy-connection", "transfer-encoding", "x-envoy-internal"} {
		h = h.del(k)
	}
	xff, present := h.joined("x-forwarded-for")
	addr, _, single := ClientAddress(peer, xff, present, useRemote, hops)
	if useRemote {
		appended := peer.Addr()
		if appended.IsLoopback() && local.IsValid() {
			appended = local.Addr() // Envoy appends its own address for a loopback peer
		}
		if present && xff != "" {
			xff += "," + appended.String()
		} else {
			xff = appended.String()
		}
		h = h.set("x-forwarded-for", xff)
		if _, ok := h.get("x-forwarded-proto"); hops == 0 || !ok {
			h = h.set("x-forwarded-proto", "http")
		}
	} else if present {
		h = h.set("x-forwarded-for", xff)
	}
	if _, ok := h.get("x-forwarded-proto"); !ok {
		h = h.set("x-forwarded-proto", "http")
	}
	internal := single && isInternal(addr.Addr())
	edge := !internal && useRemote
	if internal {
		h = h.set("x-envoy-internal", "true")
	} else {
		if edge {
			for _, k := range []string{"x-envoy-decorator-operation", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node"} {
				h = h.del(k)
			}
		}
		for _, k := range edgeHeaders {
			h = h.del(k)
		}
	}
	if edge {
		h = h.set("x-envoy-external-address", addr.Addr().String())
	}
	if _, ok := h.get("x-request-id"); edge || !ok {
		h = h.set("x-request-id", uuid4())
	}
	if _, ok := h.get(":scheme"); !ok {
		h = append(h, [2]string{":scheme", "http"})
	}
	return h, addr
}

func uuid4() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

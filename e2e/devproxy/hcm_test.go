package devproxy

import (
	"net/netip"
	"testing"
)

func TestClientAddress(t *testing.T) {
	peer := netip.MustParseAddrPort("192.0.2.5:4242")
	xff := "203.0.113.128, 203.0.113.10, 203.0.113.1"
	cases := []struct {
		xff       string
		present   bool
		useRemote bool
		hops      uint32
		want      string
	}{
		// Envoy's documented examples.
		{xff, true, true, 0, "192.0.2.5:4242"},
		{xff, true, true, 2, "203.0.113.10:0"},
		{xff + ", 192.0.2.5", true, false, 0, "192.0.2.5:0"},
		{xff + ", 192.0.2.5", true, false, 2, "203.0.113.10:0"},
		// Fewer entries than hops, garbage, zones, IPv6.
		{"203.0.113.1", true, true, 2, "192.0.2.5:4242"},
		{"not-an-ip", true, true, 1, "192.0.2.5:4242"},
		{"fe80::1%eth0", true, true, 1, "192.0.2.5:4242"},
		{"2001:db8::7", true, true, 1, "[2001:db8::7]:0"},
		{"", false, false, 0, "192.0.2.5:4242"},
		{"10.0.0.1,", true, false, 0, "192.0.2.5:4242"},
	}
	for _, c := range cases {
		got, _, _ := ClientAddress(peer, c.xff, c.present, c.useRemote, c.hops)
		if got.String() != c.want {
			t.Errorf("ClientAddress(%q, remote=%v, hops=%d) = %s, want %s", c.xff, c.useRemote, c.hops, got, c.want)
		}
	}
}

func TestMutateRequestInternalAndExternal(t *testing.T) {
	peer := netip.MustParseAddrPort("127.0.0.1:5000")
	local := netip.MustParseAddrPort("127.0.0.1:10000")
	h, addr := mutateRequest(headerList{{":path", "/"}, {"x-envoy-retry-on", "5xx"}, {"x-request-id", "mine"}}, peer, local, true, 0)
	if v, _ := h.get("x-envoy-internal"); v != "true" || addr != peer {
		t.Fatalf("internal: %v %v", h, addr)
	}
	if v, _ := h.get("x-request-id"); v != "mine" {
		t.Fatal("request id replaced on an internal request")
	}
	h, addr = mutateRequest(headerList{{"x-forwarded-for", "198.51.100.9"}, {"x-envoy-retry-on", "5xx"}, {"x-request-id", "mine"}}, peer, local, true, 1)
	if addr.String() != "198.51.100.9:0" {
		t.Fatal(addr)
	}
	if _, ok := h.get("x-envoy-retry-on"); ok {
		t.Fatal("x-envoy-retry-on kept on an external request")
	}
	if v, _ := h.get("x-envoy-external-address"); v != "198.51.100.9" {
		t.Fatal(v)
	}
	if v, _ := h.get("x-request-id"); v == "mine" || len(v) != 36 {
		t.Fatalf("request id %q", v)
	}
	if v, _ := h.get("x-forwarded-for"); v != "198.51.100.9,127.0.0.1" {
		t.Fatal(v)
	}
}

// Package bench measures ipveil's compiled module in the e2e host and the
// local stack. `make bench` runs every benchmark once and writes the figures
// to build/bench.json:
//
//	hit_ns                           median guest time of a request whose verdict is cached
//	                                 (proxy_on_context_create through proxy_on_delete)
//	null_ns                          the same for the no-op module built the same way
//	hit_over_null                    their ratio, measured in the same run
//	callouts_50_concurrent_same_ip   API calls for 50 concurrent requests from one new address
//	shared_keys_after_200k_ips       shared-data keys after 200,000 distinct random addresses
//	shared_bytes_after_200k_ips      and their bytes
//	vm_memory_bytes_after_200k_ips   one worker VM's linear memory after that flood
//	wasm_bytes                       size of build/ipveil.wasm
//	rps_ratio_with_filter            requests/s through devproxy with the filter (cache warm)
//	                                 over requests/s without it, same run
//
// These are benchmarks, not tests: nothing here fails because the machine is
// slow. Figures vary with the machine; the ratios are what to compare.
package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipveil/ipveil/anonymize"
	"github.com/ipveil/ipveil/e2e/host"
	"github.com/ipveil/ipveil/e2e/internal/wasmtest"
	"github.com/ipveil/ipveil/e2e/mockrep"
	"github.com/ipveil/ipveil/e2e/stack"
)

var benchJSON = flag.String("bench-json", "", "write the figures to this file (merged with what is there)")

var (
	resultsMu sync.Mutex
	results   = map[string]any{}
)

func record(b *testing.B, key string, v any) {
	resultsMu.Lock()
	results[key] = v
	resultsMu.Unlock()
	b.Logf("%s = %v", key, v)
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if *benchJSON != "" && len(results) > 0 {
		all := map[string]any{}
		if old, err := os.ReadFile(*benchJSON); err == nil {
			_ = json.Unmarshal(old, &all)
		}
		for k, v := range results {
			all[k] = v
		}
		all["measured_at"] = time.Now().UTC().Format(time.RFC3339)
		out, _ := json.MarshalIndent(all, "", "  ")
		if err := os.WriteFile(*benchJSON, append(out, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// benchConfig is a plugin configuration with the default policy and a
// provider answered in-process.
const benchConfig = `{"provider": {"preset": "ipasis", "cluster": "reputation", "authority": "api.ipasis.example",
  "headers": {"x-api-key": "k"}, "timeout_ms": 1000}, "cache": {"ttl_s": 3600, "slots": %d}}`

// cleanAnswer answers every lookup with a clean verdict.
func cleanAnswer(ctx context.Context, req *host.CalloutRequest) (*host.CalloutResponse, error) {
	return &host.CalloutResponse{
		Headers: [][2]string{{":status", "200"}, {"content-type", "application/json"}},
		Body:    []byte(`{"privacy":{"VPN":false,"Proxy":false,"Tor":false,"Relay":false,"Hosting":false},"risk":{"score":3},"asn":{"ASN":"AS64500","Type":"isp"}}`),
	}, nil
}

// guestTimer sums the guest time of every callback on worker 0.
type guestTimer struct {
	mu    sync.Mutex
	total time.Duration
}

func (g *guestTimer) onCall(worker int, _ string, d time.Duration) {
	g.mu.Lock()
	g.total += d
	g.mu.Unlock()
}

func (g *guestTimer) take() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.total
	g.total = 0
	return t
}

func newHost(b *testing.B, m wasmtest.Module, slots int, timer *guestTimer, workers int) *host.Host {
	return newHostWith(b, m, fmt.Sprintf(benchConfig, slots), nil, timer, workers)
}

func newHostWith(b *testing.B, m wasmtest.Module, config string, env map[string]string, timer *guestTimer, workers int) *host.Host {
	b.Helper()
	code, err := wasmtest.Bytes(m)
	if err != nil {
		b.Fatal(err)
	}
	cfg := host.Config{
		Module:   code,
		CacheDir: wasmtest.CacheDir(),
		Plugin: host.Plugin{Name: "ipveil", RootID: "ipveil", VMID: "ipveil",
			Configuration: []byte(config), Env: env},
		Workers: workers,
		Callout: cleanAnswer,
		Logger:  discard{},
	}
	if timer != nil {
		cfg.OnCall = timer.onCall
	}
	h, err := host.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	return h
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

var requestHeaders = [][2]string{
	{":method", "GET"}, {":path", "/index.html"}, {":authority", "app.example"}, {":scheme", "http"},
	{"user-agent", "bench/1.0"}, {"accept", "*/*"}, {"x-forwarded-for", "192.0.2.10"}, {"x-request-id", "5f0c1a2e"},
}

// request runs one full request on worker 0: headers in, response headers,
// then log, done and delete.
func request(b *testing.B, h *host.Host, src netip.AddrPort) host.Result {
	s := h.NewStreamOn(0, host.Props{SourceAddress: src})
	res, err := s.RequestHeaders(context.Background(), requestHeaders, true)
	if err != nil {
		b.Fatal(err)
	}
	if res.Action == host.Continue {
		if _, err := s.ResponseHeaders(context.Background(), [][2]string{{":status", "200"}}, true); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	return res
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkCachedRequestGuestTime measures the guest time of a request
// whose verdict is cached, against the no-op module, in one run.
func BenchmarkCachedRequestGuestTime(b *testing.B) {
	const n = 20000
	src := netip.MustParseAddrPort("192.0.2.10:0")
	measure := func(m wasmtest.Module) time.Duration {
		t := &guestTimer{}
		h := newHost(b, m, 65536, t, 1)
		for i := 0; i < 2000; i++ { // warm up: the first request looks the client up
			request(b, h, src)
		}
		t.take()
		ds := make([]time.Duration, n)
		for i := range ds {
			request(b, h, src)
			ds[i] = t.take()
		}
		return median(ds)
	}
	// Interleave the two measurements twice to spread machine noise evenly.
	var hit, null []time.Duration
	for round := 0; round < 2; round++ {
		null = append(null, measure(wasmtest.Null))
		hit = append(hit, measure(wasmtest.Ipveil))
	}
	hitNs, nullNs := float64(min(hit[0], hit[1]).Nanoseconds()), float64(min(null[0], null[1]).Nanoseconds())
	record(b, "hit_ns", hitNs)
	record(b, "null_ns", nullNs)
	record(b, "hit_over_null", round2(hitNs/nullNs))
	b.ReportMetric(hitNs, "hit-ns/req")
	b.ReportMetric(nullNs, "null-ns/req")
}

// BenchmarkPrivacyOptionsGuestTime measures what pseudonyms and sealed
// audit values add to a cached request, in one run.
func BenchmarkPrivacyOptionsGuestTime(b *testing.B) {
	const n = 3000
	pub, _, err := anonymize.GenerateKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	src := netip.MustParseAddrPort("192.0.2.10:0")
	measure := func(privacy string, env map[string]string) time.Duration {
		t := &guestTimer{}
		cfg := strings.TrimSuffix(fmt.Sprintf(benchConfig, 65536), "}") + `, "privacy": {` + privacy + `}}`
		h := newHostWith(b, wasmtest.Ipveil, cfg, env, t, 1)
		for i := 0; i < 200; i++ {
			request(b, h, src)
		}
		t.take()
		ds := make([]time.Duration, n)
		for i := range ds {
			request(b, h, src)
			ds[i] = t.take()
		}
		return median(ds)
	}
	base := measure(`"ipv4_prefix": 24`, nil)
	pfx := measure(`"pseudonym": {}`, map[string]string{"IPVEIL_PSEUDONYM_KEYS": "k1:2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a"})
	seal := measure(`"seal": {"key_id": "audit-1", "public_key": "`+pub+`", "when": "all"}`, nil)
	record(b, "privacy_base_ns", float64(base.Nanoseconds()))
	record(b, "privacy_pseudonym_pfx_ns", float64(pfx.Nanoseconds()))
	record(b, "privacy_seal_every_request_ns", float64(seal.Nanoseconds()))
	record(b, "seal_cost_ns", float64((seal - base).Nanoseconds()))
}

// BenchmarkFloodOfAddresses sends 200,000 distinct random addresses and
// reports shared data and one VM's memory as the flood goes on.
func BenchmarkFloodOfAddresses(b *testing.B) {
	const total, slots = 200000, 65536
	h := newHost(b, wasmtest.Ipveil, slots, nil, 2)
	rng := rand.New(rand.NewPCG(1, 2))
	memory := map[string]uint64{}
	for i := 1; i <= total; i++ {
		var a netip.Addr
		if i%4 == 0 {
			var b16 [16]byte
			for j := range b16 {
				b16[j] = byte(rng.UintN(256))
			}
			b16[0] = 0x20
			a = netip.AddrFrom16(b16)
		} else {
			a = netip.AddrFrom4([4]byte{byte(1 + rng.UintN(222)), byte(rng.UintN(256)), byte(rng.UintN(256)), byte(1 + rng.UintN(254))})
		}
		request(b, h, netip.AddrPortFrom(a, 0))
		if i%50000 == 0 {
			memory[fmt.Sprintf("%dk", i/1000)] = h.VMMemoryBytes(0)
		}
	}
	keys, bytes := h.SharedDataStats()
	record(b, "shared_keys_after_200k_ips", keys)
	record(b, "shared_bytes_after_200k_ips", bytes)
	record(b, "shared_slots_configured", slots)
	record(b, "vm_memory_bytes_after_200k_ips", h.VMMemoryBytes(0))
	record(b, "vm_memory_bytes_during_flood", memory)
}

// BenchmarkFiftyConcurrentSameAddress counts the API calls made for 50
// concurrent requests from one new address through devproxy (2 workers).
func BenchmarkFiftyConcurrentSameAddress(b *testing.B) {
	s := stack.Start(b, stack.Options{})
	s.Mock.SetFixture("203.0.113.200", mockrep.Fixture{Status: 200, DelayMS: 100,
		Body: []byte(`{"privacy":{"Tor":true,"Proxy":false,"VPN":false,"Relay":false,"Hosting":true},"risk":{"score":95}}`)})
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.Get("/", "X-Forwarded-For", "203.0.113.200"); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	record(b, "callouts_50_concurrent_same_ip", s.Mock.Calls("203.0.113.200"))
}

// BenchmarkThroughput compares requests per second through devproxy with and
// without the filter (its cache warm), in the same run.
func BenchmarkThroughput(b *testing.B) {
	const clients, dur = 16, 3 * time.Second
	run := func(o stack.Options) float64 {
		s := stack.Start(b, o)
		s.Get("/", "X-Forwarded-For", "192.0.2.10") // warm the verdict
		var n atomic.Int64
		deadline := time.Now().Add(dur)
		var wg sync.WaitGroup
		start := time.Now()
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					resp, _, err := s.Get("/", "X-Forwarded-For", "192.0.2.10")
					if err == nil && resp.StatusCode == http.StatusOK {
						n.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		rps := float64(n.Load()) / time.Since(start).Seconds()
		s.Close()
		return rps
	}
	without := run(stack.Options{NoFilter: true})
	with := run(stack.Options{})
	record(b, "rps_without_filter", round2(without))
	record(b, "rps_with_filter", round2(with))
	record(b, "rps_ratio_with_filter", round2(with/without))
}

// BenchmarkModuleSize records the module's size.
func BenchmarkModuleSize(b *testing.B) {
	p, err := wasmtest.Path(wasmtest.Ipveil)
	if err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	record(b, "wasm_bytes", st.Size())
	record(b, "wasm_file", filepath.Base(p))
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

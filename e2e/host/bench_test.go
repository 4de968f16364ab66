package host_test

import (
	"context"
	"io"
	"sort"
	"testing"
	"time"

	"github.com/ipveil/ipveil/e2e/host"
	"github.com/ipveil/ipveil/e2e/host/hosttest"
)

// BenchmarkRequestLifecycle runs a pass-through request (context create,
// request headers, log, done, delete) on one worker and reports the median
// time spent inside proxy_on_request_headers alone (guest-ns/op).
func BenchmarkRequestLifecycle(b *testing.B) {
	var guest []time.Duration
	h, err := host.New(context.Background(), host.Config{
		Module: hosttest.Guest(b), CacheDir: hosttest.CacheDir(), Workers: 1, Logger: io.Discard,
		OnCall: func(_ int, cb string, d time.Duration) {
			if cb == "proxy_on_request_headers" {
				guest = append(guest, d)
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	hdrs := req("/bench")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := h.NewStream(props())
		if _, err := s.RequestHeaders(ctx, hdrs, true); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	b.StopTimer()
	if len(guest) > 0 {
		sort.Slice(guest, func(i, j int) bool { return guest[i] < guest[j] })
		b.ReportMetric(float64(guest[len(guest)/2].Nanoseconds()), "guest-ns/op")
	}
}

// Command mockrep runs the mock IP-reputation API of ipveil's local stack.
//
//	mockrep -listen 127.0.0.1:10001 -fixtures e2e/testdata/fixtures.json \
//	        [-api-key-header x-api-key -api-key demo-key] [-log]
//
// Lookups: GET /v1/lookup?ip=ADDRESS (or any path ending in the address).
// Control: GET /_calls (lookups per IP), POST /_reset (zero them).
// It prints the address it listens on, then serves until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ipveil/ipveil/e2e/mockrep"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:10001", "address to listen on (port 0 picks a free port)")
	fixtures := flag.String("fixtures", "e2e/testdata/fixtures.json", "fixture file: JSON object from IP (or \"*\") to {status, body, delay_ms, headers}")
	keyHeader := flag.String("api-key-header", "", "if set, lookups must carry -api-key in this header, else 401")
	key := flag.String("api-key", "", "the API key -api-key-header must hold")
	logRequests := flag.Bool("log", false, "log one line per request to stderr, including the IP looked up (off by default: the stack keeps no client IPs)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments %q: all settings are flags (see -h)", flag.Args()))
	}
	if (*keyHeader == "") != (*key == "") {
		fail(errors.New("-api-key-header and -api-key go together: set both, or neither"))
	}

	fx, err := mockrep.LoadFixtures(*fixtures)
	if err != nil {
		fail(err)
	}
	opts := mockrep.Options{APIKeyHeader: *keyHeader, APIKey: *key}
	if *logRequests {
		opts.Log = os.Stderr
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fail(fmt.Errorf("listen on %s: %w (is another mockrep running?)", *listen, err))
	}
	srv := &http.Server{Handler: mockrep.New(fx, opts), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "mockrep: listening on %s with %d fixtures from %s\n", l.Addr(), len(fx), *fixtures)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mockrep:", err)
	os.Exit(2)
}

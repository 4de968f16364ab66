// Command echo runs the application side of ipveil's local stack: an HTTP/1.1
// service that answers every request with JSON listing the request line,
// every header in the order received and the body.
//
//	echo -listen 127.0.0.1:10002
//
// It prints the address it listens on, then serves until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/ipveil/ipveil/e2e/echo"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:10002", "address to listen on (port 0 picks a free port)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments %q: the only setting is -listen", flag.Args()))
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fail(fmt.Errorf("listen on %s: %w (is another echo running?)", *listen, err))
	}
	fmt.Fprintf(os.Stderr, "echo: listening on %s\n", l.Addr())

	var srv echo.Server
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, echo.ErrServerClosed) {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "echo:", err)
	os.Exit(2)
}

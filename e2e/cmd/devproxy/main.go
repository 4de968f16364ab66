// Command devproxy runs an Envoy v3 bootstrap file with its Wasm HTTP
// filters on ipveil's local Proxy-Wasm host, for development and tests on
// machines without Envoy. It is not a production proxy.
//
//	devproxy -c envoy.yaml [-workers N] [-cache-dir DIR] [-log-level info]
//
// It exits non-zero, with the module's log lines, if a Wasm plugin refuses
// its configuration (as Envoy refuses the listener), and stops on SIGINT,
// SIGTERM or POST /quitquitquit on the admin interface.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ipveil/ipveil/e2e/bootstrap"
	"github.com/ipveil/ipveil/e2e/devproxy"
	"github.com/ipveil/ipveil/e2e/host"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("devproxy", flag.ContinueOnError)
	config := fs.String("c", "", "Envoy v3 bootstrap file (YAML or JSON) to run")
	workers := fs.Int("workers", 2, "number of Wasm VMs per filter, like Envoy's --concurrency")
	cacheDir := fs.String("cache-dir", "", "directory for the compiled-module cache (speeds up later starts)")
	logLevel := fs.String("log-level", "info", "log level: trace, debug, info, warn, error or critical")
	listen := fs.String("listen", "", "override the listener address (host:port)")
	admin := fs.String("admin", "", `override the admin address (host:port), or "-" for none`)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: devproxy -c envoy.yaml [-workers N] [-cache-dir DIR] [-log-level info]")
		fmt.Fprintln(os.Stderr, "devproxy is a development proxy that runs Envoy bootstraps with ipveil's Wasm host; it is not a production proxy.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *config == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	level, err := host.ParseLogLevel(*logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devproxy:", err)
		return 2
	}
	if *workers < 1 {
		fmt.Fprintln(os.Stderr, "devproxy: -workers must be at least 1")
		return 2
	}
	cfg, err := bootstrap.Load(*config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devproxy:", err)
		return 1
	}
	p, err := devproxy.New(cfg, devproxy.Options{
		Workers: *workers, CacheDir: *cacheDir, LogLevel: level, ListenAddr: *listen, AdminAddr: *admin,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := p.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		p.Close()
		return 1
	}
	select {
	case <-ctx.Done():
	case <-p.Done():
	}
	p.Close()
	return 0
}

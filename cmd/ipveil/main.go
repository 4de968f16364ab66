// Command ipveil is the native companion of the ipveil Proxy-Wasm filter:
//
//	ipveil check-config [-env] FILE           validate a plugin configuration exactly as the plugin does at start
//	ipveil mask [-4 24] [-6 64] IP…           print the masked form of addresses
//	ipveil scrub [-mode mask|pseudonym|seal]  rewrite log lines from stdin with every address masked, pseudonymised or sealed
//	ipveil pseudonymize [-reveal] IP…         print (or reveal) keyed ipcrypt pseudonyms
//	ipveil keygen -id ID                      make an X25519 key pair for privacy.seal
//	ipveil unseal -id ID [TOKEN…]             open sealed values (offline, with the private key)
//
// Every command exits 0 on success, 1 when its input is invalid and 2 on a
// usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ipveil/ipveil/anonymize"
	"github.com/ipveil/ipveil/filter"
	"github.com/ipveil/ipveil/internal/jsoncfg"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

type command struct {
	name, usage string
	run         func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"check-config", "[-env] FILE    validate a plugin configuration (JSON) as the plugin does at start", checkConfig},
		{"mask", "[-4 BITS] [-6 BITS] IP…    print each address masked to its network", mask},
		{"scrub", "[-mode mask|pseudonym|seal] [-4 BITS] [-6 BITS]    rewrite log lines from stdin, every address replaced", scrub},
		{"pseudonymize", "[-reveal] IP…|PSEUDONYM…    keyed ipcrypt pseudonyms (keys in IPVEIL_PSEUDONYM_KEYS)", pseudonymize},
		{"keygen", "-id ID    make an X25519 key pair for privacy.seal", keygen},
		{"unseal", "-id ID [TOKEN…]    open sealed values with the private key in IPVEIL_SEAL_PRIVATE_KEY (tokens from args or stdin)", unseal},
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "ipveil: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ipveil COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %s %s\n", c.name, c.usage)
	}
}

func checkConfig(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	useEnv := fs.Bool("env", false, "also require every ${VAR} in provider.headers to be set in this process's environment (as it will be in vm_config.environment_variables)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: ipveil check-config [-env] FILE")
		return 2
	}
	path := fs.Arg(0)
	doc, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "ipveil: %v\n", err)
		return 1
	}
	var env filter.EnvLookup
	if *useEnv {
		env = os.LookupEnv
	}
	cfg, err := filter.ParseConfig(doc, env)
	if err != nil {
		var ce *jsoncfg.Error
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "%s: %d problem(s); the plugin would refuse to start:\n", path, len(ce.Problems))
			for _, p := range ce.Problems {
				fmt.Fprintf(stderr, "  %s\n", p.Error())
			}
			return 1
		}
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (mode %s, provider %s via cluster %q, client from %s, %d rule(s), on_error %s)\n",
		path, cfg.Mode, cfg.Provider.Preset, cfg.Provider.Cluster, cfg.ClientIP.Source, len(cfg.Policy.Rules), cfg.Policy.OnError)
	return 0
}

func mask(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mask", flag.ContinueOnError)
	fs.SetOutput(stderr)
	v4 := fs.Int("4", anonymize.DefaultMasker.V4Bits, "IPv4 prefix length to keep")
	v6 := fs.Int("6", anonymize.DefaultMasker.V6Bits, "IPv6 prefix length to keep")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	m, err := anonymize.NewMasker(*v4, *v6)
	if err != nil {
		fmt.Fprintf(stderr, "ipveil: %v\n", err)
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: ipveil mask [-4 BITS] [-6 BITS] IP…")
		return 2
	}
	rc := 0
	for i, s := range fs.Args() {
		a, err := anonymize.ParseHostPort(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(stdout, "%s\n", anonymize.Placeholder)
			fmt.Fprintf(stderr, "ipveil: argument %d is not an address: %v\n", i+1, err)
			rc = 1
			continue
		}
		fmt.Fprintln(stdout, m.String(a))
	}
	return rc
}

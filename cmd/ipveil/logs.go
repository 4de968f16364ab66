package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/ipveil/ipveil/anonymize"
)

// Environment variables the key-holding commands read. Keys are never taken
// from flags: command lines end up in shell histories and process lists.
const (
	envPseudonymKeys = "IPVEIL_PSEUDONYM_KEYS"   // id:hex[,id:hex…], first current
	envSealPublic    = "IPVEIL_SEAL_PUBLIC_KEY"  // base64 X25519 public key
	envSealPrivate   = "IPVEIL_SEAL_PRIVATE_KEY" // base64 X25519 private key
)

// maxLine bounds one log line; longer lines are an error, not a silent cut.
const maxLine = 1 << 20

func scrub(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scrub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "mask", "what replaces each address: mask (network/len), pseudonym (keyed ipcrypt, keys in "+envPseudonymKeys+") or seal (HPKE to "+envSealPublic+", key id -id)")
	v4 := fs.Int("4", anonymize.DefaultMasker.V4Bits, "IPv4 prefix length kept by -mode mask")
	v6 := fs.Int("6", anonymize.DefaultMasker.V6Bits, "IPv6 prefix length kept by -mode mask")
	id := fs.String("id", "", "key id recorded in sealed values (-mode seal)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: ipveil scrub [-mode mask|pseudonym|seal] < in.log > out.log")
		return 2
	}
	var replace func(netip.Addr) string
	switch *mode {
	case "mask":
		m, err := anonymize.NewMasker(*v4, *v6)
		if err != nil {
			fmt.Fprintf(stderr, "ipveil: %v\n", err)
			return 2
		}
		replace = m.String
	case "pseudonym":
		p, err := pseudonymizerFromEnv()
		if err != nil {
			fmt.Fprintf(stderr, "ipveil: %v\n", err)
			return 2
		}
		replace = p.Pseudonym
	case "seal":
		if *id == "" {
			fmt.Fprintln(stderr, "ipveil: -mode seal needs -id, the key id to record")
			return 2
		}
		s, err := anonymize.NewSealer(*id, os.Getenv(envSealPublic))
		if err != nil {
			fmt.Fprintf(stderr, "ipveil: %s: %v\n", envSealPublic, err)
			return 2
		}
		var sealErr error
		replace = func(a netip.Addr) string {
			t, err := s.Seal(a)
			if err != nil {
				sealErr = err
				return anonymize.Placeholder
			}
			return t
		}
		defer func() {
			if sealErr != nil {
				fmt.Fprintf(stderr, "ipveil: sealing failed: %v\n", sealErr)
			}
		}()
	default:
		fmt.Fprintf(stderr, "ipveil: -mode must be mask, pseudonym or seal, got %q\n", *mode)
		return 2
	}
	return eachLine(stdin, stdout, stderr, func(line string) string { return anonymize.ScrubText(line, replace) })
}

// eachLine rewrites stdin to stdout line by line, keeping line endings.
func eachLine(stdin io.Reader, stdout, stderr io.Writer, f func(string) string) int {
	r := bufio.NewReaderSize(stdin, 64<<10)
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	n := 0
	for {
		line, err := r.ReadString('\n')
		if len(line) > maxLine {
			fmt.Fprintf(stderr, "ipveil: line %d is longer than %d bytes; nothing more was written\n", n+1, maxLine)
			return 1
		}
		if line != "" {
			n++
			body, nl := strings.CutSuffix(line, "\n")
			w.WriteString(f(body))
			if nl {
				w.WriteByte('\n')
			}
		}
		if err == io.EOF {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "ipveil: reading line %d: %v\n", n+1, err)
			return 1
		}
	}
}

func pseudonymizerFromEnv() (*anonymize.Pseudonymizer, error) {
	v := strings.TrimSpace(os.Getenv(envPseudonymKeys))
	if v == "" {
		return nil, fmt.Errorf("set %s to the pseudonym keys, id:hex[,id:hex…] (the first one current), as in the filter's privacy.pseudonym", envPseudonymKeys)
	}
	p, err := anonymize.ParsePseudonymKeys(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envPseudonymKeys, err)
	}
	return p, nil
}

func pseudonymize(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pseudonymize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reveal := fs.Bool("reveal", false, "turn pseudonyms (id:address) back into addresses")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: ipveil pseudonymize [-reveal] IP…|PSEUDONYM…")
		return 2
	}
	p, err := pseudonymizerFromEnv()
	if err != nil {
		fmt.Fprintf(stderr, "ipveil: %v\n", err)
		return 2
	}
	rc := 0
	for i, s := range fs.Args() {
		if *reveal {
			a, err := p.Reveal(s)
			if err != nil {
				fmt.Fprintf(stderr, "ipveil: argument %d: %v\n", i+1, err)
				rc = 1
				continue
			}
			fmt.Fprintln(stdout, a)
			continue
		}
		a, err := anonymize.ParseHostPort(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(stderr, "ipveil: argument %d is not an address: %v\n", i+1, err)
			rc = 1
			continue
		}
		fmt.Fprintln(stdout, p.Pseudonym(a))
	}
	return rc
}

func keygen(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "key id to record in sealed values, e.g. audit-2026")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *id == "" {
		fmt.Fprintln(stderr, "usage: ipveil keygen -id ID")
		return 2
	}
	pub, priv, err := anonymize.GenerateKeyPair()
	if err != nil {
		fmt.Fprintf(stderr, "ipveil: %v\n", err)
		return 1
	}
	if _, err := anonymize.NewSealer(*id, pub); err != nil {
		fmt.Fprintf(stderr, "ipveil: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "# privacy.seal for the filter configuration (the public key is not a secret):\n")
	fmt.Fprintf(stdout, "\"seal\": {\"key_id\": %q, \"public_key\": %q}\n\n", *id, pub)
	fmt.Fprintf(stdout, "# The private key opens sealed values: keep it offline, never on the proxy.\n")
	fmt.Fprintf(stdout, "%s=%s\n", envSealPrivate, priv)
	return 0
}

func unseal(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("unseal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "key id of the private key (the part of a sealed value before the first '.')")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *id == "" {
		fmt.Fprintln(stderr, "usage: IPVEIL_SEAL_PRIVATE_KEY=… ipveil unseal -id ID [TOKEN…]  (tokens from stdin when none are given)")
		return 2
	}
	o, err := anonymize.NewOpener(*id, os.Getenv(envSealPrivate))
	if err != nil {
		fmt.Fprintf(stderr, "ipveil: %s: %v\n", envSealPrivate, err)
		return 2
	}
	rc := 0
	open := func(n int, tok string) {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			return
		}
		a, err := o.Open(tok)
		if err != nil {
			fmt.Fprintf(stderr, "ipveil: value %d: %v\n", n, err)
			rc = 1
			return
		}
		fmt.Fprintln(stdout, a)
	}
	if fs.NArg() > 0 {
		for i, t := range fs.Args() {
			open(i+1, t)
		}
		return rc
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		open(n, sc.Text())
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "ipveil: reading value %d: %v\n", n+1, err)
		return 1
	}
	return rc
}

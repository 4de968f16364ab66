// Command ipveil-oci packages build/ipveil.wasm as an OCI image for Istio's
// WasmPlugin and Envoy Gateway's EnvoyExtensionPolicy, pushes it, and checks
// what a registry serves:
//
//	ipveil-oci build [-variant compat|oci] [-layout DIR] [-tar FILE] [-tag TAG] MODULE.wasm
//	ipveil-oci push [-layout DIR] [-insecure] IMAGE
//	ipveil-oci verify [-wasm MODULE.wasm] [-insecure] IMAGE
//
// build writes an OCI image layout (default build/oci) and the same layout
// as one tar file (default build/ipveil-oci.tar) and prints the image's
// digest. The same module always gives the same digest; SOURCE_DATE_EPOCH,
// when set, is the timestamp written into the image (default: the Unix
// epoch).
//
// push uploads the layout's image with the credentials of the Docker
// configuration (docker login) and prints registry/repository@sha256:… to
// pin in a WasmPlugin or EnvoyExtensionPolicy.
//
// verify pulls IMAGE, reads the module out of it by the rules Istio and
// Envoy Gateway apply, and with -wasm checks it is byte for byte the given
// module.
//
// Every command exits 0 on success, 1 when it failed and 2 on a usage
// error. See docs/operators.md.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/ipveil/ipveil/internal/oci"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, oci.Remote{})
	stop()
	os.Exit(code)
}

type command struct {
	name, usage string
	run         func(ctx context.Context, args []string, stdout, stderr io.Writer, r oci.Remote) int
}

func commands() []command {
	return []command{
		{"build", "[-variant compat|oci] [-layout DIR] [-tar FILE] [-tag TAG] MODULE.wasm    package a module; prints the digest", build},
		{"push", "[-layout DIR] [-insecure] IMAGE    push the layout's image; prints IMAGE's repository@sha256:… to pin", push},
		{"verify", "[-wasm MODULE.wasm] [-insecure] IMAGE    pull IMAGE and read the module out as Istio and Envoy Gateway do", verify},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, r oci.Remote) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr, r)
		}
	}
	fmt.Fprintf(stderr, "ipveil-oci: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ipveil-oci COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %s %s\n", c.name, c.usage)
	}
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "ipveil-oci: %v\n", err)
	return 1
}

func build(_ context.Context, args []string, stdout, stderr io.Writer, _ oci.Remote) int {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	variant := fs.String("variant", string(oci.Compat), `"compat": one tar+gzip layer holding plugin.wasm; "oci": the two-layer Wasm artifact`)
	dir := fs.String("layout", "build/oci", "OCI image layout directory to (re)create")
	archive := fs.String("tar", "build/ipveil-oci.tar", "also write the layout as this tar file (oci-archive); empty for none")
	tag := fs.String("tag", "latest", "name of the image in the layout's index (org.opencontainers.image.ref.name)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: ipveil-oci build [-variant compat|oci] [-layout DIR] [-tar FILE] [-tag TAG] MODULE.wasm")
		return 2
	}
	v, err := oci.ParseVariant(*variant)
	if err != nil {
		fmt.Fprintf(stderr, "ipveil-oci: %v\n", err)
		return 2
	}
	created, err := sourceDateEpoch()
	if err != nil {
		return fail(stderr, err)
	}
	module, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return fail(stderr, fmt.Errorf("%v (build the module first: make wasm)", err))
	}
	img, err := oci.Build(module, oci.Options{Variant: v, Created: created})
	if err != nil {
		return fail(stderr, err)
	}
	if err := oci.WriteLayout(*dir, img, *tag); err != nil {
		return fail(stderr, err)
	}
	if *archive != "" {
		if err := oci.WriteArchive(*archive, *dir, created); err != nil {
			return fail(stderr, err)
		}
	}
	d, err := img.Digest()
	if err != nil {
		return fail(stderr, err)
	}
	summary, err := oci.Summary(img)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stderr, "%s image of %s (%d bytes, sha256:%s) in %s", v, fs.Arg(0), len(module), sha256Hex(module), *dir)
	if *archive != "" {
		fmt.Fprintf(stderr, " and %s", *archive)
	}
	fmt.Fprintf(stderr, "\n%s", indent(summary))
	fmt.Fprintln(stdout, d.String())
	return 0
}

func push(ctx context.Context, args []string, stdout, stderr io.Writer, r oci.Remote) int {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("layout", "build/oci", "OCI image layout holding the image (written by ipveil-oci build)")
	insecure := fs.Bool("insecure", false, "allow a registry that speaks plain HTTP")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: ipveil-oci push [-layout DIR] [-insecure] IMAGE   (e.g. ghcr.io/acme/ipveil:v1.0.0)")
		return 2
	}
	r.Insecure = r.Insecure || *insecure
	img, err := oci.ReadLayout(*dir)
	if err != nil {
		return fail(stderr, err)
	}
	pinned, err := r.Push(ctx, img, fs.Arg(0))
	if err != nil {
		return fail(stderr, err)
	}
	hexDigest := strings.TrimPrefix(pinned.DigestStr(), "sha256:")
	fmt.Fprintf(stderr, "pushed %s\n  Istio WasmPlugin:            url: oci://%s\n                               sha256: %s\n  Envoy Gateway (image code):  url: %s\n                               sha256: %s\n",
		fs.Arg(0), pinned, hexDigest, pinned, hexDigest)
	fmt.Fprintln(stdout, pinned.String())
	return 0
}

func verify(ctx context.Context, args []string, stdout, stderr io.Writer, r oci.Remote) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wasm := fs.String("wasm", "", "module the image must carry byte for byte (e.g. build/ipveil.wasm)")
	insecure := fs.Bool("insecure", false, "allow a registry that speaks plain HTTP")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: ipveil-oci verify [-wasm MODULE.wasm] [-insecure] IMAGE")
		return 2
	}
	r.Insecure = r.Insecure || *insecure
	img, err := r.Pull(ctx, fs.Arg(0))
	if err != nil {
		return fail(stderr, err)
	}
	module, variant, err := oci.Extract(img)
	if err != nil {
		return fail(stderr, fmt.Errorf("%s: %w", fs.Arg(0), err))
	}
	d, err := img.Digest()
	if err != nil {
		return fail(stderr, err)
	}
	if *wasm != "" {
		want, err := os.ReadFile(*wasm)
		if err != nil {
			return fail(stderr, err)
		}
		if !bytes.Equal(module, want) {
			return fail(stderr, fmt.Errorf("%s carries a module of %d bytes (sha256:%s) that is not %s (%d bytes, sha256:%s): push the current build again",
				fs.Arg(0), len(module), sha256Hex(module), *wasm, len(want), sha256Hex(want)))
		}
	}
	fmt.Fprintf(stdout, "%s: %s image %s with a module of %d bytes (sha256:%s)", fs.Arg(0), variant, d, len(module), sha256Hex(module))
	if *wasm != "" {
		fmt.Fprintf(stdout, ", identical to %s", *wasm)
	}
	fmt.Fprintln(stdout)
	return 0
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH (seconds since 1970), the
// reproducible-builds convention for a fixed build time. Unset means the
// epoch itself.
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want whole seconds since 1970 (e.g. $(git log -1 --format=%%ct)), or unset it", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func indent(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString("  ")
		b.WriteString(line)
	}
	return b.String()
}

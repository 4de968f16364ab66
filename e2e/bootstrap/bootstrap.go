// Package bootstrap reads the Envoy v3 bootstrap file (envoy.yaml) that both a
// real Envoy and ipveil's development proxy (devproxy) run, and extracts the
// part of it that the local stack supports.
//
// The file is decoded with Envoy's own protobuf types (go-control-plane), so
// it is checked the way Envoy checks it: unknown fields and unknown
// typed_config types are errors, and every message — the bootstrap and each
// typed config inside it — must pass Envoy's validation rules. On top of that,
// anything devproxy would not honour is an error that names the field, rather
// than being silently ignored: a stack that behaves differently from the file
// it was given would make every test result suspect.
//
// The supported subset is one listener with one filter chain holding the HTTP
// connection manager; an inline route table of prefix routes; HTTP filters
// envoy.filters.http.wasm (local code only) and envoy.filters.http.router
// (last); file, stdout and stderr access logs with a text format; STATIC and
// STRICT_DNS clusters whose endpoints are on loopback; and an admin address.
//
// Access-log formats are compiled here too (see CompileFormat), with Envoy's
// command-operator semantics. A format that would write a raw client address
// (%DOWNSTREAM_REMOTE_ADDRESS%, %REQ(X-FORWARDED-FOR)% and the like) is
// refused: ipveil's promise is that no client IP is written anywhere it could
// persist, and the stack that demonstrates it must not break it.
package bootstrap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the part of an Envoy bootstrap that devproxy runs.
type Config struct {
	// Admin is the admin interface, or nil when the bootstrap has no admin
	// block.
	Admin *Admin
	// Listener is the single listener.
	Listener Listener
	// Clusters holds every static cluster by name.
	Clusters map[string]*Cluster
}

// Admin is Envoy's admin interface.
type Admin struct {
	// Address is host:port from admin.address.socket_address, e.g.
	// "127.0.0.1:9901".
	Address string
}

// Listener is the one listener and its HTTP connection manager.
type Listener struct {
	// Name is the listener's name.
	Name string
	// Address is host:port from address.socket_address, e.g.
	// "127.0.0.1:10000". Port 0 asks for any free port.
	Address string
	// StatPrefix is the connection manager's stat_prefix.
	StatPrefix string
	// UseRemoteAddress is the connection manager's use_remote_address.
	UseRemoteAddress bool
	// XFFNumTrustedHops is the connection manager's xff_num_trusted_hops.
	// With UseRemoteAddress set, Envoy takes the client address from the
	// Nth X-Forwarded-For entry counted from the right (N = XFFNumTrustedHops)
	// and falls back to the connection's peer when the header has fewer
	// entries; with 0 it always uses the peer.
	XFFNumTrustedHops uint32
	// Routes lists the routes of every virtual host, in file order. Each
	// route carries its virtual host's domains.
	Routes []Route
	// Wasm lists the envoy.filters.http.wasm filters in chain order.
	Wasm []WasmFilter
	// AccessLogs lists the connection manager's access logs in file order.
	AccessLogs []*AccessLog
}

// Route is one prefix route to a cluster.
type Route struct {
	// Domains are the domains of the route's virtual host ("*" matches all).
	Domains []string
	// Prefix is match.prefix.
	Prefix string
	// Cluster is route.cluster; it names an entry of Config.Clusters.
	Cluster string
	// Timeout is route.timeout: Envoy's default of 15 s when unset, and 0
	// when set to 0, which means no timeout.
	Timeout time.Duration
}

// DefaultRouteTimeout is the upstream timeout Envoy applies to a route that
// sets none.
const DefaultRouteTimeout = 15 * time.Second

// DefaultConnectTimeout is the connect timeout Envoy applies to a cluster that
// sets none.
const DefaultConnectTimeout = 5 * time.Second

// WasmFilter is one envoy.filters.http.wasm filter.
type WasmFilter struct {
	// Name is config.name, the plugin's name.
	Name string
	// RootID is config.root_id.
	RootID string
	// VMID is config.vm_config.vm_id.
	VMID string
	// CodePath is config.vm_config.code.local.filename, made absolute
	// against the bootstrap file's directory.
	CodePath string
	// Configuration is config.configuration: the value of a StringValue or
	// BytesValue, or the JSON of a Struct. It is what the plugin reads in
	// proxy_on_configure.
	Configuration []byte
	// VMConfiguration is config.vm_config.configuration, decoded the same
	// way, or nil.
	VMConfiguration []byte
	// Env is the VM's environment: vm_config.environment_variables.key_values
	// plus each of host_env_keys that is set in this process's environment
	// (an unset host key is left out).
	Env map[string]string
	// FailOpen reports whether a failed VM lets requests through instead of
	// answering 503: failure_policy FAIL_OPEN, or the deprecated fail_open
	// flag (Envoy 1.39 and 1.40 accept one or the other, not both).
	FailOpen bool
	// AllowOnHeadersStopIteration is allow_on_headers_stop_iteration: a
	// filter that stops iteration in its request-headers callback still
	// receives the body (Envoy's default turns that stop into
	// StopAllIterationAndWatermark, which holds the body back too).
	AllowOnHeadersStopIteration bool
}

// Cluster is one static upstream cluster.
type Cluster struct {
	// Name is the cluster's name.
	Name string
	// Type is "STATIC" or "STRICT_DNS".
	Type string
	// Endpoints are the host:port of every endpoint, in file order. All are
	// on loopback: an IP in 127.0.0.0/8 or ::1, or "localhost" for
	// STRICT_DNS.
	Endpoints []string
	// ConnectTimeout is connect_timeout, or Envoy's default of 5 s.
	ConnectTimeout time.Duration
}

// AccessLog is one access log of the connection manager.
type AccessLog struct {
	// Path is where lines go: the file logger's path (absolute), or
	// "/dev/stdout" / "/dev/stderr" for the stdout / stderr loggers.
	Path string
	// Format renders one line per request.
	Format *Format
}

// Load reads and checks the bootstrap file at path. Relative paths inside it
// (the Wasm code file, access-log files) are resolved against the file's
// directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Envoy bootstrap: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read Envoy bootstrap: %w", err)
	}
	cfg, err := Parse(data, filepath.Dir(abs))
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.File = path
			return nil, e
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes and checks an Envoy v3 bootstrap in YAML or JSON. Relative
// paths inside it are resolved against baseDir. The error, when not nil, is
// an *Error listing every problem found.
func Parse(data []byte, baseDir string) (*Config, error) {
	bs, errs := decode(data)
	if errs.len() > 0 {
		return nil, errs.err()
	}
	x := &extractor{baseDir: baseDir, errs: errs}
	cfg := x.bootstrap(bs)
	if errs.len() > 0 {
		return nil, errs.err()
	}
	return cfg, nil
}

// Problem is one thing wrong with a bootstrap, at one field path.
type Problem struct {
	// Path names the field in the bootstrap, e.g.
	// "static_resources.clusters[1].type". Empty means the whole file.
	Path string
	// Msg says what is wrong and what to do about it.
	Msg string
}

// String formats the problem as "path: message".
func (p Problem) String() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// Error is returned by Load and Parse for a bootstrap that Envoy would reject
// or that devproxy cannot run as written. It lists every problem found.
type Error struct {
	// File is the bootstrap's path when it was read by Load.
	File string
	// Problems lists every problem, in the order found.
	Problems []Problem
}

// Error lists every problem, one per line.
func (e *Error) Error() string {
	var b strings.Builder
	name := e.File
	if name == "" {
		name = "Envoy bootstrap"
	}
	if len(e.Problems) == 1 {
		return name + ": " + e.Problems[0].String()
	}
	fmt.Fprintf(&b, "%s: %d problems:", name, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

type problems struct{ list []Problem }

func (p *problems) addf(path, format string, args ...any) {
	p.list = append(p.list, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) len() int { return len(p.list) }

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &Error{Problems: append([]Problem(nil), p.list...)}
}

// Package devproxy is a development and test HTTP/1.1 proxy that runs an
// Envoy v3 bootstrap (the subset e2e/bootstrap accepts) with its Wasm HTTP
// filters on the e2e host. It is NOT a production proxy: it exists so that
// ipveil's compiled module can be exercised end to end on machines without
// Envoy, with Envoy's semantics where they matter to a filter — the
// connection manager's X-Forwarded-For handling and trusted client address
// (source.address), x-request-id and x-envoy-* sanitation, filters on
// request and response headers and bodies (local replies included), prefix
// routing to round-robin clusters, Envoy's local replies and response
// flags, access logs rendered after proxy_on_log, and an admin interface
// with /stats, /stats/prometheus, /ready and /quitquitquit.
//
// Bodies go through the filters as they arrive, in chunks of up to 64 KiB
// (each a data frame), and a request goes upstream as soon as its headers
// passed every filter — as Envoy's router sends them — with its body
// streamed as the filters release it; a local reply from a body callback
// then aborts that upstream request. A filter that buffers more than the
// buffer limit (Options.BufferLimit, 1 MiB) gets the request answered 413
// Payload Too Large, and devproxy reads no more of it.
//
// Use it in-process:
//
//	p, err := devproxy.New(cfg, devproxy.Options{ListenAddr: "127.0.0.1:0"})
//	err = p.Start(ctx)
//	resp, err := http.Get("http://" + p.Addr() + "/")
//	p.Close()
//
// or run e2e/cmd/devproxy -c envoy.yaml.
package devproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipveil/ipveil/e2e/bootstrap"
	"github.com/ipveil/ipveil/e2e/host"
)

// Options adjust how the bootstrap is run.
type Options struct {
	// Workers is the number of Wasm VMs per filter (Envoy --concurrency).
	// Default 2.
	Workers int
	// CacheDir holds wazero's compilation cache; empty keeps it in memory.
	CacheDir string
	// Logger receives the proxy's and the modules' log lines; nil means
	// os.Stderr.
	Logger io.Writer
	// LogLevel is the log level; default info.
	LogLevel host.LogLevel
	// AccessLog, when set, receives every access-log line instead of the
	// paths the bootstrap names.
	AccessLog io.Writer
	// ListenAddr overrides the listener's address, e.g. "127.0.0.1:0".
	ListenAddr string
	// AdminAddr overrides the admin address; "-" disables the admin
	// interface.
	AdminAddr string
	// Modules overrides the Wasm code of filters by filter name, instead of
	// reading vm_config.code.local.filename.
	Modules map[string][]byte
	// OnCall is passed to every host (see host.Config.OnCall).
	OnCall func(worker int, callback string, d time.Duration)
	// DrainTimeout is how long Close waits for requests in flight before
	// dropping their connections. Default 10 s.
	DrainTimeout time.Duration
	// BufferLimit is the listener's per_connection_buffer_limit_bytes: the
	// most body a filter may buffer per stream before the request is
	// answered 413 (see host.Config.BufferLimit). 0 means Envoy's default,
	// 1 MiB. The bootstrap loader does not read the field yet: set it here.
	BufferLimit int
	// AllowOnHeadersStopIteration names Wasm filters (by filter name) to
	// run as with Envoy's allow_on_headers_stop_iteration: true (see
	// host.Plugin.AllowOnHeadersStopIteration), in addition to those whose
	// PluginConfig sets it in the bootstrap.
	AllowOnHeadersStopIteration map[string]bool
}

// Proxy runs one bootstrap.
type Proxy struct {
	cfg   *bootstrap.Config
	opts  Options
	store *host.Store
	hosts []*host.Host
	stats *stats

	logMu  sync.Mutex
	logger io.Writer
	logs   []accessLog

	clusters map[string]*cluster
	client   *http.Client

	ln, adminLn  net.Listener
	srv, admin   *http.Server
	quit         chan struct{}
	quitOnce     sync.Once
	closeOnce    sync.Once
	inflight     sync.WaitGroup
	shuttingDown atomic.Bool
	nextConn     atomic.Uint64
}

type accessLog struct {
	mu     *sync.Mutex
	w      io.Writer
	format *bootstrap.Format
	closer io.Closer
}

type cluster struct {
	c    *bootstrap.Cluster
	next atomic.Uint64
}

// New prepares the proxy: it starts every Wasm plugin (so a plugin that
// refuses its configuration fails here, with the module's log lines, as
// Envoy refuses the listener) and opens the access logs. Start serves.
func New(cfg *bootstrap.Config, opts Options) (*Proxy, error) {
	if cfg == nil {
		return nil, errors.New("devproxy: no bootstrap configuration: load one with bootstrap.Load")
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	p := &Proxy{cfg: cfg, opts: opts, store: host.NewStore(), logger: opts.Logger, quit: make(chan struct{}), clusters: map[string]*cluster{}}
	if p.logger == nil {
		p.logger = os.Stderr
	}
	p.stats = newStats(cfg)
	for name, c := range cfg.Clusters {
		p.clusters[name] = &cluster{c: c}
	}
	p.client = &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         p.dial,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     60 * time.Second,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for i, wf := range cfg.Listener.Wasm {
		code, ok := opts.Modules[wf.Name]
		if !ok {
			var err error
			code, err = os.ReadFile(wf.CodePath)
			if err != nil {
				p.closeHosts()
				return nil, fmt.Errorf("devproxy: reading the code of Wasm filter %q (vm_config.code.local.filename): %w; build it first (make wasm)", wf.Name, err)
			}
		}
		h, err := host.New(context.Background(), host.Config{
			Module:   code,
			CacheDir: opts.CacheDir,
			Plugin: host.Plugin{
				Name: wf.Name, RootID: wf.RootID, VMID: wf.VMID,
				Configuration: wf.Configuration, VMConfiguration: wf.VMConfiguration,
				Env: wf.Env, FailOpen: wf.FailOpen,
				AllowOnHeadersStopIteration: wf.AllowOnHeadersStopIteration || opts.AllowOnHeadersStopIteration[wf.Name],
			},
			BufferLimit: opts.BufferLimit,
			Workers:     opts.Workers,
			Clusters:    func(name string) bool { _, ok := cfg.Clusters[name]; return ok },
			Callout:     p.callout,
			Logger:      p.logger,
			LogLevel:    opts.LogLevel,
			Store:       p.store,
			OnCall:      opts.OnCall,
		})
		if err != nil {
			p.closeHosts()
			return nil, fmt.Errorf("devproxy: Wasm filter %d (%q) failed to start, so the listener is refused: %w", i, wf.Name, err)
		}
		p.hosts = append(p.hosts, h)
	}
	if err := p.openAccessLogs(); err != nil {
		p.closeHosts()
		return nil, err
	}
	return p, nil
}

func (p *Proxy) openAccessLogs() error {
	files := map[string]*accessLog{}
	for _, al := range p.cfg.Listener.AccessLogs {
		if p.opts.AccessLog != nil {
			p.logs = append(p.logs, accessLog{mu: &p.logMu, w: p.opts.AccessLog, format: al.Format})
			continue
		}
		switch al.Path {
		case "/dev/stdout":
			p.logs = append(p.logs, accessLog{mu: &sync.Mutex{}, w: os.Stdout, format: al.Format})
			continue
		case "/dev/stderr":
			p.logs = append(p.logs, accessLog{mu: &sync.Mutex{}, w: os.Stderr, format: al.Format})
			continue
		}
		if prev, ok := files[al.Path]; ok {
			p.logs = append(p.logs, accessLog{mu: prev.mu, w: prev.w, format: al.Format})
			continue
		}
		f, err := os.OpenFile(al.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			p.closeAccessLogs()
			return fmt.Errorf("devproxy: opening access log %s: %w", al.Path, err)
		}
		l := accessLog{mu: &sync.Mutex{}, w: f, format: al.Format, closer: f}
		files[al.Path] = &l
		p.logs = append(p.logs, l)
	}
	return nil
}

func (p *Proxy) closeAccessLogs() {
	for _, l := range p.logs {
		if l.closer != nil {
			l.closer.Close()
		}
	}
}

func (p *Proxy) closeHosts() {
	for _, h := range p.hosts {
		h.Close()
	}
}

// Hosts returns the host of each Wasm filter, in filter chain order.
func (p *Proxy) Hosts() []*host.Host { return p.hosts }

// Store returns the process-wide shared data, queues and metrics.
func (p *Proxy) Store() *host.Store { return p.store }

// Start binds the listener and the admin interface and serves until Close.
func (p *Proxy) Start(ctx context.Context) error {
	addr := p.cfg.Listener.Address
	if p.opts.ListenAddr != "" {
		addr = p.opts.ListenAddr
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("devproxy: listening on %s (listener %q): %w", addr, p.cfg.Listener.Name, err)
	}
	p.ln = ln
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 30 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connIDKey{}, p.nextConn.Add(1))
		}}
	adminAddr := ""
	if p.cfg.Admin != nil {
		adminAddr = p.cfg.Admin.Address
	}
	if p.opts.AdminAddr != "" {
		adminAddr = p.opts.AdminAddr
	}
	if adminAddr != "" && adminAddr != "-" {
		aln, err := lc.Listen(ctx, "tcp", adminAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("devproxy: admin interface on %s: %w", adminAddr, err)
		}
		p.adminLn = aln
		p.admin = &http.Server{Handler: p.adminHandler(), ReadHeaderTimeout: 30 * time.Second}
		go p.admin.Serve(aln)
	}
	go p.srv.Serve(ln)
	p.logf("devproxy (a development proxy, not for production) listening on %s, admin %s, %d Wasm filter(s), %d worker(s)",
		p.Addr(), orDash(p.AdminAddr()), len(p.hosts), p.opts.Workers)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Addr returns the listener's address once started.
func (p *Proxy) Addr() string {
	if p.ln == nil {
		return ""
	}
	return p.ln.Addr().String()
}

// AdminAddr returns the admin interface's address, or "" when there is
// none.
func (p *Proxy) AdminAddr() string {
	if p.adminLn == nil {
		return ""
	}
	return p.adminLn.Addr().String()
}

// Done is closed when the admin interface received /quitquitquit.
func (p *Proxy) Done() <-chan struct{} { return p.quit }

// Close stops serving, waits for requests in flight (up to
// Options.DrainTimeout, then drops their connections), shuts the plugins down and closes the access logs.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.shuttingDown.Store(true)
		drain := p.opts.DrainTimeout
		if drain <= 0 {
			drain = 10 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		if p.srv != nil {
			if p.srv.Shutdown(ctx) != nil {
				p.srv.Close() // requests still paused: drop their connections
			}
		}
		if p.admin != nil {
			p.admin.Shutdown(ctx)
		}
		// Closing the hosts answers streams still paused in a filter, so
		// their handlers return.
		p.closeHosts()
		p.inflight.Wait()
		p.closeAccessLogs()
		if t, ok := p.client.Transport.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
		p.quitOnce.Do(func() { close(p.quit) })
	})
	return nil
}

func (p *Proxy) logf(format string, args ...any) { p.logAt(host.LogInfo, format, args...) }

func (p *Proxy) debugf(format string, args ...any) { p.logAt(host.LogDebug, format, args...) }

func (p *Proxy) logAt(level host.LogLevel, format string, args ...any) {
	min := p.opts.LogLevel
	if min == 0 {
		min = host.LogInfo
	}
	if level < min {
		return
	}
	line := time.Now().Format("[2006-01-02 15:04:05.000]") + "[main][devproxy][" + level.String() + "] " + fmt.Sprintf(format, args...) + "\n"
	p.logMu.Lock()
	io.WriteString(p.logger, line)
	p.logMu.Unlock()
}

// dial connects to a cluster endpoint; the address is already host:port.
func (p *Proxy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	timeout := bootstrap.DefaultConnectTimeout
	if c, ok := ctx.Value(connectTimeoutKey{}).(time.Duration); ok && c > 0 {
		timeout = c
	}
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, network, addr)
}

type connectTimeoutKey struct{}

type connIDKey struct{}

// endpoint picks the cluster's next endpoint, round robin.
func (c *cluster) endpoint() (string, bool) {
	if len(c.c.Endpoints) == 0 {
		return "", false
	}
	i := c.next.Add(1) - 1
	return c.c.Endpoints[i%uint64(len(c.c.Endpoints))], true
}

// callout performs a module's HTTP call to a cluster.
func (p *Proxy) callout(ctx context.Context, req *host.CalloutRequest) (*host.CalloutResponse, error) {
	c := p.clusters[req.Cluster]
	if c == nil {
		return nil, host.ErrUnknownCluster
	}
	ep, ok := c.endpoint()
	if !ok {
		return nil, host.ErrUnknownCluster
	}
	hl := headerList(req.Headers)
	method, _ := hl.get(":method")
	path, _ := hl.get(":path")
	authority, _ := hl.get(":authority")
	ctx = context.WithValue(ctx, connectTimeoutKey{}, c.c.ConnectTimeout)
	r, err := http.NewRequestWithContext(ctx, method, "http://"+ep+path, bytesReader(req.Body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", host.ErrCalloutReset, err)
	}
	r.Host = authority
	for _, kv := range req.Headers {
		if strings.HasPrefix(kv[0], ":") || kv[0] == "content-length" || kv[0] == "host" {
			continue
		}
		r.Header.Add(kv[0], kv[1])
	}
	r.ContentLength = int64(len(req.Body))
	p.stats.inc("cluster." + req.Cluster + ".upstream_rq_total")
	resp, err := p.client.Do(r)
	if err != nil {
		if ctx.Err() != nil {
			p.stats.inc("cluster." + req.Cluster + ".upstream_rq_timeout")
			return nil, ctx.Err()
		}
		p.stats.inc("cluster." + req.Cluster + ".upstream_cx_connect_fail")
		return nil, fmt.Errorf("%w: %v", host.ErrConnectFailure, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", host.ErrCalloutReset, err)
	}
	p.stats.responseCode("cluster."+req.Cluster+".upstream_rq", resp.StatusCode)
	out := &host.CalloutResponse{Headers: responsePairs(resp), Body: body}
	for k, vs := range resp.Trailer {
		for _, v := range vs {
			out.Trailers = append(out.Trailers, [2]string{strings.ToLower(k), v})
		}
	}
	return out, nil
}

type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) Read(p []byte) (int, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.i:])
	r.i += n
	return n, nil
}

func bytesReader(b []byte) io.Reader {
	if len(b) == 0 {
		return http.NoBody
	}
	return &byteReader{b: b}
}

var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true,
	"upgrade": true, "te": true, "trailer": true,
}

func responsePairs(resp *http.Response) [][2]string {
	out := [][2]string{{":status", strconv.Itoa(resp.StatusCode)}}
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		if hopByHop[lk] {
			continue
		}
		for _, v := range resp.Header[k] {
			out = append(out, [2]string{lk, v})
		}
	}
	if resp.ContentLength >= 0 {
		if _, ok := headerList(out).get("content-length"); !ok {
			out = append(out, [2]string{"content-length", strconv.FormatInt(resp.ContentLength, 10)})
		}
	}
	return out
}

func peerAddr(s string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Package stack starts the local stack in-process for tests and benchmarks:
// the root envoy.yaml run by devproxy with the compiled build/ipveil.wasm,
// the mock reputation API with the demo fixtures, and the echo upstream, all
// on free loopback ports. It is the same stack `make run` starts, wired for
// programs that need to look inside it: mock call counts, the access log,
// the proxy's log, metrics and shared data.
package stack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipveil/ipveil/e2e/bootstrap"
	"github.com/ipveil/ipveil/e2e/devproxy"
	"github.com/ipveil/ipveil/e2e/echo"
	"github.com/ipveil/ipveil/e2e/host"
	"github.com/ipveil/ipveil/e2e/internal/wasmtest"
	"github.com/ipveil/ipveil/e2e/mockrep"
)

// Options adjust the stack.
type Options struct {
	// Config replaces the plugin configuration of envoy.yaml (JSON).
	Config string
	// Workers is the number of Wasm VMs (default 2).
	Workers int
	// Module replaces build/ipveil.wasm (for example the null module).
	Module wasmtest.Module
	// NoFilter runs the bootstrap without its Wasm filter.
	NoFilter bool
	// Fixtures replaces the demo fixtures.
	Fixtures map[string]mockrep.Fixture
	// Env adds to the VM environment of envoy.yaml (vm_config
	// environment_variables).
	Env map[string]string
	// AccessLogFormat replaces the access-log format of envoy.yaml.
	AccessLogFormat string
	// Clusters adds STATIC loopback clusters to the bootstrap, by name and
	// address (a mock CAPTCHA provider, say).
	Clusters map[string]string
	// LogLevel is devproxy's log level (default info); trace shows every
	// module log line.
	LogLevel host.LogLevel
}

// Callout is a request the reputation API received from the filter.
type Callout struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// Stack is a running local stack.
type Stack struct {
	// URL is the proxy's base URL, e.g. http://127.0.0.1:41234.
	URL string
	// AdminURL is devproxy's admin interface.
	AdminURL string
	// Proxy is the running devproxy.
	Proxy *devproxy.Proxy
	// Mock is the reputation API; its Calls count lookups per IP.
	Mock *mockrep.Server
	// AccessLog holds every access-log line; Log every proxy and module
	// log line.
	AccessLog, Log *Buffer
	// Client sends requests to the proxy (no redirects followed).
	Client *http.Client

	closers []func()

	cmu      sync.Mutex
	callouts []Callout
}

// Callouts returns every request the reputation API has received.
func (s *Stack) Callouts() []Callout {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return append([]Callout(nil), s.callouts...)
}

// Start runs the stack until the test ends.
func Start(tb testing.TB, o Options) *Stack {
	tb.Helper()
	s, err := start(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

func start(o Options) (*Stack, error) {
	root := wasmtest.Root()
	cfg, err := bootstrap.Load(filepath.Join(root, "envoy.yaml"))
	if err != nil {
		return nil, err
	}
	fixtures := o.Fixtures
	if fixtures == nil {
		if fixtures, err = mockrep.LoadFixtures(filepath.Join(root, "e2e", "testdata", "fixtures.json")); err != nil {
			return nil, err
		}
	}
	s := &Stack{
		Mock:      mockrep.New(fixtures, mockrep.Options{APIKeyHeader: "x-api-key", APIKey: "demo-key"}),
		AccessLog: &Buffer{},
		Log:       &Buffer{},
		Client: &http.Client{
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
		},
	}
	mockL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mockSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/_") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			s.cmu.Lock()
			s.callouts = append(s.callouts, Callout{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body})
			s.cmu.Unlock()
		}
		s.Mock.ServeHTTP(w, r)
	})}
	go mockSrv.Serve(mockL)
	echoL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	echoSrv := &echo.Server{}
	go echoSrv.Serve(echoL)
	s.closers = append(s.closers, func() { mockSrv.Close(); echoSrv.Close() })

	if c, ok := cfg.Clusters["reputation"]; ok {
		c.Endpoints = []string{mockL.Addr().String()}
	}
	if c, ok := cfg.Clusters["app"]; ok {
		c.Endpoints = []string{echoL.Addr().String()}
	}
	for name, addr := range o.Clusters {
		cfg.Clusters[name] = &bootstrap.Cluster{Name: name, Type: "STATIC", Endpoints: []string{addr}, ConnectTimeout: time.Second}
	}
	if o.AccessLogFormat != "" {
		f, err := bootstrap.CompileFormat(o.AccessLogFormat)
		if err != nil {
			return nil, err
		}
		for _, al := range cfg.Listener.AccessLogs {
			al.Format = f
		}
	}
	if o.NoFilter {
		cfg.Listener.Wasm = nil
	}
	mod := o.Module
	if mod == "" {
		mod = wasmtest.Ipveil
	}
	modules := map[string][]byte{}
	for i := range cfg.Listener.Wasm {
		w := &cfg.Listener.Wasm[i]
		if o.Config != "" {
			w.Configuration = []byte(o.Config)
		}
		if len(o.Env) > 0 {
			env := map[string]string{}
			for k, v := range w.Env {
				env[k] = v
			}
			for k, v := range o.Env {
				env[k] = v
			}
			w.Env = env
		}
		code, err := wasmtest.Bytes(mod)
		if err != nil {
			return nil, err
		}
		modules[w.Name] = code
	}
	p, err := devproxy.New(cfg, devproxy.Options{
		Workers:    o.Workers,
		CacheDir:   wasmtest.CacheDir(),
		Logger:     s.Log,
		LogLevel:   o.LogLevel,
		AccessLog:  s.AccessLog,
		ListenAddr: "127.0.0.1:0",
		AdminAddr:  "127.0.0.1:0",
		Modules:    modules,
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("devproxy: %w\n%s", err, s.Log.String())
	}
	if err := p.Start(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("devproxy start: %w\n%s", err, s.Log.String())
	}
	s.Proxy = p
	s.closers = append(s.closers, func() { p.Close() })
	s.URL = "http://" + p.Addr()
	s.AdminURL = "http://" + p.AdminAddr()
	return s, nil
}

// Close stops everything the stack started.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// Get sends GET path with extra headers (name, value pairs).
func (s *Stack) Get(path string, hdr ...string) (*http.Response, string, error) {
	req, err := http.NewRequest("GET", s.URL+path, nil)
	if err != nil {
		return nil, "", err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp, b.String(), err
}

// Buffer is a concurrency-safe line buffer.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the lines written so far.
func (b *Buffer) Lines() []string {
	s := strings.TrimRight(b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// WaitFor polls until cond holds or the deadline passes (a hang guard, not a
// timing assertion), reporting whether it held.
func WaitFor(deadline time.Duration, cond func() bool) bool {
	end := time.Now().Add(deadline)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

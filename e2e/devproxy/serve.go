package devproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ipveil/ipveil/e2e/bootstrap"
	"github.com/ipveil/ipveil/e2e/host"
)

// exchange is what one request leaves for the access log and stats.
type exchange struct {
	start    time.Time
	req      headerList
	resp     headerList
	status   int
	flags    string
	upstream string
	bytesIn  int64
	bytesOut int64
	streams  []*host.Stream
	protocol string
}

type countingReader struct {
	r io.ReadCloser
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

func (c countingReader) Close() error { return c.r.Close() }

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.inflight.Add(1)
	defer p.inflight.Done()
	x := &exchange{start: time.Now(), protocol: r.Proto}
	prefix := "http." + p.cfg.Listener.StatPrefix + "."
	p.stats.inc(prefix + "downstream_rq_total")
	defer p.finish(x)

	peer := peerAddr(r.RemoteAddr)
	var local netip.AddrPort
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		local = peerAddr(a.String())
	}
	hl := requestPairs(r)
	hl, client := mutateRequest(hl, peer, local, p.cfg.Listener.UseRemoteAddress, p.cfg.Listener.XFFNumTrustedHops)
	x.req = hl

	r.Body = countingReader{r: r.Body, n: &x.bytesIn}
	connID, _ := r.Context().Value(connIDKey{}).(uint64)
	props := host.Props{SourceAddress: client, DestinationAddress: local, ConnectionID: connID, Protocol: r.Proto, StartTime: x.start}
	x.streams = make([]*host.Stream, len(p.hosts))
	for i, h := range p.hosts {
		x.streams[i] = h.NewStream(props)
	}
	// Envoy signals a bodiless request by ending the stream with its headers.
	hasBody := r.Body != nil && (r.ContentLength > 0 || len(r.TransferEncoding) > 0)
	ctx := r.Context()

	// The decoder filters, then the router.
	up := &upstream{p: p, ctx: ctx, x: x}
	c := newChain(ctx, x.streams, false)
	c.passed = func(h headerList) { x.req = h }
	c.sinkHeaders = up.headers
	c.sinkData = up.data
	if c.pushHeaders(0, hl, !hasBody) && hasBody {
		// The body, as it arrives, through the filters to the upstream.
		err := readChunks(r.Body, func(b []byte, eos bool) bool { return c.pushData(0, b, eos) })
		if err != nil && !c.ended() {
			c.err = err // the client went away in the middle of its body
		}
	}
	var resp *http.Response
	lr := c.local
	switch {
	case c.reset:
		up.abort()
		x.flags = joinFlags(x.flags, "DR")
		panic(http.ErrAbortHandler)
	case c.err != nil:
		up.abort()
		x.flags = joinFlags(x.flags, "DC") // the client went away (or the proxy is closing)
		return
	case lr != nil:
		up.abort()
		if lr.Details == "request_payload_too_large" {
			p.stats.inc(prefix + "downstream_rq_too_large")
		}
	default:
		var cancel context.CancelFunc
		resp, lr, cancel = up.response()
		if cancel != nil {
			defer cancel()
		}
		if resp == nil && lr == nil {
			x.flags = joinFlags(x.flags, "DC")
			return
		}
	}
	p.respond(ctx, w, x, resp, lr)
}

// respond runs the encoder filters (in reverse chain order, on upstream
// responses and local replies alike) and writes the response.
func (p *Proxy) respond(ctx context.Context, w http.ResponseWriter, x *exchange, resp *http.Response, lr *host.LocalResponse) {
	if resp != nil {
		defer resp.Body.Close()
	}
	var rh headerList
	var body io.Reader
	eos := false
	if lr != nil {
		rh = lr.ResponseHeaders()
		body, eos = bytesReader(lr.Body), len(lr.Body) == 0
	} else {
		rh = responsePairs(resp)
		rh = append(rh, [2]string{"x-envoy-upstream-service-time", strconv.FormatInt(time.Since(x.start).Milliseconds(), 10)})
		body, eos = resp.Body, resp.ContentLength == 0 || resp.Body == http.NoBody
	}
	c := newChain(ctx, x.streams, true)
	sent := false // response headers went to the client
	c.sinkHeaders = func(h headerList, _ bool) (*host.LocalResponse, bool) {
		p.writeHeaders(w, x, h)
		sent = true
		return nil, true
	}
	c.sinkData = func(b []byte, eos bool) bool {
		if len(b) > 0 {
			if _, err := w.Write(b); err != nil {
				return false // the client went away
			}
			x.bytesOut += int64(len(b))
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		return true
	}
	var readErr error
	if c.pushHeaders(0, rh, eos) && !eos {
		readErr = readChunks(body, func(b []byte, eos bool) bool { return c.pushData(0, b, eos) })
	}
	switch {
	case c.reset:
		x.flags = joinFlags(x.flags, "DR")
		panic(http.ErrAbortHandler)
	case c.err != nil:
		return // the client went away
	case c.local != nil && sent:
		// A filter answered after the response started: Envoy can only
		// reset the stream.
		panic(http.ErrAbortHandler)
	case c.local != nil:
		// A filter replaced the response; the filters before it in the
		// encoding order do not see the replacement.
		lr := c.local
		p.writeHeaders(w, x, lr.ResponseHeaders())
		n, _ := w.Write(lr.Body)
		x.bytesOut += int64(n)
		return
	}
	if readErr != nil && ctx.Err() == nil && lr == nil {
		x.flags = joinFlags(x.flags, "UPE")
		panic(http.ErrAbortHandler)
	}
}

// writeHeaders sends the response headers to the client.
func (p *Proxy) writeHeaders(w http.ResponseWriter, x *exchange, rh headerList) {
	x.resp = rh
	status := 200
	if v, ok := rh.get(":status"); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 100 && n <= 999 {
			status = n
		}
	}
	hdr := w.Header()
	for _, kv := range rh {
		if strings.HasPrefix(kv[0], ":") || hopByHop[kv[0]] || kv[0] == "server" || kv[0] == "date" {
			continue
		}
		hdr.Add(kv[0], kv[1])
	}
	hdr.Set("Server", "envoy")
	x.status = status
	w.WriteHeader(status)
}

func joinFlags(a, b string) string {
	if a == "" {
		return b
	}
	return a + "," + b
}

// upstream is the router at the end of the decoder filters. A request
// without a body is sent once its headers passed every filter. A request
// with a body is sent as soon as its headers passed, as Envoy's router does,
// with the body streamed as the filters release it; a later local reply or
// reset aborts it.
type upstream struct {
	p   *Proxy
	ctx context.Context
	x   *exchange

	hdrs    headerList // the headers the upstream gets
	reached bool       // the headers passed every filter

	// A request with a body, sent while the body goes through the filters.
	pw      *io.PipeWriter
	broken  bool // the upstream stopped taking the body
	done    chan struct{}
	stop    context.CancelFunc
	resp    *http.Response
	lr      *host.LocalResponse
	timeout context.CancelFunc
}

func (u *upstream) headers(h headerList, eos bool) (*host.LocalResponse, bool) {
	u.hdrs, u.reached = h, true
	u.x.req = h
	if eos {
		return nil, true // sent by response(), once the filters are done
	}
	t, lr := u.p.pick(h, u.x)
	if lr != nil {
		return lr, false
	}
	pr, pw := io.Pipe()
	ctx, stop := context.WithCancel(u.ctx)
	u.pw, u.stop, u.done = pw, stop, make(chan struct{})
	n := int64(-1) // chunked, unless the filters left a content-length
	if v, ok := h.get("content-length"); ok {
		if l, err := strconv.ParseInt(v, 10, 64); err == nil && l >= 0 {
			n = l
		}
	}
	go func() {
		defer close(u.done)
		u.resp, u.lr, u.timeout = u.p.send(ctx, t, h, pr, n, u.x)
		pr.CloseWithError(errUpstreamDone)
	}()
	return nil, true
}

var errUpstreamDone = errors.New("devproxy: the upstream request ended")

func (u *upstream) data(b []byte, eos bool) bool {
	if u.pw == nil {
		return true
	}
	if len(b) > 0 && !u.broken {
		if _, err := u.pw.Write(b); err != nil {
			u.broken = true // the upstream answered or failed: its outcome says which
		}
	}
	if eos {
		u.pw.Close()
	}
	return true
}

// abort ends an upstream request that is under way, when the client is
// answered otherwise.
func (u *upstream) abort() {
	if u.pw == nil {
		return
	}
	u.stop()
	u.pw.CloseWithError(context.Canceled)
	<-u.done
	if u.resp != nil {
		u.resp.Body.Close()
	}
	if u.timeout != nil {
		u.timeout()
	}
}

// response returns the upstream's response, or the local reply Envoy's
// router would send, and the cancel function of the route's timeout.
func (u *upstream) response() (*http.Response, *host.LocalResponse, context.CancelFunc) {
	if !u.reached {
		return nil, nil, nil
	}
	if u.pw == nil {
		return u.p.forward(u.ctx, u.hdrs, u.x)
	}
	<-u.done
	stop := u.stop
	timeout := u.timeout
	return u.resp, u.lr, func() {
		if timeout != nil {
			timeout()
		}
		stop()
	}
}

// forward routes a bodiless request and sends it upstream. It returns the
// upstream response, or the local reply Envoy's router would send.
func (p *Proxy) forward(ctx context.Context, hl headerList, x *exchange) (*http.Response, *host.LocalResponse, context.CancelFunc) {
	t, lr := p.pick(hl, x)
	if lr != nil {
		return nil, lr, nil
	}
	return p.send(ctx, t, hl, http.NoBody, 0, x)
}

// target is where the router sends a request.
type target struct {
	route    *bootstrap.Route
	cluster  *cluster
	endpoint string
}

// pick routes the request and picks an endpoint, or returns the local
// reply Envoy's router sends when it cannot.
func (p *Proxy) pick(hl headerList, x *exchange) (*target, *host.LocalResponse) {
	authority, _ := hl.get(":authority")
	path, _ := hl.get(":path")
	rt := p.route(authority, path)
	if rt == nil {
		x.flags = "NR"
		p.stats.inc("http." + p.cfg.Listener.StatPrefix + ".no_route")
		return nil, &host.LocalResponse{Status: 404, Details: "route_not_found", GRPCStatus: -1}
	}
	c := p.clusters[rt.Cluster]
	if c == nil {
		x.flags = "NC"
		return nil, &host.LocalResponse{Status: 503, Details: "cluster_not_found", GRPCStatus: -1}
	}
	ep, ok := c.endpoint()
	if !ok {
		x.flags = "UH"
		return nil, &host.LocalResponse{Status: 503, Body: []byte("no healthy upstream"), Details: "no_healthy_upstream", GRPCStatus: -1}
	}
	x.upstream = ep
	return &target{route: rt, cluster: c, endpoint: ep}, nil
}

// send sends the request to the target with body (n bytes; -1 when
// unknown, sent chunked). It returns the upstream response, or the local
// reply Envoy's router would send.
func (p *Proxy) send(ctx context.Context, t *target, hl headerList, body io.Reader, n int64, x *exchange) (*http.Response, *host.LocalResponse, context.CancelFunc) {
	path, _ := hl.get(":path")
	method, _ := hl.get(":method")
	authority, _ := hl.get(":authority")
	rt := t.route
	var cancel context.CancelFunc
	uctx := context.WithValue(ctx, connectTimeoutKey{}, t.cluster.c.ConnectTimeout)
	if rt.Timeout > 0 {
		uctx, cancel = context.WithTimeout(uctx, rt.Timeout)
	}
	ur, err := http.NewRequestWithContext(uctx, method, "http://"+t.endpoint+path, body)
	if err != nil {
		x.flags = "DPE"
		return nil, &host.LocalResponse{Status: 400, Body: []byte("Bad Request"), Details: "invalid_request", GRPCStatus: -1}, cancel
	}
	ur.Host = authority
	ur.ContentLength = n
	if n == 0 {
		ur.Body = http.NoBody
	}
	for _, kv := range hl {
		if strings.HasPrefix(kv[0], ":") || kv[0] == "host" || kv[0] == "content-length" || kv[0] == "transfer-encoding" {
			continue
		}
		ur.Header.Add(kv[0], kv[1])
	}
	if rt.Timeout > 0 {
		ur.Header.Set("x-envoy-expected-rq-timeout-ms", strconv.FormatInt(rt.Timeout.Milliseconds(), 10))
	}
	cs := "cluster." + rt.Cluster + "."
	p.stats.inc(cs + "upstream_rq_total")
	resp, err := p.client.Do(ur)
	if err != nil {
		switch {
		case errors.Is(uctx.Err(), context.DeadlineExceeded):
			x.flags = "UT"
			p.stats.inc(cs + "upstream_rq_timeout")
			return nil, &host.LocalResponse{Status: 504, Body: []byte("upstream request timeout"), Details: "upstream_response_timeout", GRPCStatus: -1}, cancel
		case ctx.Err() != nil:
			return nil, nil, cancel
		default:
			x.flags = "UF"
			p.debugf("upstream connect failure, cluster %q endpoint %s: %v", rt.Cluster, t.endpoint, err)
			p.stats.inc(cs + "upstream_cx_connect_fail")
			return nil, &host.LocalResponse{Status: 503,
				Body:    []byte("upstream connect error or disconnect/reset before headers. reset reason: connection failure"),
				Details: "upstream_reset_before_response_started{connection_failure}", GRPCStatus: -1}, cancel
		}
	}
	p.stats.responseCode(cs+"upstream_rq", resp.StatusCode)
	return resp, nil, cancel
}

// route finds the first route whose virtual host matches the authority and
// whose prefix matches the path, in file order.
func (p *Proxy) route(authority, path string) *bootstrap.Route {
	host := strings.ToLower(authority)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	var fallback *bootstrap.Route
	for i := range p.cfg.Listener.Routes {
		rt := &p.cfg.Listener.Routes[i]
		if !strings.HasPrefix(path, rt.Prefix) {
			continue
		}
		for _, d := range rt.Domains {
			d = strings.ToLower(d)
			switch {
			case d == host || d == strings.ToLower(authority):
				return rt
			case strings.HasPrefix(d, "*") && d != "*" && strings.HasSuffix(host, d[1:]):
				return rt
			case strings.HasSuffix(d, "*") && d != "*" && strings.HasPrefix(host, d[:len(d)-1]):
				return rt
			case d == "*" && fallback == nil:
				fallback = rt
			}
		}
	}
	return fallback
}

// finish closes the filter streams (proxy_on_log, proxy_on_done,
// proxy_on_delete) and writes the access-log lines.
func (p *Proxy) finish(x *exchange) {
	for _, s := range x.streams {
		s.Close()
	}
	prefix := "http." + p.cfg.Listener.StatPrefix + "."
	if x.status > 0 {
		p.stats.responseCode(prefix+"downstream_rq", x.status)
	}
	p.stats.inc(prefix + "downstream_rq_completed")
	if len(p.logs) == 0 {
		return
	}
	method, _ := x.req.get(":method")
	path, _ := x.req.get(":path")
	authority, _ := x.req.get(":authority")
	e := &bootstrap.LogEntry{
		Start: x.start, Method: method, Path: path, Protocol: x.protocol, Authority: authority,
		Status: x.status, Duration: time.Since(x.start), BytesReceived: x.bytesIn, BytesSent: x.bytesOut,
		ResponseFlags: x.flags, UpstreamHost: x.upstream,
		RequestHeader: func(n string) (string, bool) { return x.req.get(strings.ToLower(n)) },
		ResponseHeader: func(n string) (string, bool) {
			if strings.ToLower(n) == "server" {
				return "envoy", true
			}
			return x.resp.get(strings.ToLower(n))
		},
		FilterState: func(n string) (string, bool) {
			for _, s := range x.streams {
				if v, ok := s.FilterState(n); ok {
					return v, true
				}
			}
			return "", false
		},
	}
	for _, l := range p.logs {
		line := l.format.Render(e)
		if !strings.HasSuffix(line, "\n") {
			line += "\n"
		}
		l.mu.Lock()
		io.WriteString(l.w, line)
		l.mu.Unlock()
	}
}

// requestPairs turns the request into Envoy's header map: pseudo-headers
// first, then the fields with lower-case names.
func requestPairs(r *http.Request) headerList {
	hl := headerList{{":authority", r.Host}, {":path", r.RequestURI}, {":method", r.Method}}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		if lk == "host" {
			continue
		}
		for _, v := range r.Header[k] {
			hl = append(hl, [2]string{lk, v})
		}
	}
	if r.ContentLength > 0 {
		if _, ok := hl.get("content-length"); !ok {
			hl = append(hl, [2]string{"content-length", strconv.FormatInt(r.ContentLength, 10)})
		}
	}
	return hl
}

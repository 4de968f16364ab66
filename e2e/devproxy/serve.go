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
	start     time.Time
	req       headerList
	resp      headerList
	status    int
	flags     string
	upstream  string
	bytesIn   int64
	bytesOut  int64
	streams   []*host.Stream
	protocol  string
	localBody []byte
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
	eos := r.Body == nil || r.ContentLength == 0 && len(r.TransferEncoding) == 0
	ctx := r.Context()

	var lr *host.LocalResponse
	for _, s := range x.streams {
		res, err := s.RequestHeaders(ctx, hl, eos)
		if err != nil {
			x.flags = "DC" // the client went away (or the proxy is closing)
			return
		}
		switch res.Action {
		case host.Continue:
			hl = res.Headers
			x.req = hl
			continue
		case host.LocalReply:
			lr = res.Local
		case host.Reset:
			x.flags = "DR"
			panic(http.ErrAbortHandler)
		}
		break
	}

	var resp *http.Response
	if lr == nil {
		var cancel context.CancelFunc
		resp, lr, cancel = p.forward(ctx, r, hl, x)
		if cancel != nil {
			defer cancel()
		}
		if resp == nil && lr == nil {
			x.flags = "DC"
			return
		}
	}

	// Encoder filters run in reverse chain order, on upstream responses and
	// local replies alike.
	var rh headerList
	var body io.Reader
	if lr != nil {
		rh = lr.ResponseHeaders()
		body = strings.NewReader(string(lr.Body))
	} else {
		rh = responsePairs(resp)
		rh = append(rh, [2]string{"x-envoy-upstream-service-time", strconv.FormatInt(time.Since(x.start).Milliseconds(), 10)})
		body = resp.Body
	}
	respEOS := lr != nil && len(lr.Body) == 0 || lr == nil && resp.ContentLength == 0
	for i := len(x.streams) - 1; i >= 0; i-- {
		res, err := x.streams[i].ResponseHeaders(ctx, rh, respEOS)
		if err != nil {
			x.flags = "DC"
			return
		}
		if res.Action == host.Reset {
			x.flags = "DR"
			panic(http.ErrAbortHandler)
		}
		if res.Action == host.LocalReply {
			if resp != nil {
				resp.Body.Close()
				resp = nil
			}
			lr = res.Local
			rh = lr.ResponseHeaders()
			body = strings.NewReader(string(lr.Body))
			break
		}
		rh = res.Headers
	}
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
	n, err := copyFlush(w, body)
	x.bytesOut = n
	if resp != nil {
		resp.Body.Close()
	}
	if err != nil && ctx.Err() == nil && lr == nil {
		x.flags = joinFlags(x.flags, "UPE")
		panic(http.ErrAbortHandler)
	}
}

func joinFlags(a, b string) string {
	if a == "" {
		return b
	}
	return a + "," + b
}

func copyFlush(w http.ResponseWriter, r io.Reader) (int64, error) {
	f, _ := w.(http.Flusher)
	buf := make([]byte, 32*1024)
	var n int64
	for {
		m, err := r.Read(buf)
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return n, nil // the client went away
			}
			n += int64(m)
			if f != nil {
				f.Flush()
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// forward routes the request and sends it upstream. It returns the
// upstream response, or the local reply Envoy's router would send.
func (p *Proxy) forward(ctx context.Context, r *http.Request, hl headerList, x *exchange) (*http.Response, *host.LocalResponse, context.CancelFunc) {
	authority, _ := hl.get(":authority")
	path, _ := hl.get(":path")
	method, _ := hl.get(":method")
	rt := p.route(authority, path)
	if rt == nil {
		x.flags = "NR"
		p.stats.inc("http." + p.cfg.Listener.StatPrefix + ".no_route")
		return nil, &host.LocalResponse{Status: 404, Details: "route_not_found", GRPCStatus: -1}, nil
	}
	c := p.clusters[rt.Cluster]
	if c == nil {
		x.flags = "NC"
		return nil, &host.LocalResponse{Status: 503, Details: "cluster_not_found", GRPCStatus: -1}, nil
	}
	ep, ok := c.endpoint()
	if !ok {
		x.flags = "UH"
		return nil, &host.LocalResponse{Status: 503, Body: []byte("no healthy upstream"), Details: "no_healthy_upstream", GRPCStatus: -1}, nil
	}
	x.upstream = ep
	var cancel context.CancelFunc
	uctx := context.WithValue(ctx, connectTimeoutKey{}, c.c.ConnectTimeout)
	if rt.Timeout > 0 {
		uctx, cancel = context.WithTimeout(uctx, rt.Timeout)
	}
	var body io.Reader = r.Body
	if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
		body = http.NoBody
	}
	ur, err := http.NewRequestWithContext(uctx, method, "http://"+ep+path, body)
	if err != nil {
		x.flags = "DPE"
		return nil, &host.LocalResponse{Status: 400, Body: []byte("Bad Request"), Details: "invalid_request", GRPCStatus: -1}, cancel
	}
	ur.Host = authority
	ur.ContentLength = r.ContentLength
	for _, kv := range hl {
		if strings.HasPrefix(kv[0], ":") || kv[0] == "host" || kv[0] == "content-length" {
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
			p.debugf("upstream connect failure, cluster %q endpoint %s: %v", rt.Cluster, ep, err)
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

package devproxy

import (
	"context"
	"io"

	"github.com/ipveil/ipveil/e2e/host"
)

// chain passes one direction of a stream through the Wasm filters as
// Envoy's filter manager iterates them: headers first, then body data, each
// filter handing on what it releases — at once, or later from a body call
// when it held it — and the last one handing it to the sink (the upstream
// for a request, the client for a response).
type chain struct {
	ctx     context.Context
	headers []func(ctx context.Context, h [][2]string, eos bool) (host.Result, error)
	body    []func(ctx context.Context, b []byte, eos bool) (host.Result, error)
	// passed is told the headers each filter continued with.
	passed func(h headerList)
	// sinkHeaders and sinkData take what the last filter released. A sink
	// answers with a local reply (the router's), or false to stop quietly.
	sinkHeaders func(h headerList, eos bool) (*host.LocalResponse, bool)
	sinkData    func(b []byte, eos bool) bool

	// How the chain ended early, if it did.
	local *host.LocalResponse // a filter or the sink answered
	reset bool                // a filter reset the stream
	err   error               // a call failed: the client went away or the proxy is closing
}

// newChain builds the chain of streams' request (response == false) or
// response callbacks. Envoy runs encoder filters in reverse order.
func newChain(ctx context.Context, streams []*host.Stream, response bool) *chain {
	c := &chain{ctx: ctx}
	for i := range streams {
		s := streams[i]
		if response {
			s = streams[len(streams)-1-i]
			c.headers = append(c.headers, s.ResponseHeaders)
			c.body = append(c.body, s.ResponseBody)
			continue
		}
		c.headers = append(c.headers, s.RequestHeaders)
		c.body = append(c.body, s.RequestBody)
	}
	return c
}

// ended reports whether the chain stopped early.
func (c *chain) ended() bool { return c.local != nil || c.reset || c.err != nil }

// take records how a call ended the chain; it reports whether to go on.
func (c *chain) take(res host.Result, err error) bool {
	switch {
	case err != nil:
		c.err = err
	case res.Action == host.LocalReply:
		c.local = res.Local
	case res.Action == host.Reset:
		c.reset = true
	default:
		return true
	}
	return false
}

// pushHeaders gives headers to filter i and, as each continues, to the next
// filters and the sink. It reports whether the stream goes on.
func (c *chain) pushHeaders(i int, h headerList, eos bool) bool {
	for ; i < len(c.headers); i++ {
		res, err := c.headers[i](c.ctx, h, eos)
		if !c.take(res, err) {
			return false
		}
		if res.Action == host.Stopped {
			return true // filter i holds the headers; a body call releases them
		}
		h = res.Headers
		if c.passed != nil {
			c.passed(h)
		}
	}
	lr, ok := c.sinkHeaders(h, eos)
	if lr != nil {
		c.local = lr
		return false
	}
	return ok
}

// pushData gives body data to filter i and what each filter releases to the
// next filters and the sink. It reports whether the stream goes on.
func (c *chain) pushData(i int, b []byte, eos bool) bool {
	for ; i < len(c.body); i++ {
		res, err := c.body[i](c.ctx, b, eos)
		if !c.take(res, err) {
			return false
		}
		if res.Headers != nil {
			// Filter i held the headers until now; data follows them.
			if c.passed != nil {
				c.passed(res.Headers)
			}
			if !c.pushHeaders(i+1, res.Headers, false) {
				return false
			}
		}
		if len(res.Body) == 0 && !res.EndOfStream {
			return true // held, or nothing to hand on
		}
		b, eos = res.Body, res.EndOfStream
	}
	return c.sinkData(b, eos)
}

// bodyChunkSize is how much body devproxy reads at a time; each read is
// one data frame for the filters, as a codec read is in Envoy.
const bodyChunkSize = 64 << 10

// readChunks reads r in chunks and calls fn with each, the last one with
// eos set (possibly empty, as Envoy's codec ends a chunked body with an
// empty frame). It stops when fn returns false, reading nothing more, and
// returns the first read error other than EOF.
func readChunks(r io.Reader, fn func(b []byte, eos bool) bool) error {
	buf := make([]byte, bodyChunkSize)
	var have []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if have != nil && !fn(have, false) {
				return nil
			}
			have = append([]byte(nil), buf[:n]...)
		}
		if err == io.EOF {
			if have == nil {
				have = []byte{}
			}
			fn(have, true)
			return nil
		}
		if err != nil {
			return err
		}
	}
}

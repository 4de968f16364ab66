package echo

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxHeaderBytes bounds a request head (request line and header fields).
const maxHeaderBytes = 1 << 20

// idleTimeout closes a connection that sends nothing for this long.
const idleTimeout = 60 * time.Second

// Server is the echo service over HTTP/1.1, reporting headers in wire order.
// The zero value is ready to use.
type Server struct {
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("echo: server closed")

// Serve answers connections from l until Close is called or l fails.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.ln = l
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// Close stops the listener, closes every connection and waits for their
// goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// errBadRequest carries the status for a request that cannot be parsed.
type errBadRequest struct {
	status int
	msg    string
}

func (e *errBadRequest) Error() string { return e.msg }

func (s *Server) serveConn(c net.Conn) {
	br := bufio.NewReader(c)
	bw := bufio.NewWriter(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(idleTimeout))
		req, keepAlive, err := readRequest(br, bw)
		if err != nil {
			var bad *errBadRequest
			if errors.As(err, &bad) {
				body := "echo: " + bad.msg + "\n"
				fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
					bad.status, http.StatusText(bad.status), len(body), body)
				_ = bw.Flush()
			}
			return
		}
		status, body := answer(req)
		fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", status, http.StatusText(status), len(body))
		if !keepAlive {
			bw.WriteString("Connection: close\r\n")
		} else if req.Proto == "HTTP/1.0" {
			bw.WriteString("Connection: keep-alive\r\n")
		}
		bw.WriteString("\r\n")
		if req.Method != http.MethodHead {
			bw.Write(body)
		}
		if bw.Flush() != nil || !keepAlive {
			return
		}
	}
}

// readRequest reads one request. keepAlive reports whether the connection
// may carry another one.
func readRequest(br *bufio.Reader, bw *bufio.Writer) (req *Request, keepAlive bool, err error) {
	// The head is read line by line from br (so no bytes of the body are
	// buffered elsewhere), with a running size check.
	size := 0
	readLine := func() (string, error) {
		line, err := br.ReadString('\n')
		size += len(line)
		if err != nil {
			if err == io.EOF && line != "" {
				return "", &errBadRequest{http.StatusBadRequest, "request head ends early"}
			}
			return "", err
		}
		if size > maxHeaderBytes {
			return "", &errBadRequest{http.StatusRequestHeaderFieldsTooLarge, "request head over 1 MiB"}
		}
		return strings.TrimRight(line, "\r\n"), nil
	}

	var line string
	for line == "" { // RFC 9112 §2.2: ignore empty lines before the request line
		if line, err = readLine(); err != nil {
			return nil, false, err
		}
	}
	parts := strings.Split(line, " ")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return nil, false, &errBadRequest{http.StatusBadRequest, fmt.Sprintf("malformed request line %q", clip(line))}
	}
	req = &Request{Method: parts[0], Target: parts[1], Proto: parts[2], Headers: []Header{}}

	if req.Headers, err = readFields(readLine); err != nil {
		return nil, false, err
	}

	keepAlive = req.Proto == "HTTP/1.1"
	for _, v := range req.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			switch strings.ToLower(strings.TrimSpace(tok)) {
			case "close":
				keepAlive = false
			case "keep-alive":
				keepAlive = true
			}
		}
	}

	var body io.Reader
	te := req.Values("Transfer-Encoding")
	cl := req.Values("Content-Length")
	switch {
	case len(te) > 0:
		last := strings.ToLower(strings.TrimSpace(te[len(te)-1]))
		if !strings.HasSuffix(last, "chunked") || len(cl) > 0 {
			return nil, false, &errBadRequest{http.StatusBadRequest, "Transfer-Encoding must end in chunked, without Content-Length"}
		}
		body = httputil.NewChunkedReader(br)
	case len(cl) > 0:
		n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
		for _, v := range cl[1:] {
			if strings.TrimSpace(v) != strings.TrimSpace(cl[0]) {
				err = errors.New("differing values")
			}
		}
		if err != nil || n < 0 {
			return nil, false, &errBadRequest{http.StatusBadRequest, fmt.Sprintf("bad Content-Length %q", clip(strings.Join(cl, ",")))}
		}
		body = io.LimitReader(br, n)
	}
	if body != nil {
		if v, ok := req.Get("Expect"); ok && strings.EqualFold(strings.TrimSpace(v), "100-continue") {
			bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := bw.Flush(); err != nil {
				return nil, false, err
			}
		}
		kept, err := io.ReadAll(io.LimitReader(body, maxBody+1))
		if err != nil {
			return nil, false, &errBadRequest{http.StatusBadRequest, "reading the body: " + err.Error()}
		}
		rest, err := io.Copy(io.Discard, body)
		if err != nil {
			return nil, false, &errBadRequest{http.StatusBadRequest, "reading the body: " + err.Error()}
		}
		req.BodyBytes = int64(len(kept)) + rest
		if len(kept) <= maxBody {
			req.Body = string(kept)
		}
		if len(te) > 0 {
			if req.Trailers, err = readFields(readLine); err != nil {
				return nil, false, err
			}
			if len(req.Trailers) == 0 {
				req.Trailers = nil
			}
		}
	}
	return req, keepAlive, nil
}

// readFields reads header (or trailer) fields up to the empty line.
func readFields(readLine func() (string, error)) ([]Header, error) {
	out := []Header{}
	for {
		line, err := readLine()
		if err != nil {
			if err == io.EOF {
				return nil, &errBadRequest{http.StatusBadRequest, "request head ends early"}
			}
			return nil, err
		}
		if line == "" {
			return out, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, &errBadRequest{http.StatusBadRequest, "folded header lines are not allowed (RFC 9112 §5.2)"}
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, &errBadRequest{http.StatusBadRequest, fmt.Sprintf("malformed header line %q", clip(line))}
		}
		out = append(out, Header{Name: name, Value: strings.Trim(value, " \t")})
	}
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

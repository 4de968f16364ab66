// Command guest is a Proxy-Wasm test module for the e2e host and devproxy.
// Each request path selects a behaviour (see OnHttpRequestHeaders and
// OnHttpRequestBody); together they exercise headers, bodies, properties,
// local replies, HTTP calls, shared data with CAS, ticks, metrics, filter
// state and a deliberate crash.
//
// Build: go run ./internal/wasmbuild -o build/testguest.wasm ./e2e/host/testdata/guest
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

func init() { proxywasm.SetVMContext(&vmContext{}) }

func main() {}

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) OnVMStart(vmConfigurationSize int) types.OnVMStartStatus {
	cfg, _ := proxywasm.GetVMConfiguration()
	if string(cfg) == "refuse-vm" {
		proxywasm.LogCritical("vm configuration refused")
		return types.OnVMStartStatusFailed
	}
	return types.OnVMStartStatusOK
}

func (*vmContext) NewPluginContext(contextID uint32) types.PluginContext {
	return &pluginContext{}
}

type pluginContext struct {
	types.DefaultPluginContext
	requests proxywasm.MetricCounter
	ticks    proxywasm.MetricCounter
	chunks   proxywasm.MetricCounter
	inflight proxywasm.MetricGauge
	sizes    proxywasm.MetricHistogram
	callout  string
}

func (p *pluginContext) OnPluginStart(pluginConfigurationSize int) types.OnPluginStartStatus {
	cfg, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogCriticalf("reading configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.callout = "mock"
	for _, kv := range strings.Split(string(cfg), ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "reject":
			proxywasm.LogErrorf("configuration rejected: %s", v)
			return types.OnPluginStartStatusFailed
		case "tick_ms":
			ms, _ := strconv.Atoi(v)
			if err := proxywasm.SetTickPeriodMilliSeconds(uint32(ms)); err != nil {
				proxywasm.LogErrorf("set tick period: %v", err)
			}
		case "cluster":
			p.callout = v
		}
	}
	// Shared data has no "set if absent" (CAS 0 sets unconditionally): two
	// workers creating the counter at once would both start at 1. Create it
	// before any request.
	if _, _, err := proxywasm.GetSharedData("counter"); errors.Is(err, types.ErrorStatusNotFound) {
		if err := proxywasm.SetSharedData("counter", []byte("0"), 0); err != nil {
			proxywasm.LogErrorf("creating the shared counter: %v", err)
		}
	}
	p.requests = proxywasm.DefineCounterMetric("test_requests_total")
	p.ticks = proxywasm.DefineCounterMetric("test_ticks_total")
	p.chunks = proxywasm.DefineCounterMetric("test_request_body_chunks_total")
	p.inflight = proxywasm.DefineGaugeMetric("test_inflight")
	p.sizes = proxywasm.DefineHistogramMetric("test_path_length")
	proxywasm.LogInfo("test guest started")
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) OnTick() {
	p.ticks.Increment(1)
	casIncrement("ticks")
}

func (p *pluginContext) NewHttpContext(contextID uint32) types.HttpContext {
	return &httpContext{p: p, id: contextID}
}

type httpContext struct {
	types.DefaultHttpContext
	p           *pluginContext
	id          uint32
	path        string
	route       string
	bodyCalls   int
	calloutDone bool
}

func (c *httpContext) OnHttpRequestHeaders(numHeaders int, endOfStream bool) types.Action {
	c.p.requests.Increment(1)
	c.p.inflight.Add(1)
	c.path, _ = proxywasm.GetHttpRequestHeader(":path")
	c.p.sizes.Record(uint64(len(c.path)))
	proxywasm.SetProperty([]string{"guest_path"}, []byte(c.path))
	route, _, _ := strings.Cut(c.path, "?")
	c.route = route
	switch route {
	case "/local":
		proxywasm.SendHttpResponse(403, [][2]string{{"x-guest", "local"}}, []byte("denied by guest"), -1)
		return types.ActionPause
	case "/double":
		proxywasm.SendHttpResponse(403, nil, []byte("first"), -1)
		proxywasm.SendHttpResponse(500, nil, []byte("second"), -1)
		return types.ActionPause
	case "/echo-body":
		// Reads the whole body, then answers. A pause here (x-hold-headers)
		// keeps the headers from going upstream; Envoy then gives the body to
		// the filter only with allow_on_headers_stop_iteration.
		if _, err := proxywasm.GetHttpRequestHeader("x-hold-headers"); err == nil {
			return types.ActionPause
		}
		return types.ActionContinue
	case "/edit-body":
		// The body will change length: Envoy wants content-length removed.
		proxywasm.RemoveHttpRequestHeader("content-length")
		return types.ActionContinue
	case "/resp-body":
		return types.ActionContinue
	case "/callout", "/callout-local", "/callout-body", "/callout-naive-body":
		timeout := uint32(5000)
		if v, err := proxywasm.GetHttpRequestHeader("x-timeout-ms"); err == nil {
			n, _ := strconv.Atoi(v)
			timeout = uint32(n)
		}
		hdrs := [][2]string{{":method", "GET"}, {":path", "/lookup?from=guest"}, {":authority", "reputation"}}
		local := route == "/callout-local"
		_, err := proxywasm.DispatchHttpCall(c.p.callout, hdrs, nil, nil, timeout, func(numHeaders, bodySize, numTrailers int) {
			c.onCallout(numHeaders, bodySize, local)
		})
		if err != nil {
			proxywasm.AddHttpRequestHeader("x-dispatch-error", err.Error())
			return types.ActionContinue
		}
		return types.ActionPause
	case "/unknown-cluster":
		_, err := proxywasm.DispatchHttpCall("no-such-cluster", [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "x"}}, nil, nil, 1000, func(int, int, int) {
			proxywasm.LogCritical("callback for an unknown cluster must never run")
		})
		proxywasm.AddHttpRequestHeader("x-dispatch-error", errString(err))
	case "/bad-call":
		_, err := proxywasm.DispatchHttpCall(c.p.callout, [][2]string{{":method", "GET"}, {":path", "/"}}, nil, nil, 1000, func(int, int, int) {
			proxywasm.LogCritical("callback for a call without :authority must never run")
		})
		proxywasm.AddHttpRequestHeader("x-dispatch-error", errString(err))
	case "/props":
		for _, name := range []string{"source.address", "source.port", "destination.address", "destination.port",
			"request.path", "request.method", "request.id", "request.protocol", "request.headers.x-test",
			"plugin_name", "plugin_root_id", "plugin_vm_id", "no.such.property", "guest_path"} {
			proxywasm.AddHttpRequestHeader("x-prop-"+strings.ReplaceAll(name, ".", "-"), property(name))
		}
		proxywasm.AddHttpRequestHeader("x-env", os.Getenv("TEST_ENV"))
	case "/shared":
		n := casIncrement("counter")
		proxywasm.AddHttpRequestHeader("x-shared", strconv.Itoa(n))
	case "/ticks":
		v, _, err := proxywasm.GetSharedData("ticks")
		if err != nil {
			proxywasm.AddHttpRequestHeader("x-ticks", "0")
		} else {
			proxywasm.AddHttpRequestHeader("x-ticks", string(v))
		}
	case "/trap":
		panic("deliberate trap requested by the test")
	case "/pause":
		return types.ActionPause
	}
	proxywasm.AddHttpRequestHeader("x-guest-seen", "1")
	proxywasm.RemoveHttpRequestHeader("x-remove-me")
	return types.ActionContinue
}

func (c *httpContext) onCallout(numHeaders, bodySize int, local bool) {
	c.calloutDone = true
	defer proxywasm.SetProperty([]string{"guest_callout"}, []byte("done"))
	if numHeaders == 0 {
		proxywasm.AddHttpRequestHeader("x-callout-status", "reset")
		proxywasm.ResumeHttpRequest()
		return
	}
	hdrs, _ := proxywasm.GetHttpCallResponseHeaders()
	status := ""
	for _, h := range hdrs {
		if h[0] == ":status" {
			status = h[1]
		}
	}
	body, _ := proxywasm.GetHttpCallResponseBody(0, bodySize)
	if local {
		proxywasm.SendHttpResponse(429, [][2]string{{"x-callout-status", status}}, body, -1)
		return
	}
	proxywasm.AddHttpRequestHeader("x-callout-status", status)
	proxywasm.AddHttpRequestHeader("x-callout-body", string(body))
	if err := proxywasm.ResumeHttpRequest(); err != nil {
		proxywasm.LogErrorf("resume: %v", err)
	}
}

// OnHttpRequestBody implements the body behaviours:
//
//	/echo-body           buffer the whole body, then answer 200 with its length and first bytes
//	/edit-body           buffer, then replace the body with "<" + upper case + "!" and continue
//	/pass-body           let every chunk through, recording what was seen
//	/callout-body        hold the body until the callout answered, then let it through
//	/callout-naive-body  let the body through at once, as the SDK's default does
//	/trap-body           crash
func (c *httpContext) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	c.bodyCalls++
	c.p.chunks.Increment(1)
	seen := "len=" + strconv.Itoa(bodySize) + " eos=" + strconv.FormatBool(endOfStream) + " calls=" + strconv.Itoa(c.bodyCalls)
	switch c.route {
	case "/echo-body":
		if !endOfStream {
			return types.ActionPause
		}
		body, err := proxywasm.GetHttpRequestBody(0, bodySize)
		if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
			proxywasm.LogErrorf("reading the body: %v", err)
		}
		first := body
		if len(first) > 16 {
			first = first[:16]
		}
		proxywasm.SendHttpResponse(200, [][2]string{{"x-body-calls", strconv.Itoa(c.bodyCalls)}},
			[]byte("len="+strconv.Itoa(len(body))+" first="+strconv.Quote(string(first))), -1)
		return types.ActionPause
	case "/edit-body":
		if !endOfStream {
			return types.ActionPause
		}
		body, _ := proxywasm.GetHttpRequestBody(0, bodySize)
		for _, err := range []error{
			proxywasm.ReplaceHttpRequestBody(bytes.ToUpper(body)),
			proxywasm.AppendHttpRequestBody([]byte("!")),
			proxywasm.PrependHttpRequestBody([]byte("<")),
		} {
			if err != nil {
				proxywasm.LogErrorf("editing the body: %v", err)
			}
		}
		return types.ActionContinue
	case "/pass-body":
		proxywasm.SetProperty([]string{"guest_body"}, []byte(seen))
		return types.ActionContinue
	case "/callout-body":
		// Records what the first body callback saw.
		if !c.calloutDone {
			if c.bodyCalls == 1 {
				proxywasm.SetProperty([]string{"guest_body"}, []byte("during-callout "+seen))
			}
			return types.ActionPause
		}
		if c.bodyCalls == 1 {
			proxywasm.SetProperty([]string{"guest_body"}, []byte("after-callout "+seen))
		}
		return types.ActionContinue
	case "/callout-naive-body":
		proxywasm.SetProperty([]string{"guest_body"}, []byte("callout-done="+strconv.FormatBool(c.calloutDone)+" "+seen))
		return types.ActionContinue
	case "/trap-body":
		panic("deliberate trap in the body callback")
	}
	return types.ActionContinue
}

// OnHttpResponseBody, for /resp-body, buffers the response and replaces it
// with its length.
func (c *httpContext) OnHttpResponseBody(bodySize int, endOfStream bool) types.Action {
	if c.route != "/resp-body" {
		return types.ActionContinue
	}
	if !endOfStream {
		return types.ActionPause
	}
	if err := proxywasm.ReplaceHttpResponseBody([]byte("resp-len=" + strconv.Itoa(bodySize))); err != nil {
		proxywasm.LogErrorf("replacing the response body: %v", err)
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpResponseHeaders(numHeaders int, endOfStream bool) types.Action {
	status, _ := proxywasm.GetHttpResponseHeader(":status")
	proxywasm.AddHttpResponseHeader("x-guest-response", status)
	if _, err := proxywasm.GetHttpRequestHeader(":path"); err == nil {
		proxywasm.AddHttpResponseHeader("x-request-headers-readable", "yes")
	}
	if c.route == "/resp-body" {
		proxywasm.RemoveHttpResponseHeader("content-length")
	}
	if c.path == "/resp-local" {
		proxywasm.SendHttpResponse(418, nil, []byte("teapot"), -1)
		return types.ActionPause
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpStreamDone() {
	c.p.inflight.Add(-1)
	status, err := proxywasm.GetHttpResponseHeader(":status")
	if err != nil {
		status = "none"
	}
	proxywasm.SetProperty([]string{"guest_log"}, []byte("status="+status))
	proxywasm.LogInfof("stream %d done: %s", c.id, status)
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}

func property(name string) string {
	b, err := proxywasm.GetProperty(strings.Split(name, "."))
	if err != nil {
		return "error: " + err.Error()
	}
	switch name {
	case "source.port", "destination.port":
		if len(b) == 8 {
			return strconv.FormatInt(int64(binary.LittleEndian.Uint64(b)), 10)
		}
	}
	return string(b)
}

// casIncrement increments a decimal counter in shared data with
// compare-and-swap, retrying on a CAS mismatch.
func casIncrement(key string) int {
	for i := 0; i < 100; i++ {
		v, cas, err := proxywasm.GetSharedData(key)
		n := 0
		if err == nil {
			n, _ = strconv.Atoi(string(v))
		}
		n++
		err = proxywasm.SetSharedData(key, []byte(strconv.Itoa(n)), cas)
		if err == nil {
			return n
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			proxywasm.LogErrorf("set shared data: %v", err)
			return -1
		}
	}
	return -1
}

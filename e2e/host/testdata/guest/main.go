// Command guest is a Proxy-Wasm test module for the e2e host and devproxy.
// Each request path selects a behaviour (see onRequestHeaders); together
// they exercise headers, properties, local replies, HTTP calls, shared data
// with CAS, ticks, metrics, filter state and a deliberate crash.
//
// Build: go run ./internal/wasmbuild -o build/testguest.wasm ./e2e/host/testdata/guest
package main

import (
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
	p.requests = proxywasm.DefineCounterMetric("test_requests_total")
	p.ticks = proxywasm.DefineCounterMetric("test_ticks_total")
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
	p    *pluginContext
	id   uint32
	path string
}

func (c *httpContext) OnHttpRequestHeaders(numHeaders int, endOfStream bool) types.Action {
	c.p.requests.Increment(1)
	c.p.inflight.Add(1)
	c.path, _ = proxywasm.GetHttpRequestHeader(":path")
	c.p.sizes.Record(uint64(len(c.path)))
	proxywasm.SetProperty([]string{"guest_path"}, []byte(c.path))
	route, _, _ := strings.Cut(c.path, "?")
	switch route {
	case "/local":
		proxywasm.SendHttpResponse(403, [][2]string{{"x-guest", "local"}}, []byte("denied by guest"), -1)
		return types.ActionPause
	case "/double":
		proxywasm.SendHttpResponse(403, nil, []byte("first"), -1)
		proxywasm.SendHttpResponse(500, nil, []byte("second"), -1)
		return types.ActionPause
	case "/callout", "/callout-local":
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

func (c *httpContext) OnHttpResponseHeaders(numHeaders int, endOfStream bool) types.Action {
	status, _ := proxywasm.GetHttpResponseHeader(":status")
	proxywasm.AddHttpResponseHeader("x-guest-response", status)
	if _, err := proxywasm.GetHttpRequestHeader(":path"); err == nil {
		proxywasm.AddHttpResponseHeader("x-request-headers-readable", "yes")
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

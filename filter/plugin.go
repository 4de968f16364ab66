// Package filter is ipveil's Proxy-Wasm HTTP filter: it resolves the client
// address, checks it against the configured reputation API with an
// asynchronous callout, acts on the policy's verdict, and forgets: only
// masked addresses leave the filter, in filter state for the access log,
// in the headers sent upstream and in its decision log lines.
//
// The filter is built into build/ipveil.wasm by main.go; natively it is
// tested through the SDK's proxytest emulator.
package filter

import (
	"os"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// tickPeriodMs is how often the plugin context dispatches the callouts that
// cannot belong to a request: stale refreshes, and lookups whose requesting
// stream went away while others still wait on them.
const tickPeriodMs = 100

// NewVMContext returns the VM context that main.go registers in init().
func NewVMContext() types.VMContext { return &vmContext{now: time.Now} }

type vmContext struct {
	types.DefaultVMContext
	now func() time.Time
	// plugin is the last plugin context made, for tests.
	plugin *pluginContext
}

// NewPluginContext implements types.VMContext.
func (v *vmContext) NewPluginContext(contextID uint32) types.PluginContext {
	v.plugin = &pluginContext{now: v.now}
	return v.plugin
}

type pluginContext struct {
	types.DefaultPluginContext
	cfg     *Config
	cache   Cache
	keyer   sipKey
	flights map[clientKey]*flight
	breaker breaker
	metrics *metrics
	memo    *memo
	// reasons holds every reason this configuration can give, as bytes for
	// filter state.
	reasons map[string][]byte
	now     func() time.Time
}

// reasonBytes returns the reason as bytes, made once per distinct reason.
func (p *pluginContext) reasonBytes(r string) []byte {
	if b, ok := p.reasons[r]; ok {
		return b
	}
	b := []byte(r)
	if len(p.reasons) < 4096 {
		p.reasons[r] = b
	}
	return b
}

// OnPluginStart validates the whole configuration; on any problem the
// plugin refuses to start and every problem is logged with its JSON path.
func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	doc, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCriticalf("ipveil: cannot read the plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	cfg, err := ParseConfig(doc, os.LookupEnv)
	if err != nil {
		logConfigError(err)
		return types.OnPluginStartStatusFailed
	}
	secret, err := sharedSecret()
	if err != nil {
		proxywasm.LogCriticalf("ipveil: cannot set up the verdict cache in shared data: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.cfg = cfg
	p.keyer = newSipKey(secret)
	p.cache = &tieredCache{
		local:  newLRU(cfg.LocalEntries),
		shared: &slotTable{prefix: cfg.Namespace + ".s.", slots: uint64(cfg.Slots), reasons: newReasonTable(cfg.Policy)},
	}
	p.flights = map[clientKey]*flight{}
	p.breaker = breaker{threshold: cfg.BreakerFailures, cooldown: cfg.BreakerCooldown}
	p.metrics = newMetrics()
	p.memo = newMemo()
	p.reasons = map[string][]byte{}
	if err := proxywasm.SetTickPeriodMilliSeconds(tickPeriodMs); err != nil {
		proxywasm.LogWarnf("ipveil: cannot set the tick period (%v): stale refreshes are off", err)
	}
	proxywasm.LogInfof("ipveil: started in %s mode, provider %s via cluster %q", cfg.Mode, cfg.Provider.Preset, cfg.Provider.Cluster)
	return types.OnPluginStartStatusOK
}

// NewHttpContext implements types.PluginContext.
func (p *pluginContext) NewHttpContext(contextID uint32) types.HttpContext {
	return &httpContext{plugin: p, id: contextID}
}

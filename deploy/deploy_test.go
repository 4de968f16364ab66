// Package deploy_test checks the manifests under deploy/: the Istio ones
// against Istio's own API types, the Envoy Gateway ones as YAML, the Envoy
// fragments they carry against Envoy's API types, and every embedded ipveil
// configuration with the plugin's own validation.
package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	extensions "istio.io/api/extensions/v1alpha1"
	meshconfig "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1"
	telemetry "istio.io/api/telemetry/v1"
	"sigs.k8s.io/yaml"

	"github.com/ipveil/ipveil/filter"
)

// doc is one YAML document of a manifest file, as generic JSON.
type doc map[string]any

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// readDocs splits a multi-document YAML file and converts each document.
func readDocs(t *testing.T, file string) []doc {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var docs []doc
	for i, part := range docSeparator.Split(string(b), -1) {
		j, err := yaml.YAMLToJSON([]byte(part))
		if err != nil {
			t.Fatalf("%s, document %d: %v", file, i+1, err)
		}
		if string(j) == "null" {
			continue // only comments
		}
		var d doc
		if err := json.Unmarshal(j, &d); err != nil {
			t.Fatalf("%s, document %d: %v", file, i+1, err)
		}
		docs = append(docs, d)
	}
	return docs
}

// oneOf returns the single document of kind in file, checking apiVersion.
func oneOf(t *testing.T, file, apiVersion, kind string) doc {
	t.Helper()
	var found []doc
	for _, d := range readDocs(t, file) {
		if d["kind"] == kind {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d documents of kind %s, want 1", file, len(found), kind)
	}
	if got := found[0]["apiVersion"]; got != apiVersion {
		t.Errorf("%s: %s apiVersion %v, want %s", file, kind, got, apiVersion)
	}
	if name := str(found[0], "metadata", "name"); name == "" {
		t.Errorf("%s: %s has no metadata.name", file, kind)
	}
	return found[0]
}

// at walks a path of map keys and list indexes.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				if d, isDoc := v.(doc); isDoc {
					m = d
				} else {
					return nil
				}
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := at(v, path...).(string)
	return s
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decode reads v (generic JSON) into an API type, strictly: an unknown or
// misspelt field is an error.
func decode(t *testing.T, what string, v any, m proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal(mustJSON(t, v), m); err != nil {
		t.Fatalf("%s does not parse as %s: %v", what, m.ProtoReflect().Descriptor().FullName(), err)
	}
}

// checkPluginConfig validates an embedded ipveil configuration exactly as
// the plugin does at start and returns it with the environment variables
// it asked for.
func checkPluginConfig(t *testing.T, what string, raw []byte) (*filter.Config, []string) {
	t.Helper()
	var asked []string
	cfg, err := filter.ParseConfig(raw, func(name string) (string, bool) {
		asked = append(asked, name)
		return "x", true
	})
	if err != nil {
		t.Fatalf("%s: the plugin would refuse this configuration:\n%v", what, err)
	}
	return cfg, asked
}

var (
	sha256Hex = regexp.MustCompile(`^[a-f0-9]{64}$`)
	pinnedRef = regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+@sha256:([a-f0-9]{64})$`)
)

// checkPinned checks an image reference pinned by digest and a sha256 field
// that names the same digest.
func checkPinned(t *testing.T, what, ref, sum string) {
	t.Helper()
	m := pinnedRef.FindStringSubmatch(ref)
	if m == nil {
		t.Errorf("%s: image %q is not pinned as registry/repository@sha256:<64 hex>", what, ref)
		return
	}
	if !sha256Hex.MatchString(sum) {
		t.Errorf("%s: sha256 %q is not 64 lower-case hex digits", what, sum)
	}
	if m[3] != sum {
		t.Errorf("%s: url pins %s but sha256 is %s", what, m[3], sum)
	}
}

// forbiddenInLogs are access-log operators that print a raw client
// address, which a filter cannot change.
var forbiddenInLogs = []string{
	"%DOWNSTREAM_REMOTE_ADDRESS", "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS", "%DOWNSTREAM_LOCAL_ADDRESS",
	"%REQ(X-FORWARDED-FOR)%", "%REQ(X-REAL-IP)%", "%REQ(FORWARDED)%", "%REQ(TRUE-CLIENT-IP)%",
	"%REQ(CF-CONNECTING-IP)%", "%REQ(X-ENVOY-EXTERNAL-ADDRESS)%",
}

func checkLogFormat(t *testing.T, what, format string) {
	t.Helper()
	upper := strings.ToUpper(format)
	for _, f := range forbiddenInLogs {
		if strings.Contains(upper, f) {
			t.Errorf("%s: the access log prints %s, a raw client address", what, f)
		}
	}
	for _, key := range []string{"client", "verdict", "reason"} {
		if !strings.Contains(format, "%FILTER_STATE(wasm.ipveil."+key+":PLAIN)%") {
			t.Errorf("%s: the access log lacks %%FILTER_STATE(wasm.ipveil.%s:PLAIN)%%", what, key)
		}
	}
}

// envFromSecret returns, per variable name, the Secret name/key a container
// env list takes it from.
func envFromSecret(t *testing.T, what string, env any) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	list, _ := env.([]any)
	for _, e := range list {
		name := str(e, "name")
		sec, key := str(e, "valueFrom", "secretKeyRef", "name"), str(e, "valueFrom", "secretKeyRef", "key")
		if at(e, "value") != nil {
			t.Errorf("%s: env %s has a literal value; keys belong in a Secret", what, name)
		}
		if sec != "" && key != "" {
			out[name] = [2]string{sec, key}
		}
	}
	return out
}

// A stat name and what Envoy's tag extraction should make of it.
var tagCases = []struct {
	stat, name string
	tags       map[string]string
}{
	{"wasmcustom.ipveil.requests.verdict.block.reason.tor", "wasmcustom.ipveil.requests", map[string]string{"verdict": "block", "reason": "tor"}},
	{"wasmcustom.ipveil.requests.verdict.challenge.reason.score_medium", "wasmcustom.ipveil.requests", map[string]string{"verdict": "challenge", "reason": "score_medium"}},
	{"wasmcustom.ipveil.requests.verdict.allow.reason.error_timeout", "wasmcustom.ipveil.requests", map[string]string{"verdict": "allow", "reason": "error_timeout"}},
	{"wasmcustom.ipveil.requests.verdict.flag.reason.my-rule_2", "wasmcustom.ipveil.requests", map[string]string{"verdict": "flag", "reason": "my-rule_2"}},
	{"wasmcustom.ipveil.callouts.failed.unknown_cluster", "wasmcustom.ipveil.callouts.failed", map[string]string{"kind": "unknown_cluster"}},
	{"wasmcustom.ipveil.callouts.failed.breaker_open", "wasmcustom.ipveil.callouts.failed", map[string]string{"kind": "breaker_open"}},
	{"wasmcustom.ipveil.callouts.sent", "wasmcustom.ipveil.callouts.sent", nil},
	{"wasmcustom.ipveil.cache.local_hit", "wasmcustom.ipveil.cache.local_hit", nil},
	{"wasmcustom.ipveil.breaker.open_workers", "wasmcustom.ipveil.breaker.open_workers", nil},
	{"wasmcustom.ipveil.lookup.latency_ms", "wasmcustom.ipveil.lookup.latency_ms", nil},
}

// checkStatsTags applies the bootstrap's tag regexes the way Envoy does:
// each regex is searched in the full name, its first group is removed from
// the name and its second group is the tag's value. The regexes use only
// syntax that Go's RE2 and Envoy's ECMAScript engine read alike.
func checkStatsTags(t *testing.T, what string, b *bootstrapv3.Bootstrap) []string {
	t.Helper()
	specs := b.GetStatsConfig().GetStatsTags()
	var names []string
	type tagRE struct {
		name string
		re   *regexp.Regexp
	}
	var res []tagRE
	for _, s := range specs {
		re, err := regexp.Compile(s.GetRegex())
		if err != nil {
			t.Fatalf("%s: tag %s: %v", what, s.GetTagName(), err)
		}
		names = append(names, s.GetTagName()+"="+s.GetRegex())
		if re.NumSubexp() != 2 {
			t.Errorf("%s: tag %s has %d groups, want 2 (the part to cut, the value)", what, s.GetTagName(), re.NumSubexp())
			continue
		}
		res = append(res, tagRE{s.GetTagName(), re})
	}
	for _, c := range tagCases {
		tags := map[string]string{}
		cut := make([]bool, len(c.stat))
		for _, r := range res {
			m := r.re.FindStringSubmatchIndex(c.stat)
			if m == nil {
				continue
			}
			tags[r.name] = c.stat[m[4]:m[5]]
			for i := m[2]; i < m[3]; i++ {
				cut[i] = true
			}
		}
		var name strings.Builder
		for i := range len(c.stat) {
			if !cut[i] {
				name.WriteByte(c.stat[i])
			}
		}
		if name.String() != c.name || fmt.Sprint(tags) != fmt.Sprint(orEmpty(c.tags)) {
			t.Errorf("%s: %s -> %s %v, want %s %v", what, c.stat, name.String(), tags, c.name, c.tags)
		}
	}
	return names
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// ---- Istio ----

const istioDir = "istio/"

type istioSet struct {
	plugin      *extensions.WasmPlugin
	pluginDoc   doc
	serviceEnt  *networking.ServiceEntry
	seDoc       doc
	destRule    *networking.DestinationRule
	drDoc       doc
	patch       doc
	statsConfig doc
	mesh        *meshconfig.MeshConfig
	telemetry   *telemetry.Telemetry
	telDoc      doc
}

func loadIstio(t *testing.T) *istioSet {
	t.Helper()
	s := &istioSet{
		plugin:     &extensions.WasmPlugin{},
		serviceEnt: &networking.ServiceEntry{},
		destRule:   &networking.DestinationRule{},
		mesh:       &meshconfig.MeshConfig{},
		telemetry:  &telemetry.Telemetry{},
	}
	s.pluginDoc = oneOf(t, istioDir+"wasmplugin.yaml", "extensions.istio.io/v1alpha1", "WasmPlugin")
	decode(t, "WasmPlugin spec", s.pluginDoc["spec"], s.plugin)
	s.seDoc = oneOf(t, istioDir+"reputation-api.yaml", "networking.istio.io/v1", "ServiceEntry")
	decode(t, "ServiceEntry spec", s.seDoc["spec"], s.serviceEnt)
	s.drDoc = oneOf(t, istioDir+"reputation-api.yaml", "networking.istio.io/v1", "DestinationRule")
	decode(t, "DestinationRule spec", s.drDoc["spec"], s.destRule)
	s.telDoc = oneOf(t, istioDir+"telemetry.yaml", "telemetry.istio.io/v1", "Telemetry")
	decode(t, "Telemetry spec", s.telDoc["spec"], s.telemetry)
	s.statsConfig = oneOf(t, istioDir+"stats-tags.yaml", "v1", "ConfigMap")
	patches := readDocs(t, istioDir+"gateway-patch.yaml")
	if len(patches) != 1 {
		t.Fatalf("gateway-patch.yaml: %d documents, want 1", len(patches))
	}
	s.patch = patches[0]
	values := readDocs(t, istioDir+"mesh-config.yaml")
	if len(values) != 1 || values[0]["meshConfig"] == nil {
		t.Fatal("mesh-config.yaml: want one document with meshConfig")
	}
	decode(t, "meshConfig", values[0]["meshConfig"], s.mesh)
	return s
}

func TestIstioWasmPlugin(t *testing.T) {
	s := loadIstio(t)
	p := s.plugin

	if !strings.HasPrefix(p.GetUrl(), "oci://") {
		t.Errorf("url %q: want an oci:// image", p.GetUrl())
	}
	checkPinned(t, "WasmPlugin", strings.TrimPrefix(p.GetUrl(), "oci://"), p.GetSha256())
	if p.GetPhase() != extensions.PluginPhase_AUTHN {
		t.Errorf("phase %v, want AUTHN: a blocked client is answered before other policies run", p.GetPhase())
	}
	if _, set := at(s.pluginDoc, "spec", "failStrategy").(string); !set {
		t.Error("failStrategy is not set explicitly")
	}
	if p.GetFailStrategy() == extensions.FailStrategy_FAIL_OPEN {
		t.Error("failStrategy FAIL_OPEN lets every request through unchecked when the plugin cannot run")
	}
	if p.GetType() != extensions.PluginType_HTTP || p.GetPluginName() != "ipveil" {
		t.Errorf("type %v pluginName %q, want HTTP ipveil", p.GetType(), p.GetPluginName())
	}
	if got := p.GetSelector().GetMatchLabels(); got["istio"] != "ingressgateway" || len(got) != 1 {
		t.Errorf("selector %v, want istio=ingressgateway", got)
	}
	if str(s.pluginDoc, "metadata", "namespace") != "istio-system" {
		t.Error("the WasmPlugin belongs in istio-system, beside the gateway")
	}

	hostVars := map[string]bool{}
	for _, e := range p.GetVmConfig().GetEnv() {
		if e.GetValueFrom() != extensions.EnvValueSource_HOST || e.GetValue() != "" {
			t.Errorf("vmConfig.env %s: want valueFrom HOST and no value: keys come from the host environment, never the resource", e.GetName())
		}
		hostVars[e.GetName()] = true
	}

	raw, err := protojson.Marshal(p.GetPluginConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg, asked := checkPluginConfig(t, "WasmPlugin pluginConfig", raw)
	if len(asked) == 0 {
		t.Error("pluginConfig takes no key from the environment")
	}
	for _, name := range asked {
		if !hostVars[name] {
			t.Errorf("pluginConfig reads ${%s}, which vmConfig.env does not pass to the VM", name)
		}
	}
	if strings.Contains(string(raw), `"x-api-key":"x"`) || !strings.Contains(string(raw), "${IPASIS_API_KEY}") {
		t.Error("the API key must be a ${IPASIS_API_KEY} reference in pluginConfig")
	}

	// The callout cluster is the ServiceEntry's: outbound|<port>||<host>.
	host := s.serviceEnt.GetHosts()[0]
	var ports []string
	for _, port := range s.serviceEnt.GetPorts() {
		ports = append(ports, fmt.Sprintf("outbound|%d||%s", port.GetNumber(), host))
	}
	if !slices.Contains(ports, cfg.Provider.Cluster) {
		t.Errorf("provider.cluster %q is none of the ServiceEntry's clusters %v", cfg.Provider.Cluster, ports)
	}
	if cfg.Provider.Authority != host {
		t.Errorf("callout authority %q, ServiceEntry host %q", cfg.Provider.Authority, host)
	}
	if cfg.ClientIP.Source != "source_address" {
		t.Errorf("client_ip.source %q: behind the gateway, Envoy's source address (after numTrustedProxies) is the client", cfg.ClientIP.Source)
	}
}

func TestIstioReputationAPI(t *testing.T) {
	s := loadIstio(t)
	se, dr := s.serviceEnt, s.destRule
	if len(se.GetHosts()) != 1 || se.GetHosts()[0] != "api.ipasis.com" {
		t.Fatalf("ServiceEntry hosts %v, want [api.ipasis.com]", se.GetHosts())
	}
	host := se.GetHosts()[0]
	if se.GetLocation() != networking.ServiceEntry_MESH_EXTERNAL || se.GetResolution() != networking.ServiceEntry_DNS {
		t.Errorf("ServiceEntry location %v resolution %v, want MESH_EXTERNAL DNS", se.GetLocation(), se.GetResolution())
	}
	if len(se.GetPorts()) != 1 || se.GetPorts()[0].GetNumber() != 443 || se.GetPorts()[0].GetProtocol() != "HTTP" {
		t.Errorf("ServiceEntry ports %v, want 443 HTTP (TLS comes from the DestinationRule)", se.GetPorts())
	}
	for what, exp := range map[string][]string{"ServiceEntry": se.GetExportTo(), "DestinationRule": dr.GetExportTo()} {
		if !slices.Equal(exp, []string{"."}) {
			t.Errorf("%s exportTo %v, want [\".\"]: only the gateway's namespace needs the API", what, exp)
		}
	}
	ns := str(s.pluginDoc, "metadata", "namespace")
	for what, d := range map[string]doc{"ServiceEntry": s.seDoc, "DestinationRule": s.drDoc} {
		if got := str(d, "metadata", "namespace"); got != ns {
			t.Errorf("%s in namespace %q, the gateway's WasmPlugin in %q: exported to \".\" it must share the gateway's namespace", what, got, ns)
		}
	}
	if dr.GetHost() != host {
		t.Errorf("DestinationRule host %q, want %q", dr.GetHost(), host)
	}
	var tlsFound bool
	for _, pl := range dr.GetTrafficPolicy().GetPortLevelSettings() {
		if pl.GetPort().GetNumber() != 443 {
			continue
		}
		tlsFound = true
		tls := pl.GetTls()
		if tls.GetMode().String() != "SIMPLE" || tls.GetSni() != host || !slices.Contains(tls.GetSubjectAltNames(), host) {
			t.Errorf("port 443 tls %v: want SIMPLE origination with sni and subjectAltNames %s", tls, host)
		}
		if tls.GetInsecureSkipVerify().GetValue() {
			t.Error("insecureSkipVerify: the API key would go to whoever answers")
		}
	}
	if !tlsFound {
		t.Error("no TLS origination for port 443")
	}
}

func TestIstioGatewayPatch(t *testing.T) {
	s := loadIstio(t)
	containers, _ := at(s.patch, "spec", "template", "spec", "containers").([]any)
	var proxy any
	for _, c := range containers {
		if str(c, "name") == "istio-proxy" {
			proxy = c
		}
	}
	if proxy == nil {
		t.Fatal("gateway-patch.yaml does not patch the istio-proxy container")
	}
	fromSecret := envFromSecret(t, "gateway-patch.yaml", at(proxy, "env"))
	for _, e := range s.plugin.GetVmConfig().GetEnv() {
		if _, ok := fromSecret[e.GetName()]; !ok {
			t.Errorf("vmConfig.env %s (valueFrom HOST) is not set from a Secret on the gateway", e.GetName())
		}
	}
	if got := fromSecret["IPASIS_API_KEY"]; got != [2]string{"ipveil-api-key", "IPASIS_API_KEY"} {
		t.Errorf("IPASIS_API_KEY from Secret %v, want ipveil-api-key/IPASIS_API_KEY as the docs create it", got)
	}

	annotations, _ := at(s.patch, "spec", "template", "metadata", "annotations").(map[string]any)
	proxyConfigYAML, _ := annotations["proxy.istio.io/config"].(string)
	j, err := yaml.YAMLToJSON([]byte(proxyConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	pc := &meshconfig.ProxyConfig{}
	if err := protojson.Unmarshal(j, pc); err != nil {
		t.Fatalf("proxy.istio.io/config does not parse as ProxyConfig: %v", err)
	}
	if pc.GetGatewayTopology() == nil {
		t.Error("proxy.istio.io/config sets no gatewayTopology")
	}
	if n := pc.GetGatewayTopology().GetNumTrustedProxies(); n > 3 {
		t.Errorf("numTrustedProxies %d: more hops than any usual front", n)
	}
	if !slices.Contains(pc.GetProxyStatsMatcher().GetInclusionPrefixes(), "wasmcustom") {
		t.Error("proxyStatsMatcher does not include wasmcustom")
	}
	if got, want := annotations["sidecar.istio.io/bootstrapOverride"], str(s.statsConfig, "metadata", "name"); got != want {
		t.Errorf("sidecar.istio.io/bootstrapOverride %v, want the stats ConfigMap %q", got, want)
	}
	if got := str(s.statsConfig, "metadata", "namespace"); got != "istio-system" {
		t.Errorf("stats ConfigMap in %q, want the gateway's namespace istio-system", got)
	}
}

func istioStatsBootstrap(t *testing.T, s *istioSet) *bootstrapv3.Bootstrap {
	t.Helper()
	custom := str(s.statsConfig, "data", "custom_bootstrap.json")
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal([]byte(custom), b); err != nil {
		t.Fatalf("custom_bootstrap.json does not parse as an Envoy bootstrap: %v", err)
	}
	return b
}

func TestIstioStatsTags(t *testing.T) {
	s := loadIstio(t)
	b := istioStatsBootstrap(t, s)
	if err := b.GetStatsConfig().ValidateAll(); err != nil {
		t.Errorf("stats_config: %v", err)
	}
	checkStatsTags(t, "stats-tags.yaml", b)
}

func TestIstioAccessLog(t *testing.T) {
	s := loadIstio(t)
	if s.mesh.GetAccessLogFile() != "" {
		t.Error("meshConfig.accessLogFile enables Istio's default format, which prints the raw client address")
	}
	var providers []string
	for _, acc := range s.telemetry.GetAccessLogging() {
		for _, p := range acc.GetProviders() {
			providers = append(providers, p.GetName())
		}
	}
	if len(providers) != 1 {
		t.Fatalf("Telemetry access log providers %v, want exactly ipveil's", providers)
	}
	var found bool
	for _, ep := range s.mesh.GetExtensionProviders() {
		if ep.GetName() != providers[0] {
			continue
		}
		found = true
		fl := ep.GetEnvoyFileAccessLog()
		if fl == nil || fl.GetPath() != "/dev/stdout" {
			t.Errorf("provider %s: want an envoyFileAccessLog to /dev/stdout", ep.GetName())
		}
		checkLogFormat(t, "meshConfig provider "+ep.GetName(), fl.GetLogFormat().GetText())
	}
	if !found {
		t.Errorf("Telemetry names provider %q, which meshConfig.extensionProviders does not define", providers[0])
	}
	if !proto.Equal(s.telemetry.GetSelector(), s.plugin.GetSelector()) {
		t.Errorf("Telemetry selects %v, the WasmPlugin %v", s.telemetry.GetSelector(), s.plugin.GetSelector())
	}
}

// ---- Envoy Gateway ----

const egDir = "envoy-gateway/"

type egSet struct {
	policy, patch, proxy, client doc
}

func loadEG(t *testing.T) *egSet {
	t.Helper()
	const api = "gateway.envoyproxy.io/v1alpha1"
	return &egSet{
		policy: oneOf(t, egDir+"envoyextensionpolicy.yaml", api, "EnvoyExtensionPolicy"),
		patch:  oneOf(t, egDir+"reputation-cluster.yaml", api, "EnvoyPatchPolicy"),
		proxy:  oneOf(t, egDir+"envoyproxy.yaml", api, "EnvoyProxy"),
		client: oneOf(t, egDir+"clienttrafficpolicy.yaml", api, "ClientTrafficPolicy"),
	}
}

// gatewayOf returns namespace/name of the Gateway a policy targets.
func gatewayOf(t *testing.T, what string, d doc) string {
	t.Helper()
	ref := at(d, "spec", "targetRef")
	if ref == nil {
		refs, _ := at(d, "spec", "targetRefs").([]any)
		if len(refs) != 1 {
			t.Fatalf("%s: %d targetRefs, want 1", what, len(refs))
		}
		ref = refs[0]
	}
	if str(ref, "group") != "gateway.networking.k8s.io" || str(ref, "kind") != "Gateway" {
		t.Errorf("%s targets %v, want a gateway.networking.k8s.io Gateway", what, ref)
	}
	return str(d, "metadata", "namespace") + "/" + str(ref, "name")
}

func TestEnvoyGatewayExtensionPolicy(t *testing.T) {
	s := loadEG(t)
	wasm, _ := at(s.policy, "spec", "wasm").([]any)
	if len(wasm) != 1 {
		t.Fatalf("%d wasm entries, want 1", len(wasm))
	}
	w := wasm[0]
	if str(w, "code", "type") != "Image" {
		t.Errorf("code.type %q, want Image", str(w, "code", "type"))
	}
	checkPinned(t, "EnvoyExtensionPolicy", str(w, "code", "image", "url"), str(w, "code", "image", "sha256"))
	if fo, set := at(w, "failOpen").(bool); !set || fo {
		t.Errorf("failOpen %v: set it, and false for a security filter", at(w, "failOpen"))
	}
	if str(w, "rootID") != "ipveil" {
		t.Errorf("rootID %q", str(w, "rootID"))
	}
	hostKeys := map[string]bool{}
	keys, _ := at(w, "env", "hostKeys").([]any)
	for _, k := range keys {
		hostKeys[k.(string)] = true
	}

	cfg, asked := checkPluginConfig(t, "EnvoyExtensionPolicy wasm config", mustJSON(t, at(w, "config")))
	for _, name := range asked {
		if !hostKeys[name] {
			t.Errorf("config reads ${%s}, which env.hostKeys does not pass to the VM", name)
		}
	}
	if len(asked) == 0 {
		t.Error("config takes no key from the environment")
	}

	// The cluster the callout names is the one the EnvoyPatchPolicy adds,
	// and it reaches the callout's authority.
	var cluster clusterv3.Cluster
	patches, _ := at(s.patch, "spec", "jsonPatches").([]any)
	var added []string
	for _, p := range patches {
		if str(p, "type") != "type.googleapis.com/envoy.config.cluster.v3.Cluster" || str(p, "operation", "op") != "add" || str(p, "operation", "path") != "" {
			continue
		}
		decode(t, "EnvoyPatchPolicy cluster", at(p, "operation", "value"), &cluster)
		if str(p, "name") != cluster.GetName() {
			t.Errorf("patch name %q, cluster name %q", str(p, "name"), cluster.GetName())
		}
		added = append(added, cluster.GetName())
	}
	if len(added) != 1 || added[0] != cfg.Provider.Cluster {
		t.Fatalf("provider.cluster %q, clusters added by the EnvoyPatchPolicy %v", cfg.Provider.Cluster, added)
	}
	if err := cluster.ValidateAll(); err != nil {
		t.Errorf("cluster: %v", err)
	}
	ep := cluster.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if ep.GetAddress() != cfg.Provider.Authority || ep.GetPortValue() != 443 {
		t.Errorf("cluster endpoint %s:%d, callout authority %s", ep.GetAddress(), ep.GetPortValue(), cfg.Provider.Authority)
	}
	var upstreamTLS tlsv3.UpstreamTlsContext
	if err := cluster.GetTransportSocket().GetTypedConfig().UnmarshalTo(&upstreamTLS); err != nil {
		t.Fatalf("cluster transport socket: %v", err)
	}
	vc := upstreamTLS.GetCommonTlsContext().GetValidationContext()
	if upstreamTLS.GetSni() != cfg.Provider.Authority || vc.GetTrustedCa() == nil || len(vc.GetMatchTypedSubjectAltNames()) == 0 ||
		vc.GetMatchTypedSubjectAltNames()[0].GetMatcher().GetExact() != cfg.Provider.Authority {
		t.Errorf("cluster TLS: sni %q, trusted CA %v, SAN %v: want SNI, CA and name checks for %s",
			upstreamTLS.GetSni(), vc.GetTrustedCa(), vc.GetMatchTypedSubjectAltNames(), cfg.Provider.Authority)
	}

	// The EnvoyProxy sets each host key from a Secret.
	fromSecret := envFromSecret(t, "envoyproxy.yaml", at(s.proxy, "spec", "provider", "kubernetes", "envoyDeployment", "container", "env"))
	for k := range hostKeys {
		if _, ok := fromSecret[k]; !ok {
			t.Errorf("env.hostKeys %s is not set from a Secret by the EnvoyProxy", k)
		}
	}
	if got := fromSecret["IPASIS_API_KEY"]; got != [2]string{"ipveil-api-key", "IPASIS_API_KEY"} {
		t.Errorf("IPASIS_API_KEY from Secret %v, want ipveil-api-key/IPASIS_API_KEY as the docs create it", got)
	}

	// Every policy targets the same Gateway.
	gw := gatewayOf(t, "EnvoyExtensionPolicy", s.policy)
	for what, d := range map[string]doc{"EnvoyPatchPolicy": s.patch, "ClientTrafficPolicy": s.client} {
		if got := gatewayOf(t, what, d); got != gw {
			t.Errorf("%s targets %s, the EnvoyExtensionPolicy %s", what, got, gw)
		}
	}
	if str(s.patch, "spec", "type") != "JSONPatch" {
		t.Errorf("EnvoyPatchPolicy type %q", str(s.patch, "spec", "type"))
	}
	if n, _ := at(s.client, "spec", "clientIPDetection", "xForwardedFor", "numTrustedHops").(float64); n < 1 || n > 3 {
		t.Errorf("numTrustedHops %v", n)
	}
}

func TestEnvoyGatewayProxy(t *testing.T) {
	s := loadEG(t)
	settings, _ := at(s.proxy, "spec", "telemetry", "accessLog", "settings").([]any)
	if len(settings) == 0 {
		t.Fatal("EnvoyProxy sets no access log: Envoy Gateway's default prints the raw client address")
	}
	for i, st := range settings {
		if str(st, "format", "type") != "Text" {
			t.Errorf("access log %d: format type %q", i, str(st, "format", "type"))
		}
		checkLogFormat(t, fmt.Sprintf("EnvoyProxy access log %d", i), str(st, "format", "text"))
	}
	if str(s.proxy, "spec", "bootstrap", "type") != "Merge" {
		t.Errorf("bootstrap type %q, want Merge (Replace would drop Envoy Gateway's own bootstrap)", str(s.proxy, "spec", "bootstrap", "type"))
	}
	j, err := yaml.YAMLToJSON([]byte(str(s.proxy, "spec", "bootstrap", "value")))
	if err != nil {
		t.Fatal(err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(j, b); err != nil {
		t.Fatalf("bootstrap value does not parse as an Envoy bootstrap: %v", err)
	}
	egTags := checkStatsTags(t, "envoyproxy.yaml", b)

	// Istio and Envoy Gateway extract the same tags.
	istioTags := checkStatsTags(t, "stats-tags.yaml", istioStatsBootstrap(t, loadIstio(t)))
	if !slices.Equal(egTags, istioTags) {
		t.Errorf("stats tags differ:\nEnvoy Gateway %v\nIstio         %v", egTags, istioTags)
	}
}

// The pluginConfig documents must stay plain JSON objects once converted.
func TestPluginConfigsAreObjects(t *testing.T) {
	for _, c := range []struct {
		file string
		path []any
	}{
		{istioDir + "wasmplugin.yaml", []any{"spec", "pluginConfig"}},
		{egDir + "envoyextensionpolicy.yaml", []any{"spec", "wasm", 0, "config"}},
	} {
		for _, d := range readDocs(t, c.file) {
			v := at(d, c.path...)
			if _, ok := v.(map[string]any); !ok {
				t.Errorf("%s: %v is %T, want an object", c.file, c.path, v)
				continue
			}
			if _, err := structpb.NewStruct(v.(map[string]any)); err != nil {
				t.Errorf("%s: %v", c.file, err)
			}
		}
	}
}

// The operator guide shows the same tag regexes and cluster names as the
// manifests.
func TestOperatorGuideMatchesManifests(t *testing.T) {
	guide, err := os.ReadFile("../docs/operators.md")
	if err != nil {
		t.Fatal(err)
	}
	s := loadEG(t)
	j, err := yaml.YAMLToJSON([]byte(str(s.proxy, "spec", "bootstrap", "value")))
	if err != nil {
		t.Fatal(err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(j, b); err != nil {
		t.Fatal(err)
	}
	var inGuide []string
	for _, m := range regexp.MustCompile(`(?m)^\s*regex: '([^']+)'$`).FindAllStringSubmatch(string(guide), -1) {
		inGuide = append(inGuide, m[1])
	}
	var inManifest []string
	for _, tag := range b.GetStatsConfig().GetStatsTags() {
		inManifest = append(inManifest, tag.GetRegex())
	}
	if !slices.Equal(inGuide, inManifest) {
		t.Errorf("docs/operators.md shows tag regexes\n%v\nthe manifests use\n%v", inGuide, inManifest)
	}
	istio := loadIstio(t)
	raw, err := protojson.Marshal(istio.plugin.GetPluginConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := checkPluginConfig(t, "WasmPlugin pluginConfig", raw)
	egCfg, _ := checkPluginConfig(t, "EnvoyExtensionPolicy config", mustJSON(t, at(s.policy, "spec", "wasm", 0, "config")))
	for _, name := range []string{cfg.Provider.Cluster, egCfg.Provider.Cluster} {
		if !strings.Contains(string(guide), "**`"+name+"`**") {
			t.Errorf("docs/operators.md does not name the cluster %s", name)
		}
	}
}

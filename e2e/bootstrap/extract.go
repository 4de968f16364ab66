package bootstrap

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const (
	hcmName    = "envoy.filters.network.http_connection_manager"
	wasmName   = "envoy.filters.http.wasm"
	routerName = "envoy.filters.http.router"
)

// httpFilterTypes maps each supported HTTP filter to its config type.
var httpFilterTypes = map[string]protoreflect.FullName{
	wasmName:   (&wasmfilterv3.Wasm{}).ProtoReflect().Descriptor().FullName(),
	routerName: (&routerv3.Router{}).ProtoReflect().Descriptor().FullName(),
}

// accessLogTypes maps each supported access logger to its config type.
var accessLogTypes = map[string]protoreflect.FullName{
	"envoy.access_loggers.file":   (&filev3.FileAccessLog{}).ProtoReflect().Descriptor().FullName(),
	"envoy.access_loggers.stdout": (&streamv3.StdoutAccessLog{}).ProtoReflect().Descriptor().FullName(),
	"envoy.access_loggers.stderr": (&streamv3.StderrAccessLog{}).ProtoReflect().Descriptor().FullName(),
}

// wasmRuntimes are the runtimes a real Envoy may be asked for; devproxy runs
// every one of them on wazero, which behaves the same for a standard module.
var wasmRuntimes = []string{
	"envoy.wasm.runtime.v8",
	"envoy.wasm.runtime.wamr",
	"envoy.wasm.runtime.wasmtime",
}

type extractor struct {
	baseDir  string
	errs     *problems
	clusters map[string]*Cluster
}

// only records a problem for every populated field of m outside allowed.
// It is what keeps devproxy from silently ignoring a setting.
func (x *extractor) only(path string, m proto.Message, allowed ...string) {
	var bad []string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		name := string(fd.Name())
		for _, a := range allowed {
			if a == name {
				return true
			}
		}
		bad = append(bad, name)
		return true
	})
	sort.Strings(bad)
	supported := "devproxy supports none of its settings"
	if len(allowed) > 0 {
		supported = "supported: " + strings.Join(allowed, ", ")
	}
	for _, name := range bad {
		x.errs.addf(joinPath(path, name), "not supported by devproxy in %s (%s); remove it, or test this setting against a real Envoy",
			m.ProtoReflect().Descriptor().Name(), supported)
	}
}

// unpack decodes a typed_config and runs Envoy's validation rules on it.
func (x *extractor) unpack(path string, a *anypb.Any) proto.Message {
	m, err := a.UnmarshalNew()
	if err != nil {
		x.errs.addf(path, "cannot decode %s: %v", a.GetTypeUrl(), err)
		return nil
	}
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		n := x.errs.len()
		addValidation(x.errs, path, v.ValidateAll())
		if x.errs.len() > n {
			return nil
		}
	}
	return m
}

func (x *extractor) bootstrap(bs *bootstrapv3.Bootstrap) *Config {
	// node only names this proxy to a control plane; devproxy has none, so
	// it changes nothing and is accepted.
	x.only("", bs, "admin", "static_resources", "node")
	if n := bs.GetNode(); n != nil {
		x.only("node", n, "id", "cluster")
	}
	cfg := &Config{Clusters: map[string]*Cluster{}}
	x.clusters = cfg.Clusters
	if a := bs.GetAdmin(); a != nil {
		x.only("admin", a, "address")
		if addr := x.socketAddress("admin.address", a.GetAddress()); addr != "" {
			cfg.Admin = &Admin{Address: addr}
		} else if a.GetAddress() == nil {
			x.errs.addf("admin.address", "missing: give admin a socket_address such as 127.0.0.1:9901, or remove the admin block")
		}
	}
	sr := bs.GetStaticResources()
	if sr == nil {
		x.errs.addf("static_resources", "missing: devproxy runs the listener and clusters in static_resources")
		return cfg
	}
	x.only("static_resources", sr, "listeners", "clusters")
	for i, c := range sr.GetClusters() {
		path := fmt.Sprintf("static_resources.clusters[%d]", i)
		cl := x.cluster(path, c)
		if cl == nil {
			continue
		}
		if _, dup := cfg.Clusters[cl.Name]; dup {
			x.errs.addf(path+".name", "cluster %q is defined twice: cluster names must be unique", cl.Name)
			continue
		}
		cfg.Clusters[cl.Name] = cl
	}
	switch n := len(sr.GetListeners()); {
	case n == 0:
		x.errs.addf("static_resources.listeners", "missing: devproxy needs exactly one listener")
	case n > 1:
		x.errs.addf("static_resources.listeners", "%d listeners: devproxy runs exactly one; keep one listener (with its routes) per file", n)
	default:
		x.listener("static_resources.listeners[0]", sr.GetListeners()[0], &cfg.Listener)
	}
	return cfg
}

// socketAddress returns host:port for an address that is a socket_address.
func (x *extractor) socketAddress(path string, a *corev3.Address) string {
	if a == nil {
		return ""
	}
	x.only(path, a, "socket_address")
	sa := a.GetSocketAddress()
	if sa == nil {
		return ""
	}
	spath := path + ".socket_address"
	x.only(spath, sa, "address", "port_value", "protocol")
	if sa.GetProtocol() != corev3.SocketAddress_TCP {
		x.errs.addf(spath+".protocol", "%s is not supported by devproxy: it serves TCP only", sa.GetProtocol())
		return ""
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
}

func (x *extractor) cluster(path string, c *clusterv3.Cluster) *Cluster {
	x.only(path, c, "name", "type", "connect_timeout", "load_assignment", "dns_lookup_family")
	cl := &Cluster{Name: c.GetName(), ConnectTimeout: DefaultConnectTimeout}
	switch c.GetType() {
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS:
		cl.Type = c.GetType().String()
	default:
		x.errs.addf(path+".type", "cluster type %s is not supported by devproxy (supported: STATIC, STRICT_DNS)", c.GetType())
		return nil
	}
	if c.GetClusterType() != nil {
		x.errs.addf(path+".cluster_type", "custom cluster types are not supported by devproxy (supported: type STATIC, STRICT_DNS)")
		return nil
	}
	if d := c.GetConnectTimeout(); d != nil {
		cl.ConnectTimeout = d.AsDuration()
	}
	la := c.GetLoadAssignment()
	if la == nil {
		return cl
	}
	lpath := path + ".load_assignment"
	x.only(lpath, la, "cluster_name", "endpoints")
	for i, loc := range la.GetEndpoints() {
		epath := fmt.Sprintf("%s.endpoints[%d]", lpath, i)
		x.only(epath, loc, "lb_endpoints")
		for j, lb := range loc.GetLbEndpoints() {
			bpath := fmt.Sprintf("%s.lb_endpoints[%d]", epath, j)
			x.only(bpath, lb, "endpoint")
			ep := lb.GetEndpoint()
			if ep == nil {
				x.errs.addf(bpath+".endpoint", "missing: give the endpoint an address")
				continue
			}
			x.only(bpath+".endpoint", ep, "address")
			apath := bpath + ".endpoint.address"
			hostport := x.socketAddress(apath, ep.GetAddress())
			if hostport == "" {
				if ep.GetAddress() == nil {
					x.errs.addf(apath, "missing: give the endpoint a socket_address")
				}
				continue
			}
			host := ep.GetAddress().GetSocketAddress().GetAddress()
			if !x.loopback(apath+".socket_address.address", cl, host) {
				continue
			}
			cl.Endpoints = append(cl.Endpoints, hostport)
		}
	}
	return cl
}

// loopback checks that an endpoint stays on this machine: the local stack
// never sends traffic anywhere else.
func (x *extractor) loopback(path string, cl *Cluster, host string) bool {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if cl.Type == "STRICT_DNS" && strings.EqualFold(host, "localhost") {
			return true
		}
		if cl.Type == "STATIC" {
			x.errs.addf(path, "%q is not an IP address: a STATIC cluster needs IP endpoints (Envoy rejects host names here); use 127.0.0.1", host)
			return false
		}
		x.errs.addf(path, "cluster %q points at %q: devproxy reaches loopback only (127.0.0.0/8, ::1, localhost); run the service on this machine, or use a real Envoy for remote upstreams", cl.Name, host)
		return false
	}
	if !ip.Unmap().IsLoopback() {
		x.errs.addf(path, "cluster %q points at %s, which is not loopback: devproxy reaches loopback only (127.0.0.0/8, ::1); run the service on this machine, or use a real Envoy for remote upstreams", cl.Name, ip)
		return false
	}
	return true
}

func (x *extractor) listener(path string, l *listenerv3.Listener, out *Listener) {
	x.only(path, l, "name", "address", "filter_chains")
	out.Name = l.GetName()
	out.Address = x.socketAddress(path+".address", l.GetAddress())
	if out.Address == "" && l.GetAddress() == nil {
		x.errs.addf(path+".address", "missing: give the listener a socket_address such as 127.0.0.1:10000")
	}
	chains := l.GetFilterChains()
	if len(chains) != 1 {
		x.errs.addf(path+".filter_chains", "%d filter chains: devproxy runs exactly one, holding the HTTP connection manager", len(chains))
		return
	}
	cpath := path + ".filter_chains[0]"
	fc := chains[0]
	if fc.GetTransportSocket() != nil {
		x.errs.addf(cpath+".transport_socket", "%s", tlsUnsupported)
	}
	x.only(cpath, fc, "name", "filters", "transport_socket")
	if len(fc.GetFilters()) != 1 {
		x.errs.addf(cpath+".filters", "%d network filters: devproxy runs exactly one, %s", len(fc.GetFilters()), hcmName)
		return
	}
	fpath := cpath + ".filters[0]"
	f := fc.GetFilters()[0]
	x.only(fpath, f, "name", "typed_config")
	tc := f.GetTypedConfig()
	if tc == nil {
		x.errs.addf(fpath+".typed_config", "missing: the filter needs a typed_config of type %s", (&hcmv3.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName())
		return
	}
	m := x.unpack(fpath+".typed_config", tc)
	if m == nil {
		return
	}
	hcm, ok := m.(*hcmv3.HttpConnectionManager)
	if !ok {
		x.errs.addf(fpath, "network filter %q is not supported by devproxy (supported: %s)", filterLabel(f.GetName(), string(m.ProtoReflect().Descriptor().FullName())), hcmName)
		return
	}
	x.hcm(fpath+".typed_config", hcm, out)
}

func (x *extractor) hcm(path string, h *hcmv3.HttpConnectionManager, out *Listener) {
	x.only(path, h, "stat_prefix", "codec_type", "use_remote_address", "xff_num_trusted_hops", "route_config", "http_filters", "access_log")
	switch h.GetCodecType() {
	case hcmv3.HttpConnectionManager_AUTO, hcmv3.HttpConnectionManager_HTTP1:
	default:
		x.errs.addf(path+".codec_type", "%s is not supported by devproxy: it speaks HTTP/1.1 (use AUTO or HTTP1)", h.GetCodecType())
	}
	out.StatPrefix = h.GetStatPrefix()
	out.UseRemoteAddress = h.GetUseRemoteAddress().GetValue()
	out.XFFNumTrustedHops = h.GetXffNumTrustedHops()

	if h.GetRds() != nil {
		x.errs.addf(path+".rds", "RDS is not supported by devproxy: put the routes inline in route_config")
	}
	if rc := h.GetRouteConfig(); rc != nil {
		out.Routes = x.routes(path+".route_config", rc)
	} else if h.GetRds() == nil {
		x.errs.addf(path+".route_config", "missing: devproxy needs an inline route_config")
	}

	filters := h.GetHttpFilters()
	for i, f := range filters {
		fpath := fmt.Sprintf("%s.http_filters[%d]", path, i)
		x.only(fpath, f, "name", "typed_config")
		tc := f.GetTypedConfig()
		if tc == nil {
			x.errs.addf(fpath+".typed_config", "missing: filter %q needs a typed_config", f.GetName())
			continue
		}
		m := x.unpack(fpath+".typed_config", tc)
		if m == nil {
			continue
		}
		switch c := m.(type) {
		case *routerv3.Router:
			x.only(fpath+".typed_config", c)
			if i != len(filters)-1 {
				x.errs.addf(fpath, "the router must be the last HTTP filter (Envoy rejects filters after it)")
			}
		case *wasmfilterv3.Wasm:
			if w, ok := x.wasm(fpath+".typed_config", c); ok {
				out.Wasm = append(out.Wasm, w)
			}
		default:
			x.errs.addf(fpath, "filter %q is not supported by devproxy (supported: %s)",
				filterLabel(f.GetName(), string(m.ProtoReflect().Descriptor().FullName())), strings.Join(sortedNames(httpFilterTypes), ", "))
		}
	}
	if n := len(filters); n == 0 || !isRouter(filters[n-1]) {
		x.errs.addf(path+".http_filters", "the last HTTP filter must be %s (Envoy needs a terminal filter to send requests upstream)", routerName)
	}

	for i, al := range h.GetAccessLog() {
		if log := x.accessLog(fmt.Sprintf("%s.access_log[%d]", path, i), al); log != nil {
			out.AccessLogs = append(out.AccessLogs, log)
		}
	}
}

func isRouter(f *hcmv3.HttpFilter) bool {
	return f.GetTypedConfig().MessageName() == httpFilterTypes[routerName]
}

func (x *extractor) routes(path string, rc *routev3.RouteConfiguration) []Route {
	x.only(path, rc, "name", "virtual_hosts")
	var out []Route
	for i, vh := range rc.GetVirtualHosts() {
		vpath := fmt.Sprintf("%s.virtual_hosts[%d]", path, i)
		x.only(vpath, vh, "name", "domains", "routes")
		for j, r := range vh.GetRoutes() {
			rpath := fmt.Sprintf("%s.routes[%d]", vpath, j)
			x.only(rpath, r, "name", "match", "route")
			m := r.GetMatch()
			x.only(rpath+".match", m, "prefix")
			if m.GetPathSpecifier() == nil {
				x.errs.addf(rpath+".match", "devproxy matches routes by prefix only: set match.prefix")
				continue
			}
			if _, ok := m.GetPathSpecifier().(*routev3.RouteMatch_Prefix); !ok {
				continue // reported by only above
			}
			a := r.GetRoute()
			if a == nil {
				x.errs.addf(rpath+".route", "missing: devproxy supports routes that forward to a cluster (route.cluster)")
				continue
			}
			x.only(rpath+".route", a, "cluster", "timeout")
			if a.GetCluster() == "" {
				if a.GetClusterSpecifier() == nil {
					x.errs.addf(rpath+".route.cluster", "missing: name the cluster this route forwards to")
				}
				continue
			}
			if _, ok := x.clusters[a.GetCluster()]; !ok {
				x.errs.addf(rpath+".route.cluster", "unknown cluster %q: define it in static_resources.clusters (Envoy rejects this too)", a.GetCluster())
			}
			timeout := DefaultRouteTimeout
			if d := a.GetTimeout(); d != nil {
				timeout = d.AsDuration()
			}
			out = append(out, Route{
				Domains: append([]string(nil), vh.GetDomains()...),
				Prefix:  m.GetPrefix(),
				Cluster: a.GetCluster(),
				Timeout: timeout,
			})
		}
	}
	return out
}

func (x *extractor) wasm(path string, w *wasmfilterv3.Wasm) (WasmFilter, bool) {
	x.only(path, w, "config")
	pc := w.GetConfig()
	if pc == nil {
		x.errs.addf(path+".config", "missing: the wasm filter needs config (name, root_id, vm_config, configuration)")
		return WasmFilter{}, false
	}
	ppath := path + ".config"
	x.only(ppath, pc, "name", "root_id", "vm_config", "configuration", "fail_open", "failure_policy", "allow_on_headers_stop_iteration")
	n := x.errs.len()
	out := WasmFilter{Name: pc.GetName(), RootID: pc.GetRootId(), AllowOnHeadersStopIteration: pc.GetAllowOnHeadersStopIteration().GetValue()}

	failOpen := pc.GetFailOpen() //nolint:staticcheck // deprecated, but Envoy still honours it
	if failOpen && pc.GetFailurePolicy() != wasmv3.FailurePolicy_UNSPECIFIED {
		x.errs.addf(ppath+".fail_open", "set together with failure_policy: Envoy accepts only one of them; keep failure_policy (fail_open is deprecated)")
	}
	switch pc.GetFailurePolicy() {
	case wasmv3.FailurePolicy_UNSPECIFIED:
		out.FailOpen = failOpen
	case wasmv3.FailurePolicy_FAIL_OPEN:
		out.FailOpen = true
	case wasmv3.FailurePolicy_FAIL_CLOSED:
	default:
		x.errs.addf(ppath+".failure_policy", "%s is not supported by devproxy (supported: FAIL_OPEN, FAIL_CLOSED)", pc.GetFailurePolicy())
	}

	if c := pc.GetConfiguration(); c != nil {
		out.Configuration = x.pluginBytes(ppath+".configuration", c)
	}

	vm := pc.GetVmConfig()
	if vm == nil {
		x.errs.addf(ppath+".vm_config", "missing: devproxy needs vm_config with code.local.filename")
		return out, false
	}
	vpath := ppath + ".vm_config"
	x.only(vpath, vm, "vm_id", "runtime", "code", "configuration", "environment_variables")
	out.VMID = vm.GetVmId()
	if rt := vm.GetRuntime(); rt != "" && !contains(wasmRuntimes, rt) {
		x.errs.addf(vpath+".runtime", "%q is not supported by devproxy (supported: %s); a Go module needs a real Wasm runtime", rt, strings.Join(wasmRuntimes, ", "))
	}
	if c := vm.GetConfiguration(); c != nil {
		out.VMConfiguration = x.pluginBytes(vpath+".configuration", c)
	}
	out.CodePath = x.code(vpath+".code", vm.GetCode())
	out.Env = x.env(vpath+".environment_variables", vm.GetEnvironmentVariables())
	return out, x.errs.len() == n
}

func (x *extractor) code(path string, c *corev3.AsyncDataSource) string {
	if c == nil {
		x.errs.addf(path, "missing: set code.local.filename to the module, e.g. build/ipveil.wasm")
		return ""
	}
	if c.GetRemote() != nil {
		x.errs.addf(path+".remote", "remote Wasm code is not supported by devproxy (it fetches nothing over the network): download the module and set code.local.filename")
		return ""
	}
	local := c.GetLocal()
	if local == nil {
		x.errs.addf(path+".local", "missing: set code.local.filename to the module, e.g. build/ipveil.wasm")
		return ""
	}
	x.only(path+".local", local, "filename")
	name := local.GetFilename()
	if name == "" {
		if local.GetSpecifier() == nil {
			x.errs.addf(path+".local.filename", "missing: name the module file, e.g. build/ipveil.wasm")
		}
		return ""
	}
	return x.abs(name)
}

func (x *extractor) abs(name string) string {
	if filepath.IsAbs(name) {
		return filepath.Clean(name)
	}
	return filepath.Join(x.baseDir, name)
}

// pluginBytes returns what Envoy hands the plugin for a configuration Any.
func (x *extractor) pluginBytes(path string, a *anypb.Any) []byte {
	m := x.unpack(path, a)
	switch v := m.(type) {
	case nil:
		return nil
	case *wrapperspb.StringValue:
		return []byte(v.GetValue())
	case *wrapperspb.BytesValue:
		return v.GetValue()
	case *structpb.Struct:
		b, err := protojson.Marshal(v)
		if err != nil {
			x.errs.addf(path, "cannot turn the Struct into JSON: %v", err)
			return nil
		}
		return b
	default:
		x.errs.addf(path, "type %s is not supported by devproxy: use google.protobuf.StringValue holding the plugin's JSON", a.GetTypeUrl())
		return nil
	}
}

func (x *extractor) env(path string, ev *wasmv3.EnvironmentVariables) map[string]string {
	if ev == nil {
		return nil
	}
	out := map[string]string{}
	for _, k := range ev.GetHostEnvKeys() {
		if v, ok := os.LookupEnv(k); ok {
			out[k] = v
		}
	}
	for _, k := range sortedNames(ev.GetKeyValues()) {
		if contains(ev.GetHostEnvKeys(), k) {
			x.errs.addf(path+".key_values", "key %q is also in host_env_keys: give each variable once (Envoy rejects duplicates)", k)
			continue
		}
		out[k] = ev.GetKeyValues()[k]
	}
	return out
}

func (x *extractor) accessLog(path string, al *accesslogv3.AccessLog) *AccessLog {
	x.only(path, al, "name", "typed_config")
	tc := al.GetTypedConfig()
	if tc == nil {
		x.errs.addf(path+".typed_config", "missing: the access log needs a typed_config (file, stdout or stderr logger)")
		return nil
	}
	tpath := path + ".typed_config"
	m := x.unpack(tpath, tc)
	if m == nil {
		return nil
	}
	out := &AccessLog{}
	var sfs *corev3.SubstitutionFormatString
	switch c := m.(type) {
	case *filev3.FileAccessLog:
		x.only(tpath, c, "path", "format", "log_format")
		if c.GetPath() == "" {
			x.errs.addf(tpath+".path", "missing: name the log file, or use the stdout logger")
			return nil
		}
		out.Path = x.abs(c.GetPath())
		if strings.HasPrefix(c.GetPath(), "/dev/") {
			out.Path = c.GetPath()
		}
		switch f := c.GetAccessLogFormat().(type) {
		case *filev3.FileAccessLog_Format:
			return x.format(tpath+".format", out, f.Format)
		case *filev3.FileAccessLog_LogFormat:
			sfs = f.LogFormat
		}
	case *streamv3.StdoutAccessLog:
		x.only(tpath, c, "log_format")
		out.Path = "/dev/stdout"
		sfs = c.GetLogFormat()
	case *streamv3.StderrAccessLog:
		x.only(tpath, c, "log_format")
		out.Path = "/dev/stderr"
		sfs = c.GetLogFormat()
	default:
		x.errs.addf(path, "access logger %q is not supported by devproxy (supported: %s)",
			filterLabel(al.GetName(), string(m.ProtoReflect().Descriptor().FullName())), strings.Join(sortedNames(accessLogTypes), ", "))
		return nil
	}
	if sfs == nil {
		if _, err := CompileFormat(DefaultFormat); err != nil {
			x.errs.addf(path, "no log format is set, so Envoy would use its default format, which writes the client address (%%REQ(X-FORWARDED-FOR)%%); set log_format.text_format_source.inline_string and log the masked address with %%FILTER_STATE(wasm.ipveil.client:PLAIN)%% instead")
			return nil
		}
		return x.format(path, out, DefaultFormat)
	}
	fpath := tpath + ".log_format"
	x.only(fpath, sfs, "text_format", "text_format_source")
	switch {
	case sfs.GetTextFormatSource() != nil:
		src := sfs.GetTextFormatSource()
		spath := fpath + ".text_format_source"
		x.only(spath, src, "inline_string", "inline_bytes", "filename")
		switch s := src.GetSpecifier().(type) {
		case *corev3.DataSource_InlineString:
			return x.format(spath+".inline_string", out, s.InlineString)
		case *corev3.DataSource_InlineBytes:
			return x.format(spath+".inline_bytes", out, string(s.InlineBytes))
		case *corev3.DataSource_Filename:
			b, err := os.ReadFile(x.abs(s.Filename))
			if err != nil {
				x.errs.addf(spath+".filename", "cannot read the format file: %v", err)
				return nil
			}
			return x.format(spath+".filename", out, string(b))
		}
		return nil
	case sfs.GetFormat() != nil:
		return x.format(fpath+".text_format", out, sfs.GetTextFormat())
	default:
		x.errs.addf(fpath, "missing: set text_format_source.inline_string")
		return nil
	}
}

func (x *extractor) format(path string, out *AccessLog, s string) *AccessLog {
	f, err := CompileFormat(s)
	if err != nil {
		x.errs.addf(path, "%v", err)
		return nil
	}
	out.Format = f
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

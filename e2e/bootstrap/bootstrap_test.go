package bootstrap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// base is a small bootstrap inside the supported subset. Test cases edit it
// with plain string replacement, so each case shows exactly what changed.
const base = `
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 9901 }
static_resources:
  listeners:
  - name: ingress
    address:
      socket_address: { address: 127.0.0.1, port_value: 10000 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          use_remote_address: true
          xff_num_trusted_hops: 1
          route_config:
            virtual_hosts:
            - name: app
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: app }
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: ipveil
                root_id: ipveil
                vm_config:
                  vm_id: ipveil
                  runtime: envoy.wasm.runtime.v8
                  code: { local: { filename: build/ipveil.wasm } }
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{"mode":"enforce"}'
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          access_log:
          - name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
              log_format:
                text_format_source:
                  inline_string: "%REQ(:METHOD)% %RESPONSE_CODE% client=%FILTER_STATE(wasm.ipveil.client:PLAIN)%\n"
  clusters:
  - name: reputation
    type: STRICT_DNS
    connect_timeout: 0.25s
    load_assignment:
      cluster_name: reputation
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: 10001 }
  - name: app
    load_assignment:
      cluster_name: app
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: 10002 }
`

// edit replaces old with new in base and fails the test when old is absent,
// so a stale case cannot pass by testing the unedited base.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := base
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("test bug: %q is not in the base bootstrap", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

const (
	hcmPath    = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"
	wasmCfg    = hcmPath + ".http_filters[0].typed_config.config"
	stdoutLog  = hcmPath + ".access_log[0]"
	clusterApp = "static_resources.clusters[1]"
)

func TestParseBase(t *testing.T) {
	cfg, err := Parse([]byte(base), "/srv/stack")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin == nil || cfg.Admin.Address != "127.0.0.1:9901" {
		t.Errorf("Admin = %+v, want 127.0.0.1:9901", cfg.Admin)
	}
	l := cfg.Listener
	if l.Name != "ingress" || l.Address != "127.0.0.1:10000" || l.StatPrefix != "ingress" || !l.UseRemoteAddress || l.XFFNumTrustedHops != 1 {
		t.Errorf("Listener = %+v", l)
	}
	if len(l.Routes) != 1 || l.Routes[0].Prefix != "/" || l.Routes[0].Cluster != "app" ||
		l.Routes[0].Timeout != DefaultRouteTimeout || strings.Join(l.Routes[0].Domains, ",") != "*" {
		t.Errorf("Routes = %+v", l.Routes)
	}
	if len(l.Wasm) != 1 {
		t.Fatalf("Wasm = %+v", l.Wasm)
	}
	w := l.Wasm[0]
	if w.Name != "ipveil" || w.RootID != "ipveil" || w.VMID != "ipveil" || w.FailOpen ||
		w.CodePath != filepath.Join("/srv/stack", "build/ipveil.wasm") || string(w.Configuration) != `{"mode":"enforce"}` ||
		w.VMConfiguration != nil || w.Env != nil {
		t.Errorf("Wasm[0] = %+v", w)
	}
	rep, app := cfg.Clusters["reputation"], cfg.Clusters["app"]
	if rep == nil || rep.Type != "STRICT_DNS" || rep.ConnectTimeout != 250*time.Millisecond || strings.Join(rep.Endpoints, ",") != "127.0.0.1:10001" {
		t.Errorf("reputation = %+v", rep)
	}
	if app == nil || app.Type != "STATIC" || app.ConnectTimeout != DefaultConnectTimeout || strings.Join(app.Endpoints, ",") != "127.0.0.1:10002" {
		t.Errorf("app = %+v", app)
	}
	if len(l.AccessLogs) != 1 || l.AccessLogs[0].Path != "/dev/stdout" {
		t.Fatalf("AccessLogs = %+v", l.AccessLogs)
	}
	got := l.AccessLogs[0].Format.Render(&LogEntry{Method: "GET", Status: 403, FilterState: func(n string) (string, bool) {
		return map[string]string{"wasm.ipveil.client": "203.0.113.0/24"}[n], n == "wasm.ipveil.client"
	}})
	if got != "GET 403 client=203.0.113.0/24\n" {
		t.Errorf("access log line = %q", got)
	}
}

func TestParseVariants(t *testing.T) {
	t.Setenv("IPVEIL_TEST_HOST_KEY", "from-host")
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{"no admin", edit(t, "admin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: 9901 }\n", ""),
			func(t *testing.T, c *Config) {
				if c.Admin != nil {
					t.Errorf("Admin = %+v, want nil", c.Admin)
				}
			}},
		{"ipv6 listener on any port", edit(t, "{ address: 127.0.0.1, port_value: 10000 }", "{ address: '::1', port_value: 0 }"),
			func(t *testing.T, c *Config) {
				if c.Listener.Address != "[::1]:0" {
					t.Errorf("Address = %q", c.Listener.Address)
				}
			}},
		{"failure_policy FAIL_OPEN", edit(t, "root_id: ipveil\n", "root_id: ipveil\n                failure_policy: FAIL_OPEN\n"),
			func(t *testing.T, c *Config) {
				if !c.Listener.Wasm[0].FailOpen {
					t.Error("FailOpen = false")
				}
			}},
		{"deprecated fail_open", edit(t, "root_id: ipveil\n", "root_id: ipveil\n                fail_open: true\n"),
			func(t *testing.T, c *Config) {
				if !c.Listener.Wasm[0].FailOpen {
					t.Error("FailOpen = false")
				}
			}},
		{"failure_policy FAIL_CLOSED", edit(t, "root_id: ipveil\n", "root_id: ipveil\n                failure_policy: FAIL_CLOSED\n"),
			func(t *testing.T, c *Config) {
				if c.Listener.Wasm[0].FailOpen {
					t.Error("FailOpen = true")
				}
			}},
		{"environment and vm configuration", edit(t, "vm_id: ipveil\n", `vm_id: ipveil
                  environment_variables:
                    host_env_keys: [IPVEIL_TEST_HOST_KEY, IPVEIL_TEST_UNSET_KEY]
                    key_values: { IPVEIL_API_KEY: demo-key }
                  configuration:
                    "@type": type.googleapis.com/google.protobuf.BytesValue
                    value: aGVsbG8=
`),
			func(t *testing.T, c *Config) {
				w := c.Listener.Wasm[0]
				if len(w.Env) != 2 || w.Env["IPVEIL_API_KEY"] != "demo-key" || w.Env["IPVEIL_TEST_HOST_KEY"] != "from-host" {
					t.Errorf("Env = %v", w.Env)
				}
				if string(w.VMConfiguration) != "hello" {
					t.Errorf("VMConfiguration = %q", w.VMConfiguration)
				}
			}},
		{"struct configuration becomes JSON", edit(t, `"@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{"mode":"enforce"}'`, `"@type": type.googleapis.com/google.protobuf.Struct
                  value: { mode: monitor }`),
			func(t *testing.T, c *Config) {
				if s := strings.ReplaceAll(string(c.Listener.Wasm[0].Configuration), " ", ""); s != `{"mode":"monitor"}` {
					t.Errorf("Configuration = %s", s)
				}
			}},
		{"absolute code path", edit(t, "filename: build/ipveil.wasm", "filename: /opt/ipveil.wasm"),
			func(t *testing.T, c *Config) {
				if c.Listener.Wasm[0].CodePath != "/opt/ipveil.wasm" {
					t.Errorf("CodePath = %q", c.Listener.Wasm[0].CodePath)
				}
			}},
		{"route timeout and several hosts", edit(t, "route: { cluster: app }", "route: { cluster: app, timeout: 0s }\n            - name: api\n              domains: [api.example]\n              routes:\n              - match: { prefix: /v1 }\n                route: { cluster: reputation, timeout: 2s }"),
			func(t *testing.T, c *Config) {
				r := c.Listener.Routes
				if len(r) != 2 || r[0].Timeout != 0 || r[1].Timeout != 2*time.Second || r[1].Prefix != "/v1" || r[1].Domains[0] != "api.example" || r[1].Cluster != "reputation" {
					t.Errorf("Routes = %+v", r)
				}
			}},
		{"file logger with deprecated format", edit(t, `- name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
              log_format:
                text_format_source:
                  inline_string:`, `- name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: logs/access.log
              format:`),
			func(t *testing.T, c *Config) {
				a := c.Listener.AccessLogs[0]
				if a.Path != "/srv/stack/logs/access.log" {
					t.Errorf("Path = %q", a.Path)
				}
				if got := a.Format.Render(&LogEntry{Method: "PUT", Status: 200}); got != "PUT 200 client=-\n" {
					t.Errorf("line = %q", got)
				}
			}},
		{"stderr logger with text_format", edit(t, `StdoutAccessLog
              log_format:
                text_format_source:
                  inline_string:`, `StderrAccessLog
              log_format:
                text_format:`),
			func(t *testing.T, c *Config) {
				if c.Listener.AccessLogs[0].Path != "/dev/stderr" {
					t.Errorf("Path = %q", c.Listener.AccessLogs[0].Path)
				}
			}},
		{"localhost STRICT_DNS and camelCase keys", edit(t, "{ address: 127.0.0.1, port_value: 10001 }", "{ address: localhost, portValue: 10001 }"),
			func(t *testing.T, c *Config) {
				if got := c.Clusters["reputation"].Endpoints[0]; got != "localhost:10001" {
					t.Errorf("Endpoints[0] = %q", got)
				}
			}},
		{"json input", `{"static_resources":{"listeners":[{"name":"l","address":{"socket_address":{"address":"127.0.0.1","port_value":1}},"filter_chains":[{"filters":[{"name":"hcm","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager","stat_prefix":"s","route_config":{},"http_filters":[{"name":"envoy.filters.http.router","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}]}}`,
			func(t *testing.T, c *Config) {
				if c.Listener.Name != "l" || len(c.Clusters) != 0 || len(c.Listener.Wasm) != 0 {
					t.Errorf("Config = %+v", c)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), "/srv/stack")
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of one problem, path first
	}{
		{"empty file", "  \n", []string{"the file is empty"}},
		{"not yaml", "admin: [unclosed", []string{"not valid YAML"}},
		{"not a mapping", "- a\n- b\n", []string{"must be a mapping", "a list"}},
		{"unknown field with suggestion", edit(t, "stat_prefix: ingress", "stat_prefx: ingress"),
			[]string{hcmPath + ".stat_prefx: unknown field", `did you mean "stat_prefix"?`}},
		{"unknown top-level field", "statz: 1\n" + base, []string{`statz: unknown field in envoy.config.bootstrap.v3.Bootstrap`}},
		{"wrong bool", edit(t, "use_remote_address: true", "use_remote_address: maybe"),
			[]string{hcmPath + `.use_remote_address: wants true or false, got "maybe"`}},
		{"wrong scalar", edit(t, "xff_num_trusted_hops: 1", "xff_num_trusted_hops: one"),
			[]string{hcmPath + `.xff_num_trusted_hops: wants a number, got "one"`}},
		{"wrong enum", edit(t, "type: STRICT_DNS", "type: STRICT"),
			[]string{`static_resources.clusters[0].type: "STRICT" is not a value of DiscoveryType (one of: STATIC, STRICT_DNS`}},
		{"wrong list", edit(t, `domains: ["*"]`, `domains: "*"`),
			[]string{hcmPath + `.route_config.virtual_hosts[0].domains: wants a list, got a string`}},
		{"bad duration", edit(t, "connect_timeout: 0.25s", "connect_timeout: quarter"),
			[]string{"does not decode as an Envoy v3 Bootstrap", "quarter"}},
		{"envoy validation rule", edit(t, "          stat_prefix: ingress\n", ""),
			[]string{hcmPath + ".stat_prefix: Envoy would reject this", "at least 1"}},
		{"lua filter", edit(t, "http_filters:\n", `http_filters:
          - name: envoy.filters.http.lua
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
              default_source_code: { inline_string: "" }
`), []string{hcmPath + `.http_filters[0]: filter "envoy.filters.http.lua" is not supported by devproxy (supported: envoy.filters.http.router, envoy.filters.http.wasm)`}},
		{"known type used as a filter", edit(t, "http_filters:\n", `http_filters:
          - name: my.filter
            typed_config:
              "@type": type.googleapis.com/google.protobuf.StringValue
              value: x
`), []string{hcmPath + `.http_filters[0]: filter "my.filter" is not supported by devproxy`}},
		{"misspelled wasm type", edit(t, "http.wasm.v3.Wasm", "http.wasm.v3.Wsam"),
			[]string{hcmPath + ".http_filters[0].typed_config", "misspelled?", "envoy.extensions.filters.http.wasm.v3.Wasm"}},
		{"router not last", edit(t, `          access_log:
`, `          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                vm_config: { code: { local: { filename: x.wasm } } }
          access_log:
`), []string{hcmPath + ".http_filters[1]: the router must be the last HTTP filter"}},
		{"no router", edit(t, `          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
`, ""), []string{hcmPath + ".http_filters: the last HTTP filter must be envoy.filters.http.router"}},
		{"router setting", edit(t, "router.v3.Router\n", "router.v3.Router\n              suppress_envoy_headers: true\n"),
			[]string{hcmPath + ".http_filters[1].typed_config.suppress_envoy_headers: not supported by devproxy in Router (devproxy supports none of its settings)"}},
		{"two listeners", edit(t, "  clusters:\n", `  - name: second
    address:
      socket_address: { address: 127.0.0.1, port_value: 10005 }
  clusters:
`), []string{"static_resources.listeners: 2 listeners: devproxy runs exactly one"}},
		{"no listener", "static_resources: { clusters: [] }\n", []string{"static_resources.listeners: missing"}},
		{"no static resources", "admin: { address: { socket_address: { address: 127.0.0.1, port_value: 1 } } }\n", []string{"static_resources: missing"}},
		{"tls transport socket", edit(t, "    filter_chains:\n    - filters:\n", `    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
      filters:
`), []string{"static_resources.listeners[0].filter_chains[0].transport_socket: TLS transport sockets are not supported by devproxy"}},
		{"raw buffer transport socket", edit(t, "    filter_chains:\n    - filters:\n", `    filter_chains:
    - transport_socket:
        name: raw
        typed_config:
          "@type": type.googleapis.com/google.protobuf.Empty
      filters:
`), []string{"static_resources.listeners[0].filter_chains[0].transport_socket: TLS transport sockets are not supported by devproxy"}},
		{"listener filter", edit(t, "    filter_chains:\n", `    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector
    filter_chains:
`), []string{"static_resources.listeners[0].listener_filters[0]: listener filters are not supported by devproxy"}},
		{"other network filter", edit(t, `      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
			`      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`),
			[]string{"filters[0]: network filter \"envoy.filters.network.tcp_proxy\" is not supported by devproxy (supported: envoy.filters.network.http_connection_manager)"}},
		{"http2 codec", edit(t, "stat_prefix: ingress", "stat_prefix: ingress\n          codec_type: HTTP2"),
			[]string{hcmPath + ".codec_type: HTTP2 is not supported by devproxy"}},
		{"rds", edit(t, "stat_prefix: ingress", "stat_prefix: ingress\n          rds: { route_config_name: r, config_source: { ads: {} } }"),
			[]string{"does not decode"}}, // rds and route_config are one oneof: Envoy's types refuse both
		{"unsupported hcm field", edit(t, "stat_prefix: ingress", "stat_prefix: ingress\n          skip_xff_append: true"),
			[]string{hcmPath + ".skip_xff_append: not supported by devproxy in HttpConnectionManager (supported: stat_prefix, codec_type"}},
		{"regex route", edit(t, `match: { prefix: "/" }`, `match: { safe_regex: { regex: ".*" } }`),
			[]string{hcmPath + ".route_config.virtual_hosts[0].routes[0].match.safe_regex: not supported by devproxy in RouteMatch (supported: prefix)"}},
		{"direct response route", edit(t, "route: { cluster: app }", "direct_response: { status: 200 }"),
			[]string{hcmPath + ".route_config.virtual_hosts[0].routes[0].direct_response: not supported by devproxy in Route"}},
		{"unknown route cluster", edit(t, "route: { cluster: app }", "route: { cluster: ap }"),
			[]string{hcmPath + `.route_config.virtual_hosts[0].routes[0].route.cluster: unknown cluster "ap"`}},
		{"non-loopback static cluster", edit(t, "{ address: 127.0.0.1, port_value: 10002 }", "{ address: 10.1.2.3, port_value: 10002 }"),
			[]string{clusterApp + ".load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: cluster \"app\" points at 10.1.2.3, which is not loopback"}},
		{"remote dns cluster", edit(t, "{ address: 127.0.0.1, port_value: 10001 }", "{ address: api.ipasis.example, port_value: 443 }"),
			[]string{`cluster "reputation" points at "api.ipasis.example": devproxy reaches loopback only`}},
		{"static cluster with host name", edit(t, "{ address: 127.0.0.1, port_value: 10002 }", "{ address: localhost, port_value: 10002 }"),
			[]string{`"localhost" is not an IP address: a STATIC cluster needs IP endpoints`}},
		{"logical dns cluster", edit(t, "type: STRICT_DNS", "type: LOGICAL_DNS"),
			[]string{"static_resources.clusters[0].type: cluster type LOGICAL_DNS is not supported by devproxy (supported: STATIC, STRICT_DNS)"}},
		{"eds cluster", edit(t, "type: STRICT_DNS", "type: EDS"),
			[]string{"static_resources.clusters[0].type: cluster type EDS is not supported"}},
		{"lb policy", edit(t, "type: STRICT_DNS", "type: STRICT_DNS\n    lb_policy: LEAST_REQUEST"),
			[]string{"static_resources.clusters[0].lb_policy: not supported by devproxy in Cluster"}},
		{"duplicate cluster", edit(t, "\n  - name: app\n", "\n  - name: reputation\n"),
			[]string{`static_resources.clusters[1].name: cluster "reputation" is defined twice`}},
		{"udp endpoint", edit(t, "{ address: 127.0.0.1, port_value: 10002 }", "{ address: 127.0.0.1, port_value: 10002, protocol: UDP }"),
			[]string{"socket_address.protocol: UDP is not supported by devproxy"}},
		{"remote wasm code", edit(t, "code: { local: { filename: build/ipveil.wasm } }",
			"code: { remote: { http_uri: { uri: 'https://example.com/x.wasm', cluster: app, timeout: 1s }, sha256: abc } }"),
			[]string{wasmCfg + ".vm_config.code.remote: remote Wasm code is not supported by devproxy"}},
		{"inline wasm code", edit(t, "code: { local: { filename: build/ipveil.wasm } }", "code: { local: { inline_string: abc } }"),
			[]string{wasmCfg + ".vm_config.code.local.inline_string: not supported by devproxy in DataSource (supported: filename)"}},
		{"missing vm config", edit(t, "                vm_config:\n                  vm_id: ipveil\n                  runtime: envoy.wasm.runtime.v8\n                  code: { local: { filename: build/ipveil.wasm } }\n", ""),
			[]string{wasmCfg + ".vm_config: missing"}},
		{"null runtime", edit(t, "runtime: envoy.wasm.runtime.v8", "runtime: envoy.wasm.runtime.null"),
			[]string{wasmCfg + `.vm_config.runtime: "envoy.wasm.runtime.null" is not supported by devproxy`}},
		{"fail_open with failure_policy", edit(t, "root_id: ipveil\n", "root_id: ipveil\n                fail_open: true\n                failure_policy: FAIL_OPEN\n"),
			[]string{wasmCfg + ".fail_open: set together with failure_policy: Envoy accepts only one of them"}},
		{"fail reload", edit(t, "root_id: ipveil\n", "root_id: ipveil\n                failure_policy: FAIL_RELOAD\n"),
			[]string{wasmCfg + ".failure_policy: FAIL_RELOAD is not supported by devproxy"}},
		{"configuration of another type", edit(t, `"@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{"mode":"enforce"}'`, `"@type": type.googleapis.com/google.protobuf.UInt32Value
                  value: 3`),
			[]string{wasmCfg + ".configuration: type type.googleapis.com/google.protobuf.UInt32Value is not supported by devproxy: use google.protobuf.StringValue"}},
		{"env key twice", edit(t, "vm_id: ipveil\n", "vm_id: ipveil\n                  environment_variables: { host_env_keys: [K], key_values: { K: v } }\n"),
			[]string{wasmCfg + `.vm_config.environment_variables.key_values: key "K" is also in host_env_keys`}},
		{"unknown access log command", edit(t, "%RESPONSE_CODE%", "%REQUESTED_SERVER_NAME%"),
			[]string{stdoutLog + ".typed_config.log_format.text_format_source.inline_string: access-log format: %REQUESTED_SERVER_NAME% is not supported by devproxy (supported: START_TIME"}},
		{"downstream remote address", edit(t, "%RESPONSE_CODE%", "%DOWNSTREAM_REMOTE_ADDRESS%"),
			[]string{"writes the raw client address with %DOWNSTREAM_REMOTE_ADDRESS%", "%FILTER_STATE(wasm.ipveil.client:PLAIN)% instead"}},
		{"x-forwarded-for", edit(t, "%RESPONSE_CODE%", "%REQ(X-FORWARDED-FOR)%"),
			[]string{"writes the raw client address with %REQ(X-FORWARDED-FOR)%"}},
		{"default format", edit(t, `
              log_format:
                text_format_source:
                  inline_string: "%REQ(:METHOD)% %RESPONSE_CODE% client=%FILTER_STATE(wasm.ipveil.client:PLAIN)%\n"`, ""),
			[]string{stdoutLog + ": no log format is set, so Envoy would use its default format, which writes the client address (%REQ(X-FORWARDED-FOR)%)", "%FILTER_STATE(wasm.ipveil.client:PLAIN)% instead"}},
		{"json log format", edit(t, `text_format_source:
                  inline_string: "%REQ(:METHOD)% %RESPONSE_CODE% client=%FILTER_STATE(wasm.ipveil.client:PLAIN)%\n"`, `json_format: { method: "%REQ(:METHOD)%" }`),
			[]string{stdoutLog + ".typed_config.log_format.json_format: not supported by devproxy in SubstitutionFormatString (supported: text_format, text_format_source)"}},
		{"access log filter", edit(t, "          - name: envoy.access_loggers.stdout\n", "          - name: envoy.access_loggers.stdout\n            filter: { not_health_check_filter: {} }\n"),
			[]string{stdoutLog + ".filter: not supported by devproxy in AccessLog"}},
		{"other access logger", edit(t, `- name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog`, `- name: envoy.access_loggers.http_grpc
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig`),
			[]string{stdoutLog + `: access logger "envoy.access_loggers.http_grpc" is not supported by devproxy (supported: envoy.access_loggers.file, envoy.access_loggers.stderr, envoy.access_loggers.stdout)`}},
		{"unsupported bootstrap section", edit(t, "static_resources:\n", "layered_runtime: { layers: [ { name: static, static_layer: {} } ] }\nstatic_resources:\n"),
			[]string{"layered_runtime: not supported by devproxy in Bootstrap (supported: admin, static_resources, node)"}},
		{"admin access log", edit(t, "admin:\n", "admin:\n  profile_path: /tmp/p\n"),
			[]string{"admin.profile_path: not supported by devproxy in Admin (supported: address)"}},
		{"missing @type", edit(t, `"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router`, `{}`),
			[]string{hcmPath + `.http_filters[1].typed_config: "@type" is missing`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "/srv/stack")
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error is %T, want *Error: %v", err, err)
			}
			for _, p := range perr.Problems {
				s := p.String()
				ok := true
				for _, w := range tc.want {
					if !strings.Contains(s, w) {
						ok = false
					}
				}
				if ok {
					return
				}
			}
			t.Errorf("no problem contains all of %q; got:\n%v", tc.want, err)
		})
	}
}

func TestErrorListsEveryProblem(t *testing.T) {
	y := strings.Replace(strings.Replace(base, "type: STRICT_DNS", "type: LOGICAL_DNS", 1),
		"{ address: 127.0.0.1, port_value: 10002 }", "{ address: 192.0.2.1, port_value: 10002 }", 1)
	_, err := Parse([]byte(y), "")
	var perr *Error
	if !errors.As(err, &perr) || len(perr.Problems) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
	if !strings.HasPrefix(err.Error(), "Envoy bootstrap: 2 problems:\n  static_resources.clusters[0].type") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestLoadResolvesAgainstFileDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "build", "ipveil.wasm"); cfg.Listener.Wasm[0].CodePath != want {
		t.Errorf("CodePath = %q, want %q", cfg.Listener.Wasm[0].CodePath, want)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "read Envoy bootstrap") {
		t.Errorf("Load(missing) = %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("statz: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.HasPrefix(err.Error(), bad+": statz: unknown field") {
		t.Errorf("Load(bad) = %v", err)
	}
}

// TestRootEnvoyYAML checks the bootstrap the project ships: it decodes with
// Envoy's types, passes Envoy's validation (typed configs included), and
// describes the local stack the README and the scenario tests rely on.
func TestRootEnvoyYAML(t *testing.T) {
	cfg, err := Load("../../envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("../..")
	if cfg.Admin == nil || cfg.Admin.Address != "127.0.0.1:9901" {
		t.Errorf("Admin = %+v", cfg.Admin)
	}
	l := cfg.Listener
	if l.Address != "127.0.0.1:10000" || l.StatPrefix != "ingress" || !l.UseRemoteAddress || l.XFFNumTrustedHops != 1 {
		t.Errorf("Listener = %+v", l)
	}
	if len(l.Routes) != 1 || l.Routes[0].Prefix != "/" || l.Routes[0].Cluster != "app" {
		t.Errorf("Routes = %+v", l.Routes)
	}
	if len(l.Wasm) != 1 {
		t.Fatalf("Wasm = %+v", l.Wasm)
	}
	w := l.Wasm[0]
	if w.Name != "ipveil" || w.RootID != "ipveil" || w.VMID != "ipveil" || w.CodePath != filepath.Join(root, "build", "ipveil.wasm") || w.Env["IPVEIL_API_KEY"] != "demo-key" {
		t.Errorf("Wasm[0] = %+v", w)
	}
	for _, s := range []string{`"preset": "ipasis"`, `"cluster": "reputation"`, `"timeout_ms": 300`, `"${IPVEIL_API_KEY}"`, `"ipv4_prefix": 24`} {
		if !strings.Contains(string(w.Configuration), s) {
			t.Errorf("plugin configuration lacks %s", s)
		}
	}
	rep, app := cfg.Clusters["reputation"], cfg.Clusters["app"]
	if rep == nil || rep.Type != "STRICT_DNS" || rep.ConnectTimeout != 250*time.Millisecond || strings.Join(rep.Endpoints, ",") != "127.0.0.1:10001" {
		t.Errorf("reputation = %+v", rep)
	}
	if app == nil || app.Type != "STATIC" || strings.Join(app.Endpoints, ",") != "127.0.0.1:10002" {
		t.Errorf("app = %+v", app)
	}
	if len(l.AccessLogs) != 1 || l.AccessLogs[0].Path != "/dev/stdout" {
		t.Fatalf("AccessLogs = %+v", l.AccessLogs)
	}
	f := l.AccessLogs[0].Format
	if !strings.HasSuffix(f.String(), "\n") {
		t.Error("the access-log format must end with a newline: a real Envoy adds none")
	}
	state := map[string]string{"wasm.ipveil.client": "203.0.113.0/24", "wasm.ipveil.verdict": "block", "wasm.ipveil.reason": "tor"}
	line := f.Render(&LogEntry{
		Start: time.Date(2026, 4, 15, 20, 17, 0, 310e6, time.UTC), Method: "GET", Path: "/", Protocol: "HTTP/1.1",
		Status: 403, Duration: 12 * time.Millisecond,
		FilterState: func(n string) (string, bool) { v, ok := state[n]; return v, ok },
	})
	want := `[2026-04-15T20:17:00.310Z] "GET / HTTP/1.1" 403 12ms client=203.0.113.0/24 verdict=block reason=tor` + "\n"
	if line != want {
		t.Errorf("access-log line\n got %q\nwant %q", line, want)
	}
}

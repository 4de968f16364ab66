package e2e

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/ipveil/ipveil/e2e/internal/wasmtest"
)

// envoyHostFunctions are the env.proxy_* functions Envoy ≥ 1.39 provides
// (proxy-wasm-cpp-host's FOR_ALL_HOST_FUNCTIONS and the 0.2.x ABI-specific
// ones).
var envoyHostFunctions = strings.Fields(`
	proxy_log proxy_get_status proxy_set_property proxy_get_property proxy_send_local_response
	proxy_get_shared_data proxy_set_shared_data proxy_register_shared_queue proxy_resolve_shared_queue
	proxy_dequeue_shared_queue proxy_enqueue_shared_queue proxy_get_header_map_value
	proxy_add_header_map_value proxy_replace_header_map_value proxy_remove_header_map_value
	proxy_get_header_map_pairs proxy_set_header_map_pairs proxy_get_header_map_size
	proxy_get_buffer_status proxy_get_buffer_bytes proxy_set_buffer_bytes
	proxy_http_call proxy_grpc_call proxy_grpc_stream proxy_grpc_close proxy_grpc_cancel proxy_grpc_send
	proxy_set_tick_period_milliseconds proxy_get_current_time_nanoseconds proxy_define_metric
	proxy_increment_metric proxy_record_metric proxy_get_metric proxy_set_effective_context proxy_done
	proxy_call_foreign_function
	proxy_get_configuration proxy_continue_request proxy_continue_response proxy_clear_route_cache
	proxy_continue_stream proxy_close_stream proxy_get_log_level`)

// envoyWASIFunctions are the wasi_snapshot_preview1 functions Envoy ≥ 1.39
// implements (proxy-wasm-cpp-host FOR_ALL_WASI_FUNCTIONS, with the Go
// runtime's needs added by proxy-wasm-cpp-host #533). Those that are
// stubs in Envoy are left out on purpose: the module must not need them.
var envoyWASIFunctions = strings.Fields(`
	fd_write fd_read fd_seek fd_close fd_fdstat_get fd_fdstat_set_flags fd_prestat_get fd_prestat_dir_name
	environ_get environ_sizes_get args_get args_sizes_get clock_time_get clock_res_get
	random_get sched_yield poll_oneoff proc_exit`)

func TestModuleImportsOnlyWhatEnvoyProvides(t *testing.T) {
	for _, m := range []wasmtest.Module{wasmtest.Ipveil, wasmtest.Null} {
		t.Run(string(m), func(t *testing.T) {
			code, err := wasmtest.Bytes(m)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
			defer r.Close(ctx)
			cm, err := r.CompileModule(ctx, code)
			if err != nil {
				t.Fatalf("the module does not compile: %v", err)
			}
			allowed := map[string]bool{}
			for _, f := range envoyHostFunctions {
				allowed["env."+f] = true
			}
			for _, f := range envoyWASIFunctions {
				allowed["wasi_snapshot_preview1."+f] = true
			}
			var imports []string
			for _, f := range cm.ImportedFunctions() {
				mod, name, _ := f.Import()
				imports = append(imports, mod+"."+name)
				if !allowed[mod+"."+name] {
					t.Errorf("imports %s.%s, which Envoy ≥ 1.39 does not provide: the module would fail to load (did something import package net?)", mod, name)
				}
			}
			sort.Strings(imports)
			t.Logf("%s imports %d functions: %s", m, len(imports), strings.Join(imports, " "))

			exports := cm.ExportedFunctions()
			for _, want := range []string{"_initialize", "proxy_abi_version_0_2_1", "proxy_on_memory_allocate",
				"proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure", "proxy_on_request_headers",
				"proxy_on_http_call_response", "proxy_on_log", "proxy_on_done", "proxy_on_delete"} {
				if _, ok := exports[want]; !ok {
					t.Errorf("does not export %s", want)
				}
			}
			if _, ok := exports["_start"]; ok {
				t.Errorf("exports _start: a Proxy-Wasm module must be a reactor (-buildmode=c-shared)")
			}
		})
	}
}

// Command ipveil is the Proxy-Wasm module: build it with `make wasm`
// (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared through internal/wasmbuild)
// and load build/ipveil.wasm in Envoy ≥ 1.39. The module is a reactor: the
// host calls _initialize, which runs init(); main never runs.
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/ipveil/ipveil/filter"
)

func init() { proxywasm.SetVMContext(filter.NewVMContext()) }

func main() {}

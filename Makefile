# ipveil — the two commands a newcomer needs:
#   make run    the local stack: the real build/ipveil.wasm behind a proxy,
#               a mock reputation API and an echo upstream
#   make test   every test: unit, proxytest, the compiled module, end to end
#
# Everything else is built or installed by these targets.

GO         ?= go
WASM       := build/ipveil.wasm
NULL_WASM  := build/null.wasm
FUZZTIME   ?= 20s

.PHONY: help wasm test unit e2e run bench fuzz lint check-config clean

help:
	@echo "make run           start the local stack on 127.0.0.1:10000 (Ctrl-C stops it)"
	@echo "make test          run every test (lint, unit, proxytest, module, end to end)"
	@echo "make wasm          build $(WASM) with the standard Go toolchain"
	@echo "make e2e           run the end-to-end scenario table over real HTTP"
	@echo "make bench         run the benchmarks and write build/bench.json"
	@echo "make fuzz          run every fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "make check-config  validate CONFIG=file.json like the plugin does at start"
	@echo "make oci           package the module as an OCI image under build/oci (VARIANT=compat|oci)"
	@echo "make push          push it: make push IMAGE=registry/name:tag (prints the digest to pin)"

wasm:
	$(GO) run ./internal/wasmbuild -o $(WASM) .

$(NULL_WASM):
	$(GO) run ./internal/wasmbuild -o $(NULL_WASM) ./e2e/nullmodule

test: lint wasm
	$(GO) test -count=1 ./...

unit:
	$(GO) test -count=1 ./anonymize/... ./policy/... ./filter/... ./internal/... ./cmd/...

e2e: wasm
	$(GO) test -count=1 ./e2e/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^internal/wasmbuild/_overlay/')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

run: wasm
	./scripts/run-local.sh

bench: wasm $(NULL_WASM)
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./e2e/bench/... -args -bench-json=$(CURDIR)/build/bench.json

fuzz:
	@for dir in $$(grep -rlE --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -hoE '^func Fuzz[A-Za-z0-9_]+' $$dir/*_test.go | sed 's/func //'); do \
	    echo "== $$dir $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$dir || exit 1; \
	  done; done

check-config:
	@test -n "$(CONFIG)" || { echo "usage: make check-config CONFIG=path/to/config.json"; exit 2; }
	$(GO) run ./cmd/ipveil check-config $(CONFIG)

clean:
	rm -rf build

# Packaging for Istio and Envoy Gateway (docs/operators.md):
#   make oci                        build/oci (an OCI image layout) and build/ipveil-oci.tar
#                                   holding build/ipveil.wasm; prints the image digest.
#                                   VARIANT=compat (default: one tar+gzip layer with plugin.wasm)
#                                   or VARIANT=oci (the two-layer Wasm artifact).
#   make push IMAGE=reg/name:tag    push it with your docker login credentials; prints
#                                   reg/name@sha256:… to pin (INSECURE=1 for a plain-HTTP registry).
VARIANT    ?= compat
OCI_DIR    := build/oci
OCI_TAR    := build/ipveil-oci.tar

.PHONY: oci push

ifneq ($(filter push,$(MAKECMDGOALS)),)
ifeq ($(IMAGE),)
$(error usage: make push IMAGE=registry/name:tag [VARIANT=compat|oci] [INSECURE=1])
endif
endif

oci: wasm
	$(GO) run ./cmd/ipveil-oci build -variant $(VARIANT) -layout $(OCI_DIR) -tar $(OCI_TAR) $(WASM)

push: oci
	$(GO) run ./cmd/ipveil-oci push -layout $(OCI_DIR) $(if $(INSECURE),-insecure) $(IMAGE)

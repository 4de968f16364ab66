#!/usr/bin/env bash
# The local stack behind `make run`: the mock reputation API, the echo
# upstream and a proxy running envoy.yaml with build/ipveil.wasm, in the
# foreground. Ctrl-C stops all three.
#
# The proxy is a real Envoy when an `envoy` >= 1.39 is on PATH, otherwise
# devproxy (a development host for the module, not a production proxy).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
mkdir -p build/bin
"$GO" build -o build/bin/ ./e2e/cmd/mockrep ./e2e/cmd/echo ./e2e/cmd/devproxy

for port in 10000 10001 10002 9901; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "run-local: something already listens on 127.0.0.1:$port (another make run?); stop it first" >&2
    exit 1
  fi
done

pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

envoy_ok() {
  command -v envoy >/dev/null 2>&1 || return 1
  local v
  v=$(envoy --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1) || return 1
  [ -n "$v" ] || return 1
  local major minor
  major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
  [ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -ge 39 ]; }
}

build/bin/mockrep -listen 127.0.0.1:10001 -fixtures e2e/testdata/fixtures.json \
  -api-key-header x-api-key -api-key demo-key &
pids+=($!)
build/bin/echo -listen 127.0.0.1:10002 &
pids+=($!)

if envoy_ok; then
  echo "proxy: $(command -v envoy) ($(envoy --version | head -n1))"
  envoy -c envoy.yaml --log-level info &
else
  echo "proxy: devproxy (no envoy >= 1.39 on PATH; devproxy is a development host, not a production proxy)"
  build/bin/devproxy -c envoy.yaml -cache-dir build/wazero-cache &
fi
pids+=($!)

# Wait until the listener answers (the first start compiles the module).
for _ in $(seq 1 300); do
  if curl -s -o /dev/null -m 1 -H 'x-forwarded-for: 192.0.2.10' http://127.0.0.1:10000/healthz 2>/dev/null; then
    break
  fi
  sleep 0.2
done

cat <<'MSG'

ipveil is running on http://127.0.0.1:10000 (admin http://127.0.0.1:9901/stats). Try:

  curl -i -H 'x-forwarded-for: 203.0.113.7' http://127.0.0.1:10000/   # Tor exit: 403
  curl -i -H 'x-forwarded-for: 192.0.2.44'  http://127.0.0.1:10000/   # medium score: 429 challenge
  curl -i -H 'x-forwarded-for: 192.0.2.10'  http://127.0.0.1:10000/   # clean: 200 from the echo upstream

The access log below shows the masked client (203.0.113.0/24), never the address. Ctrl-C stops all.

MSG
wait -n "${pids[@]}"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_kv_health.sh SERVER RAWRPC_KV -- "rawrpc-kv health" against a server
# serving only rawrpc::health: SERVING for the server, NOT_SERVING and
# NOT_FOUND (exit 1) by name, --target and --host/--port alike; SIGTERM
# stops the server cleanly.
set -euo pipefail
server=$1
kv=$2
log=$(mktemp)
"$server" >"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    grep -q '^port ' "$log" && break
    sleep 0.05
done
port=$(sed -n 's/^port //p' "$log")
[ -n "$port" ] || { echo "health: the server did not start"; exit 1; }

[ "$("$kv" --target "127.0.0.1:$port" health)" = SERVING ]
[ "$("$kv" --port "$port" health)" = SERVING ]
[ "$("$kv" --target "127.0.0.1:$port" health demo.Down)" = NOT_SERVING ]
if out=$("$kv" --target "127.0.0.1:$port" health no.Such 2>&1); then
    echo "health: an unknown service answered: $out"
    exit 1
fi
grep -q '^NOT_FOUND' <<<"$out"
kill -TERM "$pid"
wait "$pid"
echo "health: rawrpc-kv health works against a health-only server"

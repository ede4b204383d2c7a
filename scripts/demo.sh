#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# demo.sh -- installs what is missing, builds, starts the kv server on a
# port the kernel picks, talks to it with the generated client, and stops
# it gracefully.  Every step says what it shows.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ rawrpc-kv'; printf ' %q' "$@"; echo; }
run() { show "$@"; "$kv" --port "$port" "$@"; }
# A failure the demo wants to show: print it, check the exit code.
run_fails() {
    show "$@"
    if "$kv" --port "$port" "$@"; then
        echo "demo: expected that call to fail" >&2
        exit 1
    fi
}

say "installing what is missing, then building (build-demo/)"
./scripts/install-deps.sh
cmake -S . -B build-demo -DRAWRPC_TESTS=OFF >/dev/null
cmake --build build-demo -j"$(nproc)" --target rawrpc-kv-server rawrpc-kv \
    rawrpc-cli >/dev/null
server=build-demo/services/rawrpc-kv-server
kv=build-demo/services/rawrpc-kv
cli=build-demo/tools/cli/rawrpc
# The command-line caller, which needs no generated code: the server's
# reflection gives it the descriptors.
rawrpc() {
    printf '$ rawrpc'
    printf ' %q' "$@"
    echo
    "$cli" "$@"
}

say "starting rawrpc-kv-server on 127.0.0.1, port chosen by the kernel"
log=$(mktemp)
"$server" --host 127.0.0.1 --port 0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    grep -q 'listening on' "$log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.05
done
cat "$log"
port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$log")
[ -n "$port" ] || { echo "demo: the server did not start" >&2; exit 1; }

say "put: each call is one REQUEST frame and one RESPONSE on one connection"
run put user/ada "Ada Lovelace"
run put user/alan "Alan Turing"
run put user/grace "Grace Hopper"
run put motd "hello from rawrpc"

say "get: the value comes back as bytes"
run get user/ada
run get motd

say "list: keys with a prefix, in order, paged by the server"
run list user/

say "a miss: the server answers NOT_FOUND, the client exits non-zero"
run_fails get user/nobody

say "a deadline: Sleep takes 2 s, the caller allows 200 ms"
echo "(the client gives up at 200 ms and sends CANCEL; the server stops the sleep)"
run_fails --deadline-ms 200 sleep 2000
run sleep 100

say "rawrpc, the command-line caller: what the server serves, by reflection"
rawrpc list "127.0.0.1:$port"
rawrpc list "127.0.0.1:$port" rawrpc.kv.Kv
rawrpc describe "127.0.0.1:$port" rawrpc.kv.GetRequest

say "rawrpc call: JSON in, JSON out (bytes as base64), the status as the exit code"
rawrpc call "127.0.0.1:$port" rawrpc.kv.Kv/Get '{"key": "user/ada"}'
rawrpc call "127.0.0.1:$port" rawrpc.kv.Kv/List '{"prefix": "user/"}'
if rawrpc call "127.0.0.1:$port" rawrpc.kv.Kv/Get '{"key": "user/nobody"}'; then
    echo "demo: expected NOT_FOUND" >&2
    exit 1
fi

say "health: the server, and the kv service by name"
run health
run health rawrpc.kv.Kv

say "stopping the server with SIGTERM: GOAWAY, finish calls, close cleanly"
kill -TERM "$pid"
wait "$pid"
trap 'rm -f "$log"' EXIT
sed -n '2,$p' "$log"
say "done: the server exited 0"

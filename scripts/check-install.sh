#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-install.sh -- installs rawrpc into a temporary prefix, then builds
# and runs tests/consumer against it: with find_package(rawrpc), including
# services of its own through rawrpc_generate() and rawrpc_add_test() (one
# on the well-known types), and with pkg-config; then examples/template:
# its test, its server with rawrpc::health asked by the installed
# rawrpc-kv, and a graceful SIGTERM.  Proves the installed package works
# for users.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake -S . -B "$tmp/build" -DRAWRPC_TESTS=OFF -DCMAKE_INSTALL_PREFIX="$prefix" \
    ${RAWRPC_CMAKE_ARGS:-} >/dev/null
cmake --build "$tmp/build" -j"$(nproc)" >/dev/null
cmake --install "$tmp/build" >/dev/null

libdir=$(dirname "$(find "$prefix" -name 'librawrpc.so' | head -n1)")
export LD_LIBRARY_PATH=$libdir

echo "check-install: find_package(rawrpc)"
cmake -S tests/consumer -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/consumer" -j2 >"$tmp/consumer.log"
"$tmp/consumer/consumer"
"$tmp/consumer/consumer_static"
# Three targets generate hello.proto: protoc runs once.
runs=$(grep -c 'rawrpc_generate hello.proto' "$tmp/consumer.log" || true)
if [ "$runs" -ne 1 ]; then
    echo "check-install: protoc ran $runs times on hello.proto" >&2
    exit 1
fi
echo "check-install: the consumer's own services, generated and tested"
ctest --test-dir "$tmp/consumer" --output-on-failure

echo "check-install: pkg-config rawrpc"
export PKG_CONFIG_PATH=$libdir/pkgconfig
# shellcheck disable=SC2046 # pkg-config prints a list of words
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer_pc" tests/consumer/main.c \
    $(pkg-config --cflags --libs rawrpc)
"$tmp/consumer_pc"

echo "check-install: examples/template, built and tested"
cmake -S examples/template -B "$tmp/template" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS=-Werror >/dev/null
cmake --build "$tmp/template" -j2 >/dev/null
ctest --test-dir "$tmp/template" --output-on-failure
log=$tmp/server.log
"$tmp/template/greeter-server" 127.0.0.1:0 >"$log" &
pid=$!
for _ in $(seq 100); do
    grep -q 'listening on port' "$log" && break
    sleep 0.05
done
port=$(sed -n 's/.*listening on port //p' "$log")
[ -n "$port" ] || { cat "$log"; kill "$pid"; exit 1; }
"$tmp/template/greeter-client" "127.0.0.1:$port" check-install
kv=$prefix/bin/rawrpc-kv
[ "$("$kv" --target "127.0.0.1:$port" health)" = SERVING ]
[ "$("$kv" --target "127.0.0.1:$port" health greeter.v1.Greeter)" = SERVING ]
kill -TERM "$pid"
wait "$pid" # exits 0 after a graceful shutdown
grep -q 'bye' "$log"
echo "check-install: ok"

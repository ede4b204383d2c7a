#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-install.sh -- installs rawrpc into a temporary prefix, then builds
# and runs tests/consumer against it: with find_package(rawrpc), including
# a service of its own through rawrpc_generate() and rawrpc_add_test(),
# and with pkg-config.  Proves the installed package works for users.
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
cmake --build "$tmp/consumer" >/dev/null
"$tmp/consumer/consumer"
"$tmp/consumer/consumer_static"
echo "check-install: the consumer's own service, generated and tested"
ctest --test-dir "$tmp/consumer" --output-on-failure

echo "check-install: pkg-config rawrpc"
export PKG_CONFIG_PATH=$libdir/pkgconfig
# shellcheck disable=SC2046 # pkg-config prints a list of words
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer_pc" tests/consumer/main.c \
    $(pkg-config --cflags --libs rawrpc)
"$tmp/consumer_pc"
echo "check-install: ok"

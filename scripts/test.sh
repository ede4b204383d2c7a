#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test.sh -- installs what is missing, builds, and runs every test: each
# cmocka program and each fuzz-corpus replay under valgrind memcheck (zero
# errors, zero leaks).
#
#   ./scripts/test.sh              the README's test command
#   ./scripts/test.sh --sanitize   the ASan+UBSan build instead of valgrind
#
# Extra CMake arguments come from RAWRPC_CMAKE_ARGS (CI passes
# -DRAWRPC_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
args=(-DRAWRPC_TESTS=ON -DRAWRPC_VALGRIND=ON -DRAWRPC_SANITIZE=OFF)
if [ "${1:-}" = "--sanitize" ]; then
    build=build-asan
    args=(-DRAWRPC_TESTS=ON -DRAWRPC_SANITIZE=ON)
fi

./scripts/install-deps.sh
# shellcheck disable=SC2086 # RAWRPC_CMAKE_ARGS is a list of words
cmake -S . -B "$build" "${args[@]}" ${RAWRPC_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"

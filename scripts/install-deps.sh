#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# install-deps.sh [PACKAGE...] -- installs, with apt-get, the Debian
# packages rawrpc builds and tests with, plus any named (bench/compare.sh
# adds gRPC, gnuplot and python3).  Only what is missing is installed, so
# a second run is a fast no-op.  Needs root (or sudo) only when something
# is missing.
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config
    libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
    libprotoc-dev libprotobuf-dev
    libev-dev libcmocka-dev
    valgrind clang
    clang-format clang-tidy cppcheck
    iproute2 nftables # the fault suite's network namespaces
    python3 python3-protobuf # the interop suite (tests/interop)
    "$@"
)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

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
    tshark # the dissector's test (tests/wireshark); brings dumpcap
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
# wireshark-common asks whether non-root users may capture: no.
echo "wireshark-common wireshark-common/install-setuid boolean false" |
    $sudo debconf-set-selections 2>/dev/null || true
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

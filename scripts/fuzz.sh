#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fuzz.sh [SECONDS] -- builds the libFuzzer targets with clang (ASan+UBSan)
# and runs each for SECONDS (default 600), starting from the committed
# corpus.  New inputs go to build-fuzz/work/, never into the committed
# corpus; a crash fails the script and leaves its input in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}

./scripts/install-deps.sh
CC=clang cmake -S . -B build-fuzz -DRAWRPC_FUZZ=ON -DRAWRPC_TESTS=OFF \
    ${RAWRPC_CMAKE_ARGS:-} >/dev/null
cmake --build build-fuzz -j"$(nproc)"

for t in frame preface meta server client; do
    work=build-fuzz/work/$t
    mkdir -p "$work"
    echo "fuzz_$t: ${secs}s"
    (cd build-fuzz && ./tests/fuzz/fuzz_"$t" -max_total_time="$secs" \
        -print_final_stats=1 "../$work" "../tests/fuzz/corpus/$t" 2>&1) |
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|DONE|ERROR|SUMMARY|Test unit written'
    # grep's status is not the fuzzer's: PIPESTATUS has the fuzzer's.
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz_$t failed" >&2; exit 1; }
done

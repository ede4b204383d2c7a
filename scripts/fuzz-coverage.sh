#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fuzz-coverage.sh [DIR...] -- line coverage of the runtime reached by the
# fuzz corpora: builds the corpus replays with clang's source coverage,
# replays the committed corpora plus what scripts/fuzz.sh found
# (build-fuzz/work/), and prints the share of runtime/ lines and branches
# each target reaches, then each file's lines for all five together.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
CC=clang CFLAGS="-fprofile-instr-generate -fcoverage-mapping" \
    cmake -S . -B build-cov -DRAWRPC_VALGRIND=OFF >/dev/null
targets=(frame preface meta server client)
cmake --build build-cov -j"$(nproc)" \
    --target "${targets[@]/#/replay_}" >/dev/null
out=build-cov/profiles
rm -rf "$out"
mkdir -p "$out"
for t in "${targets[@]}"; do
    dirs=(tests/fuzz/corpus/"$t")
    [ -d build-fuzz/work/"$t" ] && dirs+=(build-fuzz/work/"$t")
    LLVM_PROFILE_FILE="$out/$t.profraw" \
        build-cov/tests/fuzz/replay_"$t" "${dirs[@]}" >/dev/null
    llvm-profdata merge -o "$out/$t.profdata" "$out/$t.profraw"
done
llvm-profdata merge -o "$out/all.profdata" "$out"/*.profraw
objs=()
for t in "${targets[@]}"; do
    objs+=(-object build-cov/tests/fuzz/replay_"$t")
done
# One line per target, then every runtime file for all five together.
# Columns: regions, functions, lines, branches (each: total, missed, %).
for t in "${targets[@]}" all; do
    printf '%-8s ' "$t"
    llvm-cov report "${objs[@]:1}" -instr-profile="$out/$t.profdata" \
        runtime/*/*.c 2>/dev/null | awk '/^TOTAL/ {print "lines " $10 ", branches " $13}'
done
printf '%-14s %8s %8s %8s\n' file lines missed covered
llvm-cov report "${objs[@]:1}" -instr-profile="$out/all.profdata" \
    runtime/*/*.c 2>/dev/null |
    awk '/\.c / || /^TOTAL/ {printf "%-14s %8s %8s %8s\n", $1, $8, $9, $10}'

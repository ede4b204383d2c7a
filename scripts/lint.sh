#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lint.sh -- the static checks CI runs on every C file of the project:
# banned functions (curl's checksrc idea), clang-format, cppcheck and
# clang-tidy (.clang-tidy).  Needs a configured build/ for
# compile_commands.json; scripts/test.sh makes one.
set -euo pipefail
cd "$(dirname "$0")/.."

# Generated goldens are compared byte for byte, not formatted or linted.
mapfile -t files < <(git ls-files '*.c' '*.h' |
    grep -v -e '^tests/fuzz/corpus/' -e '^tests/codegen/golden/')
# Built outside this build (against the installed package): formatted,
# not analysed.
mapfile -t sources < <(printf '%s\n' "${files[@]}" | grep '\.c$' |
    grep -v -e '^tests/consumer/' -e '^examples/')
status=0

echo "lint: banned functions"
if grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|strtok|alloca|signal)[[:space:]]*\(' \
    "${files[@]}"; then
    echo "lint: use the bounded or reentrant alternative" >&2
    status=1
fi

echo "lint: clang-format"
clang-format --dry-run -Werror "${files[@]}" || status=1

echo "lint: cppcheck"
cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
    --enable=warning,portability,performance \
    --suppress=missingIncludeSystem \
    -I runtime -I runtime/include -I tests/support \
    "${sources[@]}" || status=1

echo "lint: clang-tidy"
[ -f build/compile_commands.json ] || {
    echo "lint: run ./scripts/test.sh first (needs build/)" >&2
    exit 1
}
# The benchmark's peers (bench/peers) build only with their libraries
# (RAWRPC_BENCH_PEERS, which bench/compare.sh turns on in build-bench/):
# each file is analysed with the build that compiled it, and one that no
# build here compiled is named and skipped.
tidy_db() {
    local db
    for db in build build-bench; do
        if [ -f "$db/compile_commands.json" ] &&
            grep -qF "\"file\": \"$PWD/$1\"" "$db/compile_commands.json"; then
            echo "$db"
            return
        fi
    done
}
pairs=()
for f in "${sources[@]}"; do
    db=$(tidy_db "$f")
    if [ -n "$db" ]; then
        pairs+=("$db" "$f")
    else
        echo "lint: clang-tidy skipped $f (no build here compiles it)"
    fi
done
# One file per run: clang-tidy 14 given several files at once lets the
# valist checker's state leak between them and reports false positives.
printf '%s\n' "${pairs[@]}" |
    xargs -P "$(nproc)" -n 2 sh -c 'clang-tidy -p "$0" --quiet \
        --header-filter="^$PWD/(runtime|tests|codegen|services|bench)/" "$1"' \
        2>/dev/null || status=1

exit $status

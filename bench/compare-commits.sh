#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# compare-commits.sh OLD [NEW] [--rounds N] [--duration S] -- rawrpc at
# two commits, side by side: each commit's own load generator against its
# own server (Release builds in build-bench-<sha>/, the old one from a
# temporary git worktree), interleaved old new old new ... over every
# load scenario of compare.sh, server pinned to CPU 0 and client to
# CPU 1.  Prints, per scenario, the medians and the new/old ratios of
# throughput, p50 latency, CPU per call on both sides and allocations
# per call.
# NEW defaults to the work tree as it is.  This is how a change to a hot
# path shows a side-by-side run against the commit before it
# (docs/PERFORMANCE.md); only ratios from one run mean anything on a
# shared, noisy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/wait-port.sh
. bench/wait-port.sh

old=${1:?usage: bench/compare-commits.sh OLD [NEW] [--rounds N]}
shift
new=
[ $# -gt 0 ] && [ "${1#--}" = "$1" ] && { new=$1; shift; }
rounds=5 duration=3 warmup=1
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    *) echo "compare-commits: unknown option $1" >&2; exit 2 ;;
    esac
done

./scripts/install-deps.sh python3
tmp=$(mktemp -d)
spid=
cleanup() {
    [ -n "$spid" ] && kill "$spid" 2>/dev/null
    git worktree remove --force "$tmp/old" 2>/dev/null || true
    [ -n "$new" ] && git worktree remove --force "$tmp/new" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# build SRC_DIR NAME: Release bench programs; prints their folder.
build() {
    local src=$1 dir=$PWD/build-bench-$2
    cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DRAWRPC_TESTS=OFF \
        -DRAWRPC_VALGRIND=OFF >/dev/null
    cmake --build "$dir" -j"$(nproc)" --target rawrpc-bench \
        rawrpc-bench-server >/dev/null
    echo "$dir/bench"
}
git worktree add -q --detach "$tmp/old" "$old"
old_bin=$(build "$tmp/old" "$(git rev-parse --short "$old")")
if [ -n "$new" ]; then
    git worktree add -q --detach "$tmp/new" "$new"
    new_bin=$(build "$tmp/new" "$(git rev-parse --short "$new")")
else
    new_bin=$(build . worktree)
fi

pin_srv=(taskset -c 0)
pin_cli=(taskset -c 1)
[ "$(nproc)" -ge 2 ] || { pin_srv=(); pin_cli=(); }
scenarios=("64B-1x1 64 1 1" "64B-1x64 64 1 64" "64B-8x16 64 8 16"
           "4K-1x64 4096 1 64" "4K-8x16 4096 8 16"
           "64K-1x64 65536 1 64" "64K-8x16 65536 8 16")

run_one() { # bin label name payload conns inflight
    local bin=$1 label=$2 portfile=$tmp/port
    : >"$portfile"
    "${pin_srv[@]}" "$bin/rawrpc-bench-server" >"$portfile" &
    spid=$!
    local port
    port=$(wait_port "$portfile")
    [ -n "$port" ] || { echo "compare-commits: no server" >&2; exit 1; }
    "${pin_cli[@]}" "$bin/rawrpc-bench" --system rawrpc --scenario "$3" \
        --payload "$4" --conns "$5" --inflight "$6" --duration "$duration" \
        --warmup "$warmup" --port "$port" --server-pid "$spid" |
        sed "s/^{/{\"build\": \"$label\", /"
    kill -TERM "$spid"
    wait "$spid" || true
    spid=
}

for ((r = 1; r <= rounds; r++)); do
    for s in "${scenarios[@]}"; do
        read -r name payload conns inflight <<<"$s"
        echo "round $r: $name" >&2
        run_one "$old_bin" old "$name" "$payload" "$conns" "$inflight"
        run_one "$new_bin" new "$name" "$payload" "$conns" "$inflight"
    done
done >"$tmp/runs.jsonl"

python3 - "$tmp/runs.jsonl" "$old" "${new:-work tree}" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print(f"rawrpc {sys.argv[3]} / {sys.argv[2]}, medians of "
      f"{len(runs) // 14} interleaved rounds")
print("| scenario | calls/s old | calls/s new | throughput new/old "
      "| p50 new/old | server CPU/call new/old | client CPU/call new/old "
      "| allocs/call old, new |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name in dict.fromkeys(r["scenario"] for r in runs):
    def med(build, key):
        return statistics.median(r[key] for r in runs
                                 if r["scenario"] == name
                                 and r["build"] == build)
    o, n = med("old", "calls_per_s"), med("new", "calls_per_s")
    print(f"| {name} | {o:,.0f} | {n:,.0f} | {n / o:.3f} "
          f"| {med('new', 'p50_us') / med('old', 'p50_us'):.3f} "
          f"| {med('new', 'srv_cpu_us_per_call') / med('old', 'srv_cpu_us_per_call'):.3f} "
          f"| {med('new', 'cli_cpu_us_per_call') / med('old', 'cli_cpu_us_per_call'):.3f} "
          f"| {med('old', 'allocs_per_call'):.2f}, "
          f"{med('new', 'allocs_per_call'):.2f} |")
EOF

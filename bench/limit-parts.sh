#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# limit-parts.sh [--rounds N] [--duration S] [--scenario NAME]...
#
# What the practical limit leaves out that every RPC client must do, one
# part at a time, side by side with rawrpc: the limit as compare.sh runs
# it (its client copies request bytes it packed once), the limit whose
# client packs the caller's message on each call (--pack), and the limit
# that also names the method on each request, which its server checks
# before it unpacks (--pack --named).  Interleaved rounds, server pinned
# to CPU 0 and client to CPU 1, over the small-message scenarios where
# the limit's shortcuts weigh most; then each side's user-space
# instructions per call (callgrind, 64 B x 64).  Prints medians, their
# ratios to the limit and the range of the ratios round by round (each
# round's runs are seconds apart, so that range is what the machine
# adds).  docs/PERFORMANCE.md ("What the limit leaves out") records a run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/wait-port.sh
. bench/wait-port.sh

rounds=5 duration=3 only=()
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --scenario) only+=("$2"); shift 2 ;;
    *) echo "limit-parts: unknown option $1" >&2; exit 2 ;;
    esac
done

./scripts/install-deps.sh python3 valgrind
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DRAWRPC_TESTS=OFF \
    >/dev/null
cmake --build build-bench -j"$(nproc)" --target rawrpc-bench \
    rawrpc-bench-server baseline-server >/dev/null
bin=build-bench/bench
tmp=$(mktemp -d)
spid=
cleanup() {
    [ -n "$spid" ] && kill "$spid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

pin_srv=(taskset -c 0)
pin_cli=(taskset -c 1)
[ "$(nproc)" -ge 2 ] || { pin_srv=(); pin_cli=(); }
# name | server and its options | client options
variants=("rawrpc|rawrpc-bench-server|--system rawrpc"
          "limit|baseline-server|--system baseline"
          "limit+pack|baseline-server|--system baseline --pack"
          "limit+pack+named|baseline-server --named|--system baseline --pack --named")
scenarios=("64B-1x1 64 1 1" "64B-1x64 64 1 64" "64B-8x16 64 8 16"
           "4K-1x64 4096 1 64")
if [ ${#only[@]} -gt 0 ]; then
    picked=()
    for s in "${scenarios[@]}"; do
        for o in "${only[@]}"; do [ "${s%% *}" = "$o" ] && picked+=("$s"); done
    done
    [ ${#picked[@]} -gt 0 ] || { echo "limit-parts: no such scenario" >&2; exit 2; }
    scenarios=("${picked[@]}")
fi

server_start() { # server words...
    local portfile=$tmp/port
    : >"$portfile"
    "${pin_srv[@]}" "$bin/$1" "${@:2}" >"$portfile" &
    spid=$!
    port=$(wait_port "$portfile")
    [ -n "$port" ] || { echo "limit-parts: no server" >&2; exit 1; }
}

server_stop() {
    kill -TERM "$spid"
    wait "$spid" || true
    spid=
}

for ((r = 1; r <= rounds; r++)); do
    for s in "${scenarios[@]}"; do
        read -r name payload conns inflight <<<"$s"
        for v in "${variants[@]}"; do
            IFS='|' read -r label server client <<<"$v"
            echo "round $r: $name $label" >&2
            # shellcheck disable=SC2086 # the options are words
            server_start $server
            # shellcheck disable=SC2086
            "${pin_cli[@]}" "$bin/rawrpc-bench" $client --scenario "$name" \
                --payload "$payload" --conns "$conns" --inflight "$inflight" \
                --duration "$duration" --warmup 1 --port "$port" \
                --server-pid "$spid" |
                sed "s/^{/{\"round\": $r, \"variant\": \"$label\", /"
            server_stop
        done
    done
done >"$tmp/runs.jsonl"

# Instructions per call on each side: everything a wake-up does after
# its epoll_wait (rawrpc: the read callback and the loop's flush).
for v in "${variants[@]}"; do
    IFS='|' read -r label server client <<<"$v"
    for side in client server; do
        echo "instructions: $label $side" >&2
        cg=$tmp/cg.out
        toggles=(--toggle-collect=raw_read_cb)
        [ "$side" = server ] && toggles=(--toggle-collect=bconn_read_cb)
        [ "$label" = rawrpc ] && toggles=(--toggle-collect=conn_read_cb
                                          --toggle-collect=conn_flush_all_cb)
        vg=(valgrind -q --tool=callgrind --callgrind-out-file="$cg"
            --collect-atstart=no "${toggles[@]}")
        saved=("${pin_srv[@]}") cli=("${vg[@]}")
        [ "$side" = server ] && { pin_srv=("${vg[@]}"); cli=(); }
        # shellcheck disable=SC2086
        server_start $server
        pin_srv=("${saved[@]}")
        # shellcheck disable=SC2086
        res=$("${cli[@]}" "$bin/rawrpc-bench" $client --payload 64 \
            --conns 1 --inflight 64 --duration 2 --warmup 0 --port "$port" |
            tail -1)
        server_stop
        printf '{"variant": "%s", "side": "%s", "calls": %s, "instructions": %s}\n' \
            "$label" "$side" \
            "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["calls"])' "$res")" \
            "$(awk '/^totals:/{print $2}' "$cg")" >>"$tmp/instr.jsonl"
    done
done

python3 - "$tmp/runs.jsonl" "$tmp/instr.jsonl" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
instr = {(r["variant"], r["side"]): r["instructions"] / r["calls"]
         for r in map(json.loads, open(sys.argv[2]))}
variants = list(dict.fromkeys(r["variant"] for r in runs))
rounds = max(r["round"] for r in runs)
print(f"medians of {rounds} interleaved rounds; in brackets the ratio of "
      "medians to the limit, then the range of the ratios round by round")
print("| scenario | " + " | ".join(variants) + " |")
print("|---|" + "---:|" * len(variants))
def pick(name, v, key):
    return {r["round"]: r[key] for r in runs
            if r["scenario"] == name and r["variant"] == v}
for name in dict.fromkeys(r["scenario"] for r in runs):
    key = "p50_us" if name.endswith("1x1") else "calls_per_s"
    lim = pick(name, "limit", key)
    cells = []
    for v in variants:
        got = pick(name, v, key)
        m = statistics.median(got.values())
        by_round = [got[k] / lim[k] for k in got]
        value = f"{m:,.0f}" if key == "calls_per_s" else f"{m:.1f} us"
        cells.append(f"{value} ({m / statistics.median(lim.values()):.2f}; "
                     f"{min(by_round):.2f}-{max(by_round):.2f})")
    print(f"| {name} ({'p50' if key == 'p50_us' else 'calls/s'}) | "
          + " | ".join(cells) + " |")
    cpu = "srv_cpu_us_per_call"
    lim = statistics.median(pick(name, "limit", cpu).values())
    print(f"| {name} (server CPU us/call) | "
          + " | ".join(f"{statistics.median(pick(name, v, cpu).values()):.3f}"
                       f" ({statistics.median(pick(name, v, cpu).values()) / lim:.2f})"
                       for v in variants) + " |")
for side in "client", "server":
    lim = instr[("limit", side)]
    print(f"| {side} instructions per call, 64 B x 64 | "
          + " | ".join(f"{instr[(v, side)]:,.0f} ({instr[(v, side)] / lim:.2f})"
                       for v in variants) + " |")
EOF

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# compare.sh [--quick] -- builds the benchmark programs (Release), runs
# rawrpc and the baseline side by side, interleaved (A B A B ...) for
# several rounds, server pinned to CPU 0 and client to CPU 1, and prints
# the medians with rawrpc/baseline ratios.  Writes bench/results/latest.json.
# --quick: one round of two short scenarios (what CI runs).
# Only ratios from one run mean anything on a shared, noisy machine.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = "--quick" ] && quick=true
./scripts/install-deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DRAWRPC_TESTS=OFF \
    >/dev/null
cmake --build build-bench -j"$(nproc)" \
    --target rawrpc-bench rawrpc-bench-server baseline-server >/dev/null
bin=build-bench/bench

# name payload conns inflight
if $quick; then
    scenarios=("64B-1x1 64 1 1" "64B-1x64 64 1 64")
    rounds=1 duration=0.5 warmup=0.2
else
    scenarios=("64B-1x1 64 1 1" "64B-1x64 64 1 64" "64B-8x16 64 8 16"
               "4K-1x64 4096 1 64" "4K-8x16 4096 8 16"
               "64K-1x64 65536 1 64" "64K-8x16 65536 8 16")
    rounds=3 duration=3 warmup=1
fi
pin_srv=(taskset -c 0)
pin_cli=(taskset -c 1)
[ "$(nproc)" -ge 2 ] || { pin_srv=(); pin_cli=(); }

out=$(mktemp)
spid=
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -f "$out"' EXIT

run_one() { # system scenario payload conns inflight
    local server=$bin/rawrpc-bench-server
    [ "$1" = baseline ] && server=$bin/baseline-server
    local portfile
    portfile=$(mktemp)
    "${pin_srv[@]}" "$server" >"$portfile" &
    spid=$!
    for _ in $(seq 100); do
        [ -s "$portfile" ] && break
        sleep 0.02
    done
    local port
    port=$(awk '{print $2}' "$portfile")
    rm -f "$portfile"
    "${pin_cli[@]}" "$bin/rawrpc-bench" --system "$1" --scenario "$2" \
        --payload "$3" --conns "$4" --inflight "$5" --duration "$duration" \
        --warmup "$warmup" --port "$port" --server-pid "$spid" >>"$out"
    kill -TERM "$spid"
    wait "$spid" || true
    spid=
}

for ((r = 1; r <= rounds; r++)); do
    for s in "${scenarios[@]}"; do
        read -r name payload conns inflight <<<"$s"
        for system in rawrpc baseline; do
            echo "round $r: $system $name" >&2
            run_one "$system" "$name" "$payload" "$conns" "$inflight"
        done
    done
done

# Medians per system and scenario, ratios rawrpc/baseline; JSON for tools.
mkdir -p bench/results
awk -v json=bench/results/latest.json '
function num(key,   m) {
    if (match($0, "\"" key "\": [-0-9.]+")) {
        m = substr($0, RSTART, RLENGTH); sub(/.*: /, "", m); return m + 0
    }
    return 0
}
function str(key,   m) {
    match($0, "\"" key "\": \"[^\"]*\""); m = substr($0, RSTART, RLENGTH)
    sub(/.*: "/, "", m); sub(/"$/, "", m); return m
}
function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
        if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    k = str("system") SUBSEP str("scenario")
    if (!(str("scenario") in seen)) { seen[str("scenario")] = 1; order[++ns] = str("scenario") }
    meta[str("scenario")] = num("payload") " " num("conns") " " num("inflight")
    split("calls_per_s p50_us p99_us p999_us srv_cpu_us_per_call allocs_per_call rss_kb", f, " ")
    for (i in f) v[k, f[i]] = v[k, f[i]] " " num(f[i])
}
END {
    printf "%-10s %12s %12s %7s %9s %9s %7s %9s %9s %7s %7s\n", "scenario",
        "rawrpc/s", "baseline/s", "ratio", "p50 r", "p50 b", "ratio",
        "cpu r", "cpu b", "ratio", "allocs"
    printf "[" > json
    first = 1
    for (i = 1; i <= ns; i++) {
        s = order[i]
        for (sy = 1; sy <= 2; sy++) {
            sys = sy == 1 ? "rawrpc" : "baseline"
            split(meta[s], m, " ")
            for (j in f) med[sys, f[j]] = median(v[sys SUBSEP s, f[j]])
            printf "%s\n  {\"system\": \"%s\", \"scenario\": \"%s\", \"payload\": %d, \"conns\": %d, \"inflight\": %d, \"calls_per_s\": %.0f, \"p50_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, \"srv_cpu_us_per_call\": %.3f, \"allocs_per_call\": %.3f, \"rss_kb\": %d}", first ? "" : ",", sys, s, m[1], m[2], m[3], med[sys, "calls_per_s"], med[sys, "p50_us"], med[sys, "p99_us"], med[sys, "p999_us"], med[sys, "srv_cpu_us_per_call"], med[sys, "allocs_per_call"], med[sys, "rss_kb"] > json
            first = 0
        }
        tr = med["rawrpc", "calls_per_s"] / (med["baseline", "calls_per_s"] ? med["baseline", "calls_per_s"] : 1)
        lr = med["rawrpc", "p50_us"] / (med["baseline", "p50_us"] ? med["baseline", "p50_us"] : 1)
        cr = med["rawrpc", "srv_cpu_us_per_call"] / (med["baseline", "srv_cpu_us_per_call"] ? med["baseline", "srv_cpu_us_per_call"] : 1)
        ratios = ratios (ratios ? ", " : "") sprintf("\"%s\": {\"throughput\": %.3f, \"p50\": %.3f, \"srv_cpu\": %.3f}", s, tr, lr, cr)
        printf "%-10s %12.0f %12.0f %7.2f %9.1f %9.1f %7.2f %9.3f %9.3f %7.2f %7.2f\n", s,
            med["rawrpc", "calls_per_s"], med["baseline", "calls_per_s"], tr,
            med["rawrpc", "p50_us"], med["baseline", "p50_us"], lr,
            med["rawrpc", "srv_cpu_us_per_call"], med["baseline", "srv_cpu_us_per_call"], cr,
            med["rawrpc", "allocs_per_call"]
    }
    printf ",\n  {\"ratios\": {%s}}\n]\n", ratios > json
}' "$out"
echo "wrote bench/results/latest.json"

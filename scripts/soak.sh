#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# soak.sh [SECONDS] -- a bounded soak run (default 600 s; CI runs 60):
# rawrpc-bench-server with 1 s heartbeats under two loads at once, a
# fixed 8 connections x 16 calls of 4 KiB (rawrpc-bench) and connection
# churn in 2 lanes (rawrpc-connbench).  The server's RSS and open
# descriptors are sampled every second.  No call may fail.  RSS may not
# grow: after the warm-up (the first fifth), the second half's peak may
# exceed the first half's by at most 1 MiB of allocator noise.
# Descriptors may not leak: once the clients have gone, the server must be
# back to the count it had idle before the load.  (Their peaks under load
# are reported, not judged: how many churn connections are open at the
# instant of a sample is chance.)  Samples go to build-soak/soak.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}

./scripts/install-deps.sh
cmake -S . -B build-soak -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAWRPC_TESTS=OFF \
    ${RAWRPC_CMAKE_ARGS:-} >/dev/null
cmake --build build-soak -j"$(nproc)" \
    --target rawrpc-bench rawrpc-connbench rawrpc-bench-server >/dev/null
bin=build-soak/bench

portfile=$(mktemp)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -f "$portfile"' EXIT
"$bin/rawrpc-bench-server" --heartbeat 1 >"$portfile" &
spid=$!
pids+=("$spid")
for _ in $(seq 250); do
    [ -s "$portfile" ] && break
    sleep 0.02
done
port=$(awk '{print $2}' "$portfile")
fdcount() { find "/proc/$spid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
idle_fds=$(fdcount)

"$bin/rawrpc-bench" --system rawrpc --scenario soak-load --payload 4096 \
    --conns 8 --inflight 16 --warmup 0 --duration "$secs" --port "$port" \
    --server-pid "$spid" >build-soak/load.json &
lpid=$!
pids+=("$lpid")
"$bin/rawrpc-connbench" --mode churn --system rawrpc --scenario soak-churn \
    --lanes 2 --warmup 0 --duration "$secs" --port "$port" \
    --server-pid "$spid" >build-soak/churn.json &
cpid=$!
pids+=("$cpid")

echo "second,rss_kb,fds" >build-soak/soak.csv
for ((t = 1; t <= secs; t++)); do
    sleep 1 # sampling once a second is the point here, not a wait
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$spid/status")
    fds=$(fdcount)
    echo "$t,$rss,$fds" >>build-soak/soak.csv
done
wait "$lpid" "$cpid"
# The clients have closed; the server closes its ends as it reads EOF.
for _ in $(seq 250); do
    end_fds=$(fdcount)
    [ "$end_fds" -le "$idle_fds" ] && break
    sleep 0.02
done
kill -TERM "$spid"
wait "$spid" || true
echo "soak: descriptors idle before the load $idle_fds, after it $end_fds"
[ "$end_fds" -le "$idle_fds" ] || { echo "soak: the server leaked descriptors"; exit 1; }

# Warm-up: the first fifth.  Then compare the halves of the rest.
awk -F, -v secs="$secs" '
NR == 1 { next }
{ t = $1; if (t <= secs / 5) next; n++; rss[n] = $2; fds[n] = $3 }
END {
    h = int(n / 2)
    for (i = 1; i <= n; i++) {
        if (i <= h) { if (rss[i] > r1) r1 = rss[i]; if (fds[i] > f1) f1 = fds[i] }
        else        { if (rss[i] > r2) r2 = rss[i]; if (fds[i] > f2) f2 = fds[i] }
    }
    printf "soak: %d s; after warm-up, peak RSS %d then %d KiB, peak descriptors %d then %d\n", secs, r1, r2, f1, f2
    if (r2 > r1 + 1024) { print "soak: the server grew"; exit 1 }
}' build-soak/soak.csv
for f in build-soak/load.json build-soak/churn.json; do
    grep -q '"errors": 0,' "$f" || { echo "soak: calls failed: $(cat "$f")"; exit 1; }
done
echo "soak: load $(grep -o '"calls_per_s": [0-9]*' build-soak/load.json), churn $(grep -o '"conns_per_s": [0-9]*' build-soak/churn.json)"

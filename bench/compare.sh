#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# compare.sh [--quick] -- builds the benchmark programs (Release) and runs,
# server pinned to CPU 0 and load generator to CPU 1:
#   1. the load scenarios for rawrpc, the practical limit (baseline), the
#      raw echo (the limit's frames with no protobuf: the loopback's
#      ceiling), gRPC C++ and the peers nng, ZeroMQ and Cap'n Proto
#      (bench/peers; each when it builds), interleaved A B C A B C ... for
#      several rounds;
#   2. syscalls per call on both sides (perf stat, when perf may trace);
#   3. connection churn (connect, one call, close), rawrpc and baseline
#      interleaved;
#   4. 10 000 idle connections with heartbeats (rawrpc);
#   5. multi-loop scaling: 1 and 2 server loops, with a 20 us handler
#      (server-bound) and with the plain echo (load-generator-bound), and
#      the echo answered from a worker thread;
#   6. user-space instructions per call on each side (callgrind), rawrpc
#      and baseline, 64 B x 64.
# bench/summarize.py prints the tables with ratios and writes
# bench/results/latest.json and the chart bench/results/latest.png.
# --quick: one short round of a few scenarios (what CI runs).  Only ratios
# from one run mean anything on a shared, noisy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/wait-port.sh
. bench/wait-port.sh

quick=false
[ "${1:-}" = "--quick" ] && quick=true
# gRPC and gnuplot are optional: without them the rest still runs.
./scripts/install-deps.sh python3 gnuplot-nox libgrpc++-dev \
    protobuf-compiler-grpc ||
    ./scripts/install-deps.sh python3 ||
    echo "compare: gRPC or gnuplot could not be installed; going on" >&2
./scripts/install-deps.sh libnng-dev libzmq3-dev capnproto libcapnp-dev ||
    echo "compare: nng, ZeroMQ or capnp could not be installed; going on" >&2
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DRAWRPC_TESTS=OFF \
    -DRAWRPC_BENCH_GRPC=ON -DRAWRPC_BENCH_PEERS=ON >/dev/null
targets=(rawrpc-bench rawrpc-connbench rawrpc-bench-server baseline-server)
systems=(rawrpc baseline raw)
if cmake --build build-bench --target help | grep -c 'grpc-bench-server' \
    >/dev/null; then
    targets+=(grpc-bench grpc-bench-server)
    systems+=(grpc)
fi
for peer in nng zmq capnp; do # bench/peers: each where its library is
    if cmake --build build-bench --target help |
        grep -c "$peer-bench-server" >/dev/null; then
        targets+=("$peer-bench" "$peer-bench-server")
        systems+=("$peer")
    fi
done
cmake --build build-bench -j"$(nproc)" --target "${targets[@]}" >/dev/null
bin=build-bench/bench

# name payload conns inflight
if $quick; then
    scenarios=("64B-1x1 64 1 1" "64B-1x64 64 1 64")
    rounds=1 duration=0.5 warmup=0.2
    idle_conns=1000 idle_hold=3 idle_hb=1
else
    scenarios=("64B-1x1 64 1 1" "64B-1x64 64 1 64" "64B-8x16 64 8 16"
               "4K-1x64 4096 1 64" "4K-8x16 4096 8 16"
               "64K-1x64 65536 1 64" "64K-8x16 65536 8 16")
    rounds=5 duration=3 warmup=1
    idle_conns=10000 idle_hold=20 idle_hb=5
fi
pin_srv=(taskset -c 0)
pin_cli=(taskset -c 1)
pin_all=(taskset -c 0,1)
[ "$(nproc)" -ge 2 ] || { pin_srv=(); pin_cli=(); pin_all=(); }

out=$(mktemp -d)
spid=
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$out"' EXIT

# server_start system [server options...]: sets spid and port.
server_start() {
    local sys=$1 server=$bin/rawrpc-bench-server
    shift
    [ "$sys" = baseline ] && server=$bin/baseline-server
    [ "$sys" = raw ] && { server=$bin/baseline-server; set -- --raw "$@"; }
    [ "$sys" = grpc ] && server=$bin/grpc-bench-server
    case $sys in nng | zmq | capnp) server=$bin/$sys-bench-server ;; esac
    local portfile
    portfile=$(mktemp)
    "${pin_srv[@]}" "$server" "$@" >"$portfile" &
    spid=$!
    port=$(wait_port "$portfile")
    rm -f "$portfile"
    [ -n "$port" ] || { echo "compare: $server did not start" >&2; exit 1; }
}

server_stop() {
    kill -TERM "$spid"
    wait "$spid" || true
    spid=
}

client_for() { # system
    case $1 in
    grpc) echo "$bin/grpc-bench" ;;
    nng | zmq | capnp) echo "$bin/$1-bench" ;;
    *) echo "$bin/rawrpc-bench" ;;
    esac
}

load_one() { # system scenario payload conns inflight [prefix...]
    local sys=$1 name=$2 payload=$3 conns=$4 inflight=$5
    shift 5
    server_start "$sys"
    "$@" "${pin_cli[@]}" "$(client_for "$sys")" --system "$sys" \
        --scenario "$name" --payload "$payload" --conns "$conns" \
        --inflight "$inflight" --duration "$duration" --warmup "$warmup" \
        --port "$port" --server-pid "$spid"
    server_stop
}

echo "== load: ${systems[*]}, $rounds round(s)" >&2
for ((r = 1; r <= rounds; r++)); do
    for s in "${scenarios[@]}"; do
        read -r name payload conns inflight <<<"$s"
        for sys in "${systems[@]}"; do
            echo "round $r: $sys $name" >&2
            load_one "$sys" "$name" "$payload" "$conns" "$inflight" \
                >>"$out/load.jsonl"
        done
    done
done

# Syscalls per call: tracepoint counts on both processes over one run.
events=syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto
events=$events,syscalls:sys_enter_recvmsg,syscalls:sys_enter_sendmsg
events=$events,syscalls:sys_enter_read,syscalls:sys_enter_write
events=$events,syscalls:sys_enter_readv,syscalls:sys_enter_writev
events=$events,syscalls:sys_enter_epoll_wait,raw_syscalls:sys_enter
if perf stat -x, -e "$events" true >/dev/null 2>&1; then
    echo "== syscalls per call" >&2
    for s in "${scenarios[@]:1:$($quick && echo 1 || echo 4)}"; do
        read -r name payload conns inflight <<<"$s"
        for sys in "${systems[@]}"; do
            echo "syscalls: $sys $name" >&2
            server_start "$sys"
            perf stat -x, -o "$out/srv.csv" -e "$events" -p "$spid" &
            ppid=$!
            perf stat -x, -o "$out/cli.csv" -e "$events" -- \
                "${pin_cli[@]}" "$(client_for "$sys")" --system "$sys" \
                --scenario "$name" --payload "$payload" --conns "$conns" \
                --inflight "$inflight" --duration "$duration" --warmup 0 \
                --port "$port" --server-pid "$spid" >"$out/one.json"
            kill -INT "$ppid"
            wait "$ppid" || true
            server_stop
            python3 bench/summarize.py syscalls "$out/one.json" \
                "$out/srv.csv" "$out/cli.csv" >>"$out/syscalls.jsonl"
        done
    done
else
    echo "compare: perf cannot count syscalls here; skipped" >&2
fi

echo "== connection churn" >&2
for ((r = 1; r <= rounds; r++)); do
    for sys in rawrpc baseline; do
        echo "round $r: churn $sys" >&2
        server_start "$sys"
        "${pin_cli[@]}" "$bin/rawrpc-connbench" --mode churn --system "$sys" \
            --scenario churn --lanes 8 --duration "$duration" \
            --warmup "$warmup" --port "$port" --server-pid "$spid" \
            >>"$out/churn.jsonl"
        server_stop
    done
done

echo "== $idle_conns idle connections, heartbeat ${idle_hb}s" >&2
server_start rawrpc --heartbeat "$idle_hb"
"${pin_cli[@]}" "$bin/rawrpc-connbench" --mode idle --port "$port" \
    --server-pid "$spid" --scenario "idle-$idle_conns" \
    --conns "$idle_conns" --heartbeat "$idle_hb" --hold "$idle_hold" \
    >>"$out/idle.jsonl"
server_stop

# Scaling: server and load generator share both CPUs here.
echo "== server loops" >&2
for ((r = 1; r <= rounds; r++)); do
    for work in 20 0; do
        for loops in 1 2; do
            echo "round $r: loops=$loops work=${work}us" >&2
            saved=("${pin_srv[@]}")
            pin_srv=("${pin_all[@]}") # a loop per CPU
            server_start rawrpc --loops "$loops" --work-us "$work"
            pin_srv=("${saved[@]}")
            "${pin_all[@]}" "$bin/rawrpc-bench" --system rawrpc \
                --scenario "loops$loops-work$work" --payload 64 --conns 8 \
                --inflight 16 --duration "$duration" --warmup "$warmup" \
                --port "$port" --server-pid "$spid" >>"$out/loops.jsonl"
            server_stop
        done
    done
    # Replies from a worker thread (rr_call_reply_from_thread): the loop's
    # flush list writes them before it polls again.
    echo "round $r: worker" >&2
    saved=("${pin_srv[@]}")
    pin_srv=("${pin_all[@]}")
    server_start rawrpc --worker
    pin_srv=("${saved[@]}")
    "${pin_all[@]}" "$bin/rawrpc-bench" --system rawrpc --scenario worker \
        --payload 64 --conns 8 --inflight 16 --duration "$duration" \
        --warmup "$warmup" --port "$port" --server-pid "$spid" \
        >>"$out/loops.jsonl"
    server_stop
done

# User-space instructions per call, counted by callgrind inside each
# side's read callback and, for rawrpc, the loop's flush (everything a
# wake-up does after its epoll_wait):
# exact where the timings above are noisy, blind to the kernel and to
# cache misses.  64 B, 1 conn x 64.
instr_one() { # system side
    local sys=$1 side=$2 cb cg res calls
    cg=$(mktemp)
    case $sys/$side in
    rawrpc/*) cb=conn_read_cb ;;
    baseline/server) cb=bconn_read_cb ;;
    baseline/client) cb=raw_read_cb ;;
    esac
    local vg=(valgrind -q --tool=callgrind --callgrind-out-file="$cg"
              --collect-atstart=no --toggle-collect="$cb")
    [ "$sys" = rawrpc ] && vg+=(--toggle-collect=conn_flush_all_cb)
    local saved=("${pin_srv[@]}") cli=("${pin_cli[@]}")
    if [ "$side" = server ]; then
        pin_srv=("${vg[@]}")
    else
        cli=("${vg[@]}")
    fi
    server_start "$sys"
    pin_srv=("${saved[@]}")
    res=$("${cli[@]}" "$bin/rawrpc-bench" --system "$sys" \
        --scenario 64B-1x64 --payload 64 --conns 1 --inflight 64 \
        --duration "$instr_s" --warmup 0 --port "$port" | tail -1)
    server_stop
    calls=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["calls"])' "$res")
    printf '{"system": "%s", "side": "%s", "calls": %s, "instructions": %s}\n' \
        "$sys" "$side" "$calls" "$(awk '/^totals:/{print $2}' "$cg")"
    rm -f "$cg"
}

if command -v valgrind >/dev/null; then
    echo "== instructions per call (callgrind)" >&2
    instr_s=$($quick && echo 1 || echo 3)
    for sys in rawrpc baseline; do
        for side in server client; do
            echo "instructions: $sys $side" >&2
            instr_one "$sys" "$side" >>"$out/instr.jsonl"
        done
    done
fi

mkdir -p bench/results
python3 bench/summarize.py report "$out" bench/results/latest.json \
    bench/results/latest.png

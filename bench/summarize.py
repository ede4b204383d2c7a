#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""summarize.py -- bench/compare.sh's arithmetic.

  summarize.py syscalls RUN.json SERVER.csv CLIENT.csv
      one JSON line: syscalls per call on each side, from perf stat -x,
  summarize.py report DIR OUT.json OUT.png
      medians of every system and scenario in DIR/*.jsonl, tables with
      ratios on stdout, OUT.json, and a gnuplot chart (when gnuplot is
      installed)
  summarize.py chart IN.json OUT.png
      the chart again, from a recorded run
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

LOAD_FIELDS = ["calls_per_s", "p50_us", "p99_us", "p999_us",
               "srv_cpu_us_per_call", "allocs_per_call", "rss_kb"]


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def medians(rows, key_fields, value_fields):
    """Groups rows by key_fields; the median of each value field."""
    groups, order = {}, []
    for r in rows:
        k = tuple(r[f] for f in key_fields)
        if k not in groups:
            groups[k] = []
            order.append(k)
        groups[k].append(r)
    out = []
    for k in order:
        g = groups[k]
        m = {f: g[0][f] for f in g[0] if f not in value_fields}
        for f in value_fields:
            m[f] = statistics.median(r[f] for r in g)
        m["runs"] = len(g)
        out.append(m)
    return out


def peers_of(load):
    """The systems rawrpc is set against besides its practical limit
    (gRPC, nng, ZeroMQ, Cap'n Proto, and any other), in the order they
    ran."""
    return [s for s in dict.fromkeys(r["system"] for r in load)
            if s not in ("rawrpc", "baseline")]


def peer_table(scenarios, peers, by, ratios):
    rows = []
    for sc in scenarios:
        for p in peers:
            x, v = by.get((p, sc)), ratios[sc].get(f"vs_{p}", {})
            if x:
                rows.append([sc, p, fmt(x["calls_per_s"], ".0f"),
                             fmt(v.get("throughput"), ".2f"),
                             fmt(x["p50_us"], ".1f"), fmt(x["p99_us"], ".1f"),
                             fmt(v.get("p50"), ".3f"),
                             fmt(x["srv_cpu_us_per_call"], ".2f"),
                             fmt(v.get("srv_cpu"), ".3f"),
                             fmt(x["rss_kb"] / 1024, ".1f")])
    if rows:
        table("rawrpc against its peers (medians; r/x = rawrpc / x)",
              ["scenario", "x", "x calls/s", "r/x", "x p50us", "x p99us",
               "p50 r/x", "x srv us/call", "cpu r/x", "x MB"], rows)


def ratio(a, b):
    return round(a / b, 3) if b else None


def round_ratios(rows):
    """rawrpc / limit throughput per round, by scenario.  Rounds are
    interleaved, so the n-th run of each system in a scenario shared the
    machine's mood: the spread of these is the noise the medians hide."""
    runs = {}
    for r in rows:
        runs.setdefault((r["system"], r["scenario"]), []).append(
            r["calls_per_s"])
    out = {}
    for (system, sc), mine in runs.items():
        base = runs.get(("baseline", sc))
        if system == "rawrpc" and base:
            out[sc] = [ratio(a, b) for a, b in zip(mine, base)]
    return out


def syscalls(run_json, srv_csv, cli_csv):
    with open(run_json) as f:
        run = json.load(f)
    calls = max(run["calls"], 1)
    row = {"system": run["system"], "scenario": run["scenario"]}
    # Every way the systems read and write a socket counts: rawrpc and
    # the limit use recv/send, gRPC and nng sendmsg/recvmsg, capnp
    # read/writev.
    names = {"raw_syscalls:sys_enter": "syscalls",
             "syscalls:sys_enter_epoll_wait": "epoll_wait"}
    for call in ("recvfrom", "recvmsg", "read", "readv"):
        names[f"syscalls:sys_enter_{call}"] = "recv"
    for call in ("sendto", "sendmsg", "write", "writev"):
        names[f"syscalls:sys_enter_{call}"] = "send"
    for side, path in (("srv", srv_csv), ("cli", cli_csv)):
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[2] in names:
                    try:
                        n = float(parts[0])
                    except ValueError:
                        continue
                    key = f"{side}_{names[parts[2]]}_per_call"
                    row[key] = round(row.get(key, 0) + n / calls, 4)
    print(json.dumps(row))


def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header] + rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(r, widths)))


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def chart(load, png):
    """Throughput and p50/p99 latency per scenario and system."""
    if shutil.which("gnuplot") is None:
        print("summarize: no gnuplot; chart skipped", file=sys.stderr)
        return
    systems = list(dict.fromkeys(r["system"] for r in load))
    scenarios = list(dict.fromkeys(r["scenario"] for r in load))
    by = {(r["system"], r["scenario"]): r for r in load}
    with tempfile.TemporaryDirectory() as d:
        dat = os.path.join(d, "data")
        with open(dat, "w") as f:
            f.write("# scenario " + " ".join(
                f"{s}_tput {s}_p50 {s}_p99" for s in systems) + "\n")
            for sc in scenarios:
                vals = []
                for s in systems:
                    r = by.get((s, sc))
                    vals += ([r["calls_per_s"], r["p50_us"], r["p99_us"]]
                             if r else ["NaN"] * 3)
                f.write(sc + " " + " ".join(str(v) for v in vals) + "\n")
        n = len(systems)
        # A colour per system in both plots (gnuplot's own cycle of 8
        # would repeat among the latency bars); p99 is its p50 hatched.
        tput = ", ".join(
            f"'{dat}' using {2 + 3 * i}:xtic(1) title '{s}' lc {i + 1}"
            for i, s in enumerate(systems))
        lat = ", ".join(
            f"'{dat}' using {3 + 3 * i}:xtic(1) title '{s} p50' lc {i + 1}, "
            f"'' using {4 + 3 * i} title '{s} p99' lc {i + 1} "
            f"fs pattern 2 border -1"
            for i, s in enumerate(systems))
        script = f"""
set terminal pngcairo size 1200,900 font ',10'
set output '{png}'
set multiplot layout 2,1
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
set logscale y
set grid ytics
set xtics rotate by -20
set title 'Throughput, calls/s (log scale): {n} systems, same load'
plot {tput}
set title 'Latency, microseconds (log scale): p50 and p99'
set key top left
plot {lat}
unset multiplot
"""
        try:
            subprocess.run(["gnuplot"], input=script, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            print("summarize: gnuplot failed; chart skipped", file=sys.stderr)
            return
    print(f"wrote {png}")


def report(d, out_json, out_png):
    load_rows = read_jsonl(os.path.join(d, "load.jsonl"))
    load = medians(load_rows, ["system", "scenario"], LOAD_FIELDS)
    paired = round_ratios(load_rows)
    churn = medians(read_jsonl(os.path.join(d, "churn.jsonl")),
                    ["system", "scenario"],
                    ["conns_per_s", "p50_us", "p99_us",
                     "srv_cpu_us_per_conn"])
    loops = medians(read_jsonl(os.path.join(d, "loops.jsonl")),
                    ["scenario"], ["calls_per_s", "p50_us", "p99_us",
                                   "srv_cpu_us_per_call"])
    idle = read_jsonl(os.path.join(d, "idle.jsonl"))
    sysc = read_jsonl(os.path.join(d, "syscalls.jsonl"))
    by = {(r["system"], r["scenario"]): r for r in load}
    scenarios = list(dict.fromkeys(r["scenario"] for r in load))
    peers = peers_of(load)

    ratios, rows = {}, []
    for sc in scenarios:
        r, b, g = (by.get(("rawrpc", sc)), by.get(("baseline", sc)),
                   by.get(("grpc", sc)))
        rt = {}
        if r and b:
            rt["vs_baseline"] = {
                "throughput": ratio(r["calls_per_s"], b["calls_per_s"]),
                "p50": ratio(r["p50_us"], b["p50_us"]),
                "p99": ratio(r["p99_us"], b["p99_us"]),
                "srv_cpu": ratio(r["srv_cpu_us_per_call"],
                                 b["srv_cpu_us_per_call"])}
        for p in peers:  # vs_grpc, vs_nng, vs_zmq, vs_capnp, ...
            x = by.get((p, sc))
            if r and x:
                rt[f"vs_{p}"] = {
                    "throughput": ratio(r["calls_per_s"], x["calls_per_s"]),
                    "p50": ratio(r["p50_us"], x["p50_us"]),
                    "srv_cpu": ratio(r["srv_cpu_us_per_call"],
                                     x["srv_cpu_us_per_call"])}
        if sc in paired:
            rt.setdefault("vs_baseline", {})["throughput_rounds"] = paired[sc]
        ratios[sc] = rt
        vb, vg = rt.get("vs_baseline", {}), rt.get("vs_grpc", {})
        per = vb.get("throughput_rounds") or []
        rows.append([sc, fmt(r and r["calls_per_s"], ".0f"),
                     fmt(b and b["calls_per_s"], ".0f"),
                     fmt(g and g["calls_per_s"], ".0f"),
                     fmt(vb.get("throughput"), ".2f"),
                     "-".join(fmt(x, ".2f") for x in
                              sorted({min(per), max(per)})) if per else "-",
                     fmt(vg.get("throughput"), ".1f"),
                     fmt(r and r["p50_us"], ".1f"),
                     fmt(vb.get("p50"), ".2f"), fmt(vb.get("p99"), ".2f"),
                     fmt(vb.get("srv_cpu"), ".2f"),
                     fmt(r and r["allocs_per_call"], ".2f"),
                     fmt(r and r["rss_kb"] / 1024, ".1f"),
                     fmt(g and g["rss_kb"] / 1024, ".1f")])
    table("load (medians; r = rawrpc, b = practical limit, g = gRPC)",
          ["scenario", "r calls/s", "b calls/s", "g calls/s", "r/b",
           "r/b by round", "r/g",
           "r p50us", "p50 r/b", "p99 r/b", "cpu r/b", "allocs",
           "r MB", "g MB"], rows)
    peer_table(scenarios, peers, by, ratios)

    if sysc:
        table("syscalls per call (server | client)",
              ["system", "scenario", "srv all", "recv", "send", "epoll",
               "cli all", "recv", "send", "epoll"],
              [[s["system"], s["scenario"]] +
               [fmt(s.get(f"{side}_{k}_per_call"), ".3f")
                for side in ("srv", "cli")
                for k in ("syscalls", "recv", "send", "epoll_wait")]
               for s in sysc])

    cby = {r["system"]: r for r in churn}
    if "rawrpc" in cby and "baseline" in cby:
        ratios["churn"] = {"vs_baseline": {"conns_per_s": ratio(
            cby["rawrpc"]["conns_per_s"], cby["baseline"]["conns_per_s"])}}
        table("connection churn (connect, one call, close; 8 lanes)",
              ["system", "conns/s", "p50 us", "p99 us", "srv us/conn"],
              [[r["system"], fmt(r["conns_per_s"], ".0f"),
                fmt(r["p50_us"], ".0f"), fmt(r["p99_us"], ".0f"),
                fmt(r["srv_cpu_us_per_conn"], ".1f")] for r in churn] +
              [["r/b", fmt(ratios["churn"]["vs_baseline"]["conns_per_s"],
                           ".2f"), "", "", ""]])

    for i in idle:
        table(f"idle connections ({i['scenario']})",
              ["conns", "heartbeat s", "hold s", "RSS before MB",
               "RSS after MB", "bytes/conn", "CPU % of a core",
               "us per conn per heartbeat"],
              [[i["conns"], i["heartbeat_s"], i["hold_s"],
                fmt(i["rss_start_kb"] / 1024, ".1f"),
                fmt(i["rss_end_kb"] / 1024, ".1f"),
                fmt(i["bytes_per_conn"], ".0f"),
                fmt(i["hold_cpu_pct"], ".2f"),
                fmt(i["cpu_us_per_conn_heartbeat"], ".2f")]])

    lby = {r["scenario"]: r for r in loops}
    if loops:
        scale = {}
        for work in ("work20", "work0"):
            one, two = lby.get(f"loops1-{work}"), lby.get(f"loops2-{work}")
            if one and two:
                scale[work] = ratio(two["calls_per_s"], one["calls_per_s"])
        ratios["loops_2_over_1"] = scale
        table("server loops (8 x 16, 64 B; server and client share 2 CPUs)",
              ["scenario", "calls/s", "p50 us", "srv us/call"],
              [[r["scenario"], fmt(r["calls_per_s"], ".0f"),
                fmt(r["p50_us"], ".0f"),
                fmt(r["srv_cpu_us_per_call"], ".2f")] for r in loops] +
              [[f"2 loops / 1 ({w})", fmt(v, ".2f"), "", ""]
               for w, v in scale.items()])

    instr = read_jsonl(os.path.join(d, "instr.jsonl"))
    for r in instr:
        r["per_call"] = round(r["instructions"] / r["calls"], 1)
    if instr:
        per = {(r["system"], r["side"]): r["per_call"] for r in instr}
        ratios["instructions"] = {
            side: ratio(per.get(("rawrpc", side)),
                        per.get(("baseline", side)))
            for side in ("server", "client")
            if per.get(("rawrpc", side)) and per.get(("baseline", side))}
        table("user-space instructions per call (callgrind, 64 B x 64, "
              "inside the read callback and the flush)",
              ["system", "side", "calls", "instructions/call"],
              [[r["system"], r["side"], r["calls"], fmt(r["per_call"], ".0f")]
               for r in instr])

    doc = ([{k: r[k] for k in ["system", "scenario", "payload", "conns",
                               "inflight"] + LOAD_FIELDS} for r in load] +
           [dict(r, kind="churn") for r in churn] +
           [dict(r, kind="idle") for r in idle] +
           [dict(r, kind="loops") for r in loops] +
           [dict(r, kind="syscalls") for r in sysc] +
           [dict(r, kind="instructions") for r in instr] +
           [{"ratios": ratios}])
    with open(out_json, "w") as f:
        f.write("[\n" + ",\n".join("  " + json.dumps(x) for x in doc) +
                "\n]\n")
    print(f"\nwrote {out_json}")
    chart(load, out_png)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "syscalls":
        syscalls(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "chart":
        with open(sys.argv[2]) as f:
            doc = json.load(f)
        chart([r for r in doc if "calls_per_s" in r and "kind" not in r],
              sys.argv[3])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

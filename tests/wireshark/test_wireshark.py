# SPDX-License-Identifier: MIT
"""The Wireshark dissector (tools/wireshark/rawrpc.lua) on real traffic.

Captures on the loopback interface, filtered on the port the kernel gave
the kv server this test starts, while rawrpc-kv makes unary calls and a
raw client (rawpeer.py) sends a REQUEST one byte per segment, a PING and
an extension frame in one segment, a call that ends DEADLINE_EXCEEDED, a
CANCEL and a bad frame that earns a GOAWAY PROTOCOL_ERROR; then SIGTERM
makes the server send GOAWAY NO_ERROR.  tshark (two passes, so that a
REQUEST knows its RESPONSE) then has to decode what was sent.  The
capture starts and ends on UDP markers seen in its file, not on sleeps.

  test_wireshark.py --server BIN --client BIN --lua FILE --protos DIR

Exits 77 (skipped, said why) without tshark or dumpcap, without Lua in
tshark, or when capturing is not permitted.
"""

import argparse
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import rawpeer

SKIP = 77
TIMEOUT = 20.0  # the longest wait for anything expected

failures = []
passes = []


def skip(why):
    print(f"wireshark test skipped: {why}")
    sys.exit(SKIP)


def check(cond, what, detail=""):
    print(("ok   " if cond else "FAIL ") + what +
          (f"  [{detail}]" if detail and not cond else ""))
    (passes if cond else failures).append(what)


def wait_line(proc, pattern, timeout=TIMEOUT):
    """Reads proc's output (a pipe) until a line matches; the match."""
    deadline = time.monotonic() + timeout
    seen = []
    stream = proc.stdout
    while time.monotonic() < deadline:
        r, _, _ = select.select([stream], [], [], deadline - time.monotonic())
        if not r:
            break
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    raise RuntimeError(f"no line matching {pattern!r}: {''.join(seen)!r}")


def wait_marker(path, sock, port, marker, dumpcap, log,
                timeout=TIMEOUT):
    """Sends UDP datagrams carrying marker to the captured port until the
    capture file holds it: the capture is running (at the start) or has
    everything before it (at the end).  The capture is the signal.
    dumpcap exiting meanwhile is a failure, or a skip when capturing is
    not permitted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dumpcap.poll() is not None:
            with open(log) as f:
                err = f.read()
            why = [line for line in err.splitlines()
                   if re.search(r"permission|not permitted", line, re.I)]
            if why:
                skip(f"capturing on lo is not permitted ({why[0].strip()})")
            raise RuntimeError(f"dumpcap exited {dumpcap.returncode}: {err}")
        sock.sendto(marker, ("127.0.0.1", port))
        try:
            with open(path, "rb") as f:
                if marker in f.read():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.05)  # between probes, not a wait for an event
    raise RuntimeError(f"{marker!r} never reached {path}")


def stop(proc, sig=signal.SIGTERM):
    if proc and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- traffic

def traffic(args, port, server):
    """Every call and frame the capture should show; returns facts."""
    def kv(*cmd, ok=True):
        r = subprocess.run([args.client, "--port", str(port), *cmd],
                           capture_output=True, text=True, timeout=TIMEOUT)
        if ok and r.returncode != 0:
            raise RuntimeError(f"rawrpc-kv {cmd}: {r.stdout}{r.stderr}")
        return r

    kv("put", "split-key", "split-value")
    kv("get", "split-key")
    check(kv("get", "no-such-key", ok=False).returncode != 0,
          "rawrpc-kv get of a missing key fails")
    # The channel gives up at 100 ms (the server about then too).
    kv("--deadline-ms", "100", "sleep", "2000", ok=False)

    # A: one REQUEST a byte per segment, PING + extension in one segment,
    # a call the server ends DEADLINE_EXCEEDED; stays open for GOAWAY.
    a = rawpeer.Peer(port)
    a.send(rawpeer.preface_and_settings())
    a.expect(rawpeer.SETTINGS)
    split = rawpeer.request(7, "/rawrpc.kv.Kv/Get",
                            rawpeer.pb_bytes(1, "split-key"),
                            timeout_us=5000000,
                            metadata=[("trace", "abc-123")])
    a.send_bytewise(split)
    got = a.expect(rawpeer.RESPONSE)
    check(got[1] == 7, "raw client: RESPONSE to the byte-split REQUEST")
    a.send(rawpeer.frame(rawpeer.PING, bytes(range(1, 9))) +
           rawpeer.frame(0x80, b"ext!"))
    check(a.expect(rawpeer.PONG)[3] == bytes(range(1, 9)),
          "raw client: PONG after PING + extension frame")
    a.send(rawpeer.request(8, "/rawrpc.kv.Kv/Sleep", rawpeer.pb_uint(1, 2000),
                           timeout_us=100000))
    got = a.expect(rawpeer.RESPONSE)
    check(got[1] == 8 and got[2][:2] == b"\x08\x04",
          "raw client: Sleep with 100 ms is answered DEADLINE_EXCEEDED",
          repr(got))

    # A CANCEL: the server answers CANCELLED.
    a.send(rawpeer.request(9, "/rawrpc.kv.Kv/Sleep", rawpeer.pb_uint(1, 2000)))
    a.send(rawpeer.frame(rawpeer.CANCEL, b"", 9))
    got = a.expect(rawpeer.RESPONSE)
    check(got[1] == 9 and got[2][:2] == b"\x08\x01",
          "raw client: the cancelled Sleep is answered CANCELLED", repr(got))

    # B: call ID 0 is a PROTOCOL_ERROR.
    b = rawpeer.Peer(port)
    b.send(rawpeer.preface_and_settings())
    b.expect(rawpeer.SETTINGS)
    b.send(rawpeer.request(0, "/rawrpc.kv.Kv/Get", b""))
    b.expect(rawpeer.GOAWAY)
    b.wait_eof()
    b.close()

    # SIGTERM: GOAWAY NO_ERROR to A, which closes; the server exits.
    server.send_signal(signal.SIGTERM)
    a.expect(rawpeer.GOAWAY)
    a.close()
    server.wait(timeout=TIMEOUT)
    check(server.returncode == 0, "the server shut down cleanly")
    return {"split_len": len(split)}


# ------------------------------------------------------------- assertions

class Tshark:
    def __init__(self, lua, cap, base_opts):
        self.base = ["tshark", "-n", "-2", "-X", f"lua_script:{lua}", "-r",
                     cap, *base_opts]

    def rows(self, flt, *fields, opts=()):
        cmd = [*self.base, *opts, "-Y", flt, "-T", "fields",
               "-E", "separator=\t", "-E", "occurrence=a", "-E",
               "aggregator=|"]
        for f in fields:
            cmd += ["-e", f]
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=120)
        err = "\n".join(line for line in r.stderr.splitlines()
                        if "Running as user" not in line)
        if r.returncode != 0 or err.strip():
            raise RuntimeError(f"{' '.join(cmd)}: {r.returncode} {err}")
        return [line.split("\t") for line in r.stdout.splitlines()]

    def text(self):
        """Every packet in full (-V)."""
        return subprocess.run([*self.base, "-V"], capture_output=True,
                              text=True, timeout=120).stdout


def assertions(ts, port, facts, protos):
    # Preface: version 1 both ways on each of the 6 connections (4 of
    # rawrpc-kv, 2 of the raw client).
    rows = ts.rows("rawrpc.preface.version", "rawrpc.preface.version",
                   "rawrpc.preface.reserved")
    check(len(rows) == 12 and all(r == ["1", "0x0000"] for r in rows),
          "12 prefaces (6 connections, both ways), version 1, reserved 0",
          str(rows))

    # SETTINGS by name: the raw client's two entries, the server's.
    rows = ts.rows("rawrpc.setting.value == 4096", "rawrpc.setting.name",
                   "rawrpc.setting.value")
    check(len(rows) == 2 and rows[0] ==
          ["MAX_FRAME_SIZE|MAX_METADATA_SIZE", "1048576|4096"],
          "the raw client's SETTINGS entries by name and value", str(rows))
    names = set()
    for r in ts.rows("rawrpc.type == 1", "rawrpc.setting.name"):
        names.update(r[0].split("|"))
    check("MAX_FRAME_SIZE" in names and len(names - {
        "MAX_FRAME_SIZE", "MAX_CONCURRENT_CALLS", "HEARTBEAT_INTERVAL_MS",
        "MAX_METADATA_SIZE"}) == 0,
        "every SETTINGS id has its name", str(names))

    # Unary calls of rawrpc-kv: methods, statuses, the link both ways.
    rows = ts.rows('rawrpc.type == 2 && rawrpc.method == "/rawrpc.kv.Kv/Put"',
                   "frame.number", "rawrpc.call_id", "rawrpc.response_in")
    check(len(rows) == 1 and rows[0][1] == "1" and rows[0][2] != "",
          "Put: one REQUEST, call 1, with its response_in", str(rows))
    if rows and rows[0][2]:
        req, resp = rows[0][0], rows[0][2]
        r2 = ts.rows(f"frame.number == {resp} && rawrpc.type == 3",
                     "rawrpc.request_in", "rawrpc.status_name",
                     "rawrpc.method", "rawrpc.time")
        check(len(r2) == 1 and r2[0][0] == req and r2[0][1] == "OK" and
              r2[0][2] == "/rawrpc.kv.Kv/Put" and float(r2[0][3]) > 0,
              "Put's RESPONSE: request_in back to it, OK, method, time > 0",
              str(r2))
    rows = ts.rows('rawrpc.status_name == "NOT_FOUND"', "rawrpc.status",
                   "rawrpc.method", "rawrpc.message", "rawrpc.request_in")
    check(len(rows) == 1 and rows[0][0] == "5" and
          rows[0][1] == "/rawrpc.kv.Kv/Get" and rows[0][2] != "" and
          rows[0][3] != "",
          "the missing key: NOT_FOUND (5) with its message", str(rows))
    unlinked = ts.rows("rawrpc.type == 3 && !rawrpc.request_in",
                       "frame.number")
    check(unlinked == [], "every RESPONSE has its request_in", str(unlinked))
    requests = ts.rows("rawrpc.type == 2", "rawrpc.call_id")
    check(len(requests) == 8, "8 REQUEST frames", str(requests))

    # The channel's deadline: its REQUEST carries the budget it had left.
    rows = ts.rows('rawrpc.type == 2 && rawrpc.method == "/rawrpc.kv.Kv/Sleep"'
                   " && rawrpc.call_id == 1", "rawrpc.timeout_us")
    check(len(rows) == 1 and 0 < int(rows[0][0]) <= 100000,
          "rawrpc-kv --deadline-ms 100: timeout_us in (0, 100000]", str(rows))

    # CANCEL, linked to its Sleep REQUEST; the RESPONSE is CANCELLED.
    rows = ts.rows("rawrpc.type == 4", "rawrpc.call_id", "rawrpc.method",
                   "rawrpc.request_in", "rawrpc.length")
    check(["9", "/rawrpc.kv.Kv/Sleep"] in [r[:2] for r in rows] and
          all(r[2] != "" and r[3] == "0" for r in rows),
          "CANCEL of call 9, linked to its REQUEST", str(rows))
    rows = ts.rows("rawrpc.type == 3 && rawrpc.call_id == 9",
                   "rawrpc.status_name", "rawrpc.status")
    check(rows == [["CANCELLED", "1"]], "its RESPONSE: CANCELLED (1)",
          str(rows))

    # The server's deadline: DEADLINE_EXCEEDED after about 100 ms.
    rows = ts.rows('rawrpc.status_name == "DEADLINE_EXCEEDED" && '
                   "rawrpc.call_id == 8",
                   "rawrpc.call_id", "rawrpc.status", "rawrpc.method",
                   "rawrpc.time")
    check(len(rows) == 1 and rows[0][:3] == ["8", "4", "/rawrpc.kv.Kv/Sleep"]
          and 0.09 < float(rows[0][3]) < 2.0,
          "Sleep with 100 ms: DEADLINE_EXCEEDED, response time ~0.1 s",
          str(rows))
    rows = ts.rows("rawrpc.call_id == 8 && rawrpc.type == 2",
                   "rawrpc.timeout_us")
    check(rows == [["100000"]], "its REQUEST's timeout_us", str(rows))

    # A REQUEST one byte per segment, reassembled.
    rows = ts.rows("rawrpc.call_id == 7 && rawrpc.type == 2",
                   "rawrpc.method", "rawrpc.timeout_us",
                   "rawrpc.metadata.key", "rawrpc.metadata.value",
                   "tcp.segment.count", "rawrpc.length")
    check(len(rows) == 1 and rows[0][:4] == [
        "/rawrpc.kv.Kv/Get", "5000000", "trace", "6162632d313233"] and
        int(rows[0][4] or 0) > 10 and
        int(rows[0][5]) + 12 == facts["split_len"],
        "the byte-split REQUEST: reassembled from many segments, decoded",
        str(rows))
    rows = ts.rows("rawrpc.call_id == 7 && rawrpc.type == 3",
                   "rawrpc.status_name", "rawrpc.request_in")
    check(len(rows) == 1 and rows[0][0] == "OK" and rows[0][1] != "",
          "its RESPONSE: OK, linked", str(rows))

    # Two frames in one segment: PING and an extension frame.
    rows = ts.rows("rawrpc.type == 5 && rawrpc.type == 0x80",
                   "rawrpc.type_name", "rawrpc.ping.data", "rawrpc.body")
    check(len(rows) == 1 and rows[0] == ["PING|EXTENSION(0x80)",
                                         "0102030405060708", "65787421"],
          "PING and an extension frame in one segment", str(rows))
    rows = ts.rows("rawrpc.type == 6", "rawrpc.ping.data")
    check(["0102030405060708"] in rows, "the PONG echoes the data", str(rows))

    # GOAWAY: PROTOCOL_ERROR for call ID 0, NO_ERROR on SIGTERM.
    rows = ts.rows('rawrpc.goaway.code_name == "PROTOCOL_ERROR"',
                   "rawrpc.goaway.code", "rawrpc.goaway.message")
    check(len(rows) == 1 and rows[0][0] == "1" and rows[0][1] != "",
          "GOAWAY PROTOCOL_ERROR (1) with a message", str(rows))
    rows = ts.rows('rawrpc.goaway.code_name == "NO_ERROR" && '
                   "rawrpc.goaway.last_call_id == 9", "rawrpc.goaway.code")
    check(len(rows) == 1 and rows[0][0] == "0",
          "the shutdown's GOAWAY NO_ERROR, last_call_id 9", str(rows))

    # Nothing failed to decode: no Lua error, no malformed frame.
    text = ts.text()
    bad = [line for line in text.splitlines()
           if re.search(r"Lua Error|Malformed|Expert Info \(Error", line)]
    check(bad == [] and "rawrpc" in text,
          "every packet decodes without a Lua error", "; ".join(bad[:3]))

    # Detection: the heuristic alone, the port preference alone, neither.
    heur = len(ts.rows("rawrpc", "frame.number"))
    by_port = len(ts.rows("rawrpc", "frame.number", opts=[
        "--disable-heuristic", "rawrpc_tcp", "-o",
        f"rawrpc.tcp_port:{port}"]))
    neither = len(ts.rows("rawrpc", "frame.number", opts=[
        "--disable-heuristic", "rawrpc_tcp"]))
    check(heur > 20 and by_port == heur and neither == 0,
          "found by its preface on any port, or by the port preference",
          f"heuristic {heur}, port {by_port}, neither {neither}")

    # Payloads: bytes, or protobuf once the method's types are configured.
    get = 'rawrpc.call_id == 7'
    rows = ts.rows(get, "rawrpc.payload", "protobuf.message.name")
    check(len(rows) == 2 and
          rows[0] == ["0a09" + b"split-key".hex(), ""] and
          rows[1] == ["0a0b" + b"split-value".hex(), ""],
          "payloads as bytes without configuration",
          str(rows))
    opts = ["-o", "rawrpc.message_types:/rawrpc.kv.Kv/Get="
            "rawrpc.kv.GetRequest,rawrpc.kv.GetReply",
            "-o", f'uat:protobuf_search_paths:"{protos}","TRUE"']
    rows = ts.rows(get, "rawrpc.type", "protobuf.message.name",
                   "protobuf.field.name", "protobuf.field.value", opts=opts)
    check(len(rows) == 2 and
          rows[0] == ["0x02", "rawrpc.kv.GetRequest", "key",
                      b"split-key".hex()] and
          rows[1] == ["0x03", "rawrpc.kv.GetReply", "value",
                      b"split-value".hex()],
          "with the method's types: handed to the protobuf dissector",
          str(rows))


# ------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--lua", required=True)
    ap.add_argument("--protos", required=True)
    ap.add_argument("--keep", help="copy the capture here")
    args = ap.parse_args()
    args.protos = os.path.abspath(args.protos)

    for tool in ("tshark", "dumpcap"):
        if not shutil.which(tool):
            skip(f"no {tool} (apt-get install tshark)")
    version = subprocess.run(["tshark", "-v"], capture_output=True,
                             text=True).stdout
    if not re.search(r"with Lua|\+Lua|Lua \d", version):
        skip("this tshark has no Lua")

    tmp = tempfile.mkdtemp(prefix="rawrpc-wireshark-")
    cap = os.path.join(tmp, "rawrpc.pcapng")
    server = dumpcap = None
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        server = subprocess.Popen(
            [args.server, "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        port = int(wait_line(server, r"listening on .*:(\d+)$").group(1))

        log = os.path.join(tmp, "dumpcap.log")
        with open(log, "w") as logf:
            dumpcap = subprocess.Popen(
                ["dumpcap", "-i", "lo", "-f", f"port {port}", "-w", cap,
                 "-a", "duration:300", "-c", "100000"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=logf)
        wait_marker(cap, udp, port, b"rawrpc-wireshark-test-start", dumpcap,
                    log)

        facts = traffic(args, port, server)

        wait_marker(cap, udp, port, b"rawrpc-wireshark-test-end", dumpcap,
                    log)
        stop(dumpcap, signal.SIGINT)
        check(dumpcap.returncode == 0, "dumpcap stopped cleanly")
        if args.keep:
            shutil.copy(cap, args.keep)

        ts = Tshark(args.lua, cap, ["-o", "tcp.try_heuristic_first:TRUE"])
        assertions(ts, port, facts, args.protos)
    finally:
        stop(server)
        stop(dumpcap, signal.SIGINT)
        udp.close()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"wireshark: {len(passes)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_cli.py CLI SERVER SRCDIR PROTO_INCLUDE -- the `rawrpc` command-line
caller against cli_server, with protoc as the oracle: every field type,
repeated, maps, a oneof, nesting and the well-known types go JSON -> wire
-> JSON unchanged; the wire bytes decode with `protoc --decode` to the
same values (read back with python3-protobuf from protoc's own Python
output); text format; metadata; deadlines; reflection (list, describe),
--proto and --protoset; health; and each error (bad JSON, an unknown
field, an unknown method, an unreachable server) is one line on stderr
with a non-zero exit.  Runs only what it starts, on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys
import tempfile

cli, server_bin, src, proto_inc = (os.path.abspath(a) for a in sys.argv[1:5])
tmp = tempfile.mkdtemp(prefix="rawrpc-cli-")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def start(*args):
    p = subprocess.Popen([server_bin, *args], stdout=subprocess.PIPE,
                         text=True)
    line = p.stdout.readline()  # "listening on 127.0.0.1:PORT"
    if "listening on" not in line:
        p.kill()
        sys.exit("cli_server did not start: %r" % line)
    return p, line.split()[-1]


def run(*args, stdin=None):
    r = subprocess.run([cli, *args], input=stdin, capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def js(text):
    """The JSON in text, or None."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def one_line_error(rc, err, what, code=None):
    check(rc != 0, "%s: exit status 0" % what)
    if code is not None:
        check(rc == code, "%s: exit %d, not %d" % (what, rc, code))
    lines = [l for l in err.splitlines() if l]
    check(len(lines) == 1, "%s: not one line on stderr: %r" % (what, err))


# The message every field of which is set, in canonical JSON.
full = {
    "fDouble": 2.25, "fFloat": 1.5, "fInt32": -7, "fInt64": "-9000000000",
    "fUint32": 4000000000, "fUint64": "18000000000000000000",
    "fSint32": -3, "fSint64": "-42", "fFixed32": 77,
    "fFixed64": "12345678901234", "fSfixed32": -8, "fSfixed64": "-5",
    "fBool": True, "fString": "héllo \"q\"", "fBytes": "AAEC/w==",
    "color": "GREEN",
    "inner": {"name": "in", "nums": [1, 2, 3]},
    "tags": ["a", "b"],
    "inners": [{"name": "x"}, {"name": "y", "nums": [9]}],
    "counts": {"k1": "1", "k2": "-2"},
    "byId": {"7": {"name": "seven"}},
    "choiceInner": {"name": "picked"},
    "when": "2026-12-02T01:02:03.500Z",
    "took": "1.500s",
    "maybeInt": "0",
    "maybeText": "",
    "extra": {"a": [1, "two", None, True], "b": {"c": 3.5}},
    "any": {"@type": "type.googleapis.com/google.protobuf.Duration",
            "value": "2s"},
    "mask": "fDouble,inner.name",
}

# Python classes for all.proto, from protoc itself: the oracle's reader.
subprocess.run(["protoc", "-I" + src, "-I" + proto_inc, "--python_out=" + tmp,
                os.path.join(src, "all.proto")], check=True)
sys.path.insert(0, tmp)
import all_pb2  # noqa: E402
from google.protobuf import json_format, text_format  # noqa: E402

srv, addr = start()
try:
    # JSON -> wire -> JSON, and the wire as protoc reads it.
    wire = os.path.join(tmp, "request.bin")
    rc, out, err = run("call", addr, "clitest.Echo/Echo", json.dumps(full),
                       "--emit-wire", wire)
    check(rc == 0, "call: exit %d: %s" % (rc, err))
    got = js(out)
    check(got == full, "JSON round trip:\n%s\n!=\n%s" % (got, full))
    with open(wire, "rb") as f:
        raw = f.read()
    dec = subprocess.run(
        ["protoc", "-I" + src, "-I" + proto_inc, "--decode=clitest.All",
         "all.proto"], input=raw, capture_output=True, cwd=src)
    check(dec.returncode == 0, "protoc --decode: %s" % dec.stderr)
    by_protoc = all_pb2.All()
    text_format.Parse(dec.stdout.decode(), by_protoc)
    expected = json_format.ParseDict(full, all_pb2.All())
    check(by_protoc == expected, "protoc --decode reads other values:\n%s"
          % dec.stdout.decode())
    check(all_pb2.All.FromString(raw) == expected, "wire != expected")

    # Defaults printed on request; text format.
    rc, out, _ = run("call", addr, "clitest.Echo/Echo", "{}")
    check(rc == 0 and js(out) == {}, "empty: %r" % out)
    rc, out, _ = run("--emit-defaults", "call", addr, "clitest.Echo/Echo", "{}")
    d = js(out)
    check(d.get("fInt32") == 0 and d.get("fString") == "" and
          d.get("color") == "COLOR_UNSET" and d.get("fInt64") == "0",
          "--emit-defaults: %r" % d)
    rc, out, _ = run("--format", "text", "call", addr, "clitest.Echo/Echo",
                     json.dumps(full))
    t = all_pb2.All()
    text_format.Parse(out, t)
    check(rc == 0 and t == expected, "--format text: %r" % out)

    # The request from a file and from standard input; metadata.
    req = os.path.join(tmp, "req.json")
    with open(req, "w") as f:
        json.dump({"fString": "from a file"}, f)
    rc, out, _ = run("call", addr, "clitest.Echo/Echo", "-d", "@" + req)
    check(rc == 0 and js(out) == {"fString": "from a file"},
          "-d @file: %r" % out)
    rc, out, _ = run("call", addr, "clitest.Echo/Echo", "-d", "@-",
                     stdin='{"fInt32": 5}')
    check(rc == 0 and js(out) == {"fInt32": 5}, "-d @-: %r" % out)
    rc, out, _ = run("-H", "x-note: hello there", "call", addr,
                     "clitest.Echo/Echo", "{}")
    check(rc == 0 and js(out) == {"note": "hello there"},
          "-H: %r" % out)

    # A deadline: the call's status is the exit status.
    rc, out, err = run("--deadline", "0.2", "call", addr, "clitest.Echo/Hang",
                       "{}")
    one_line_error(rc, err, "deadline", 4)
    check(err.startswith("DEADLINE_EXCEEDED: "), "deadline: %r" % err)

    # Reflection.
    rc, out, _ = run("list", addr)
    for s in ("clitest.Echo", "rawrpc.health.v1.Health",
              "grpc.reflection.v1.ServerReflection"):
        check(s in out.split(), "list: no %s in %r" % (s, out))
    rc, out, _ = run("list", addr, "clitest.Echo")
    check(out.split() == ["clitest.Echo.Echo", "clitest.Echo.Hang"],
          "list clitest.Echo: %r" % out)
    rc, out, _ = run("describe", addr, "clitest.All")
    check(rc == 0 and "message All {" in out and "f_sfixed64" in out,
          "describe: %r" % out)
    rc, out, _ = run("describe", addr, "clitest.Echo.Hang")
    check(rc == 0 and "google.protobuf.Empty" in out, "describe method: %r"
          % out)

    # Health.
    rc, out, _ = run("health", addr)
    check(rc == 0 and out.strip() == "SERVING", "health: %d %r" % (rc, out))
    rc, out, _ = run("health", addr, "clitest.Echo")
    check(rc == 0 and out.strip() == "SERVING", "health svc: %r" % out)
    rc, out, err = run("health", addr, "nope")
    one_line_error(rc, err, "health nope", 5)

    # Errors: one line each, non-zero.
    rc, out, err = run("call", addr, "clitest.Echo/Echo", '{"fInt32": ')
    one_line_error(rc, err, "bad JSON", 2)
    rc, out, err = run("call", addr, "clitest.Echo/Echo", '{"nope": 1}')
    one_line_error(rc, err, "unknown field", 2)
    check("nope" in err, "unknown field not named: %r" % err)
    rc, out, err = run("call", addr, "clitest.Echo/Nope", "{}")
    one_line_error(rc, err, "unknown method", 2)
    rc, out, err = run("call", addr, "clitest.Nope/Echo", "{}")
    one_line_error(rc, err, "unknown service", 2)
    rc, out, err = run("call", addr, "clitest.Echo/Echo", "-d", "@" + tmp)
    one_line_error(rc, err, "-d @directory", 2)
    rc, out, err = run("-H", "rr-x:1", "call", addr, "clitest.Echo/Echo", "{}")
    one_line_error(rc, err, "reserved metadata key", 2)
    check("reserved" in err, "reserved key: no reason: %r" % err)
    rc, out, err = run("--proto", "nope.proto", "call", addr,
                       "clitest.Echo/Echo", "{}")
    one_line_error(rc, err, "--proto of a missing file", 2)
    rc, out, err = run("list", addr, "clitest.All")
    one_line_error(rc, err, "list of a message", 2)
    check("wrappers" not in err, "list of a message: a false reason: %r"
          % err)
finally:
    srv.terminate()
    srv.wait(timeout=10)

# An unreachable server: a port nobody listens on any more.
s = socket.socket()
s.bind(("127.0.0.1", 0))
dead = "127.0.0.1:%d" % s.getsockname()[1]
s.close()
rc, out, err = run("call", dead, "clitest.Echo/Echo", "{}")
one_line_error(rc, err, "unreachable", 14)
check(err.startswith("UNAVAILABLE: "), "unreachable: %r" % err)

# Without reflection: --proto and --protoset, and a clear word without.
srv, addr = start("--no-reflection")
try:
    rc, out, err = run("call", addr, "clitest.Echo/Echo", '{"fInt32": 1}')
    one_line_error(rc, err, "no reflection", 2)
    check("--proto" in err, "no reflection: %r" % err)
    rc, out, err = run("--proto", "all.proto", "-I", src, "call", addr,
                       "clitest.Echo/Echo", json.dumps(full))
    check(rc == 0 and js(out) == full, "--proto: %d %r %r"
          % (rc, out, err))
    pset = os.path.join(tmp, "all.protoset")
    subprocess.run(["protoc", "-I" + src, "-I" + proto_inc,
                    "--include_imports", "--descriptor_set_out=" + pset,
                    "all.proto"], check=True, cwd=src)
    rc, out, err = run("--protoset", pset, "call", addr, "clitest.Echo/Echo",
                       '{"when": "1970-01-01T00:00:01Z"}')
    check(rc == 0 and js(out) == {"when": "1970-01-01T00:00:01Z"},
          "--protoset: %d %r %r" % (rc, out, err))
finally:
    srv.terminate()
    srv.wait(timeout=10)

if failures:
    sys.exit("%d failed" % len(failures))
print("cli: every check passed")

# SPDX-License-Identifier: MIT
"""The C programs under test, started by the tests and ended by PID:
rawrpc-interop-server and rawrpc-interop-client (paths from the
environment ctest sets; RR_INTEROP_WRAPPER, valgrind in the valgrind
build, runs them)."""

import os
import select
import signal
import subprocess
import tempfile
import time

from conn import SLOW, TIMEOUT

SERVER = os.environ.get("RR_INTEROP_SERVER", "")
CLIENT = os.environ.get("RR_INTEROP_CLIENT", "")
WRAPPER = os.environ.get("RR_INTEROP_WRAPPER", "").split()


def _read_line(proc, deadline):
    """One line of proc's stdout, waiting at most until deadline."""
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no line from {proc.args} in time: {line!r}")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            b = os.read(proc.stdout.fileno(), 1)
            if not b:
                raise AssertionError(
                    f"{proc.args} ended (status {proc.wait()}): {line!r}")
            line += b
    return line.decode()


class Server:
    """rawrpc-interop-server with the given options, on 127.0.0.1:0."""

    def __init__(self, **opts):
        if not SERVER:
            raise RuntimeError("RR_INTEROP_SERVER is not set (run via ctest)")
        args = [SERVER]
        for k, v in opts.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(WRAPPER + args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        self.status = None
        self.terminated = False
        self.output = ""
        line = _read_line(self.proc, time.monotonic() + 10 * SLOW)
        assert line.startswith("port "), line
        self.port = int(line.split()[1])

    def terminate(self):
        """Asks for a graceful shutdown (SIGTERM), once."""
        if not self.terminated:
            self.terminated = True
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout=TIMEOUT):
        """Waits for the exit; returns the status (None if still running
        after timeout)."""
        try:
            self.status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.output = self.proc.stdout.read().decode()
        return self.status

    def executions(self):
        for line in self.output.splitlines():
            if line.startswith("executions "):
                return int(line.split()[1])
        return None

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self):
        """Graceful stop; kills by PID if that takes too long.  Returns
        the exit status."""
        self.terminate()
        if self.wait(TIMEOUT + 5) is None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc.stdout.close()
            self.stderr.close()
            raise AssertionError("server did not stop on SIGTERM; killed")
        self.proc.stdout.close()
        status = self.status
        if status != 0:
            log = self.log()
            self.stderr.close()
            raise AssertionError(f"server exited {status}: {log[-3000:]}")
        self.stderr.close()
        return status


class ClientRun:
    """rawrpc-interop-client ADDR CALL..., running; see interop_client.c."""

    def __init__(self, port, calls, **opts):
        if not CLIENT:
            raise RuntimeError("RR_INTEROP_CLIENT is not set (run via ctest)")
        args = [CLIENT]
        for k, v in opts.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        args.append(f"127.0.0.1:{port}")
        args += calls
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(WRAPPER + args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=self.stderr)

    def command(self, line):
        """Sends a command: "start I" (a call given hold=1), "cancel I"."""
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def finish(self, timeout=TIMEOUT):
        """Waits for the client to exit; returns (status, results) where
        results maps a call's index to a dict: status, msg, text, data."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate(timeout=5)
            self.stderr.seek(0)
            raise AssertionError(
                f"client did not finish: {out!r} "
                f"{self.stderr.read().decode(errors='replace')[-2000:]}")
        self.stderr.seek(0)
        self.log = self.stderr.read().decode(errors="replace")
        self.stderr.close()
        self.lines = out.decode().splitlines()
        results = {}
        for line in self.lines:
            words = line.split(" ")
            if words[0] != "result":
                continue
            r = {"status": words[2]}
            for w in words[3:]:
                k, _, v = w.partition("=")
                r[k] = unescape(v) if k in ("msg", "text") else v
            assert int(words[1]) not in results, f"two results: {line}"
            results[int(words[1])] = r
        return self.proc.returncode, results

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=5)
        if not self.stderr.closed:
            self.stderr.close()


def unescape(s):
    """The client's escaping undone: \\xHH is one byte; returns str."""
    out = bytearray()
    i = 0
    while i < len(s):
        if s[i] == "\\" and s[i + 1:i + 2] == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        else:
            out += s[i].encode()
            i += 1
    return out.decode("utf-8", errors="strict")

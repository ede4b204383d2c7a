# SPDX-License-Identifier: MIT
"""One end of a rawrpc connection over a socket, for either side: bounded
reads (every one has a deadline), a backlog of frames read ahead, and a
log of everything received for assertion messages."""

import errno
import os
import socket
import time

import codec

# Under valgrind the C programs run many times slower: scale waits.
SLOW = 2.0 if os.environ.get("RR_INTEROP_WRAPPER", "").strip() else 1.0
TIMEOUT = 5.0 * SLOW  # the longest wait for anything expected
ERROR_WAIT = 1.5 * SLOW  # for what the peer owes at once (a GOAWAY, a close)


class Conn:
    def __init__(self, sock, preface=True):
        self.sock = sock
        self.reader = codec.Reader(preface=preface)
        self.backlog = []     # frames read while looking for another
        self.received = []    # every frame, in order
        self.eof = False
        self.reset = False
        self.ping_seq = 0

    # -------------------------------------------------------------- bytes

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """Sends, reporting False instead of raising if the peer is gone."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def shut_wr(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self, deadline):
        """Reads once into the reader; False on timeout.  EOF and reset
        set self.eof."""
        if self.eof:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        except ConnectionResetError:
            self.reset = True
            data = b""
        except OSError as e:
            if e.errno != errno.ECONNRESET:
                raise
            self.reset = True
            data = b""
        if not data:
            self.eof = True
        self.reader.feed(data)
        return True

    def read_preface(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while self.reader.take_preface() is None:
            if self.eof:
                raise AssertionError(
                    f"EOF after {len(self.reader.buf)} bytes of preface")
            if not self._fill(deadline):
                raise AssertionError("no preface in time")
        return self.reader.got_preface

    # ------------------------------------------------------------- frames

    def check(self, frame):
        """Called once for each frame received: a subclass checks the
        peer's side of the rules here (raising AssertionError)."""

    def read_frame(self, timeout=TIMEOUT):
        """The next frame; None at EOF; AssertionError if none comes in
        time."""
        if self.backlog:
            return self.backlog.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            f = self.reader.next_frame()
            if f is not None:
                self.received.append(f)
                self.check(f)
                return f
            if self.eof:
                if self.reader.buf:
                    raise AssertionError(
                        f"EOF inside a frame: {bytes(self.reader.buf)!r}")
                return None
            if not self._fill(deadline):
                raise AssertionError(
                    f"no frame within {timeout:.1f} s; got {self.received}")

    def poll_frame(self, timeout):
        """Like read_frame, but None also when nothing came in time."""
        try:
            return self.read_frame(timeout)
        except AssertionError as e:
            if str(e).startswith("no frame within"):
                return None
            raise

    def frames_for(self, seconds, answer_pings=True):
        """Every frame that arrives within `seconds` (or until EOF)."""
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            f = self.poll_frame(left)
            if f is None:
                break
            out.append(f)
            if answer_pings and f.type == codec.PING:
                self.send(codec.pong_frame(f.body))
        return out

    def read_until(self, pred, timeout=TIMEOUT, answer_pings=True):
        """Reads until a frame matches pred; returns (frame, others).  The
        others stay readable in the backlog too, unless they were PINGs
        answered here."""
        others = []
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline + 1.0:  # frames kept coming
                raise AssertionError(f"no match within {timeout:.1f} s")
            f = self.read_frame(max(0.0, deadline - time.monotonic()))
            if f is None:
                raise AssertionError(
                    f"EOF while waiting; got {self.received}")
            if pred(f):
                self.backlog = others + self.backlog
                return f, list(others)
            if answer_pings and f.type == codec.PING:
                self.send(codec.pong_frame(f.body))
                continue
            others.append(f)

    def expect_eof(self, timeout=TIMEOUT, answer_pings=True):
        """Reads up to EOF; returns the frames read before it."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline + 1.0:  # frames kept coming
                raise AssertionError(f"no EOF within {timeout:.1f} s")
            f = self.read_frame(max(0.0, deadline - time.monotonic()))
            if f is None:
                return out
            if answer_pings and f.type == codec.PING:
                self.try_send(codec.pong_frame(f.body))
            out.append(f)

    def roundtrip(self, timeout=TIMEOUT):
        """Sends a PING and reads until its PONG: everything the peer did
        for the bytes sent before is then on the way.  Returns the frames
        read meanwhile (also left in the backlog)."""
        self.ping_seq += 1
        payload = b"rt" + self.ping_seq.to_bytes(6, "big")
        self.send(codec.ping_frame(payload))
        _, others = self.read_until(
            lambda f: f.type == codec.PONG and f.body == payload, timeout)
        return others

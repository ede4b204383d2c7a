# SPDX-License-Identifier: MIT
"""A raw rawrpc v1 client for the dissector's test: it writes frames byte
by byte, several frames in one write, an extension frame and a bad frame,
which the C channel never does.  Protobuf is encoded by hand (the few
fields of RequestMeta and the kv requests), so it needs nothing generated.
"""

import socket
import struct
import time

MAGIC = bytes.fromhex("89525250430D0A1A")
SETTINGS, REQUEST, RESPONSE, CANCEL, PING, PONG, GOAWAY = range(1, 8)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def pb_uint(num, value):
    return varint(num << 3) + varint(value)


def request_meta(method, timeout_us=0, metadata=()):
    meta = pb_bytes(1, method)
    if timeout_us:
        meta += pb_uint(2, timeout_us)
    for key, value in metadata:
        meta += pb_bytes(3, pb_bytes(1, key) + pb_bytes(2, value))
    return meta


def frame(ftype, body=b"", call_id=0, meta_len=0, flags=0):
    return struct.pack(">IBBHI", len(body), ftype, flags, meta_len,
                       call_id) + body


def request(call_id, method, payload, timeout_us=0, metadata=()):
    meta = request_meta(method, timeout_us, metadata)
    return frame(REQUEST, meta + payload, call_id, len(meta))


def preface_and_settings(entries=((1, 1 << 20), (4, 4096))):
    body = b"".join(struct.pack(">HI", i, v) for i, v in entries)
    return MAGIC + struct.pack(">HH", 1, 0) + frame(SETTINGS, body)


class Peer:
    """One connection; every read has a deadline."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.preface = None

    def send(self, data):
        self.sock.sendall(data)

    def send_bytewise(self, data):
        """One send() per byte; with TCP_NODELAY each leaves at once."""
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("rawpeer: nothing from the server in time")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("rawpeer: the server closed")
        self.buf += data

    def read_frame(self):
        """The next frame as (type, call_id, meta, payload); reads the
        server's preface first if not yet read."""
        deadline = time.monotonic() + self.timeout
        if self.preface is None:
            while len(self.buf) < 12:
                self._fill(deadline)
            if self.buf[:8] != MAGIC:
                raise ValueError("rawpeer: bad preface %r" % self.buf[:12])
            self.preface, self.buf = self.buf[:12], self.buf[12:]
        while len(self.buf) < 12:
            self._fill(deadline)
        length, ftype, _, meta_len, call_id = struct.unpack(
            ">IBBHI", self.buf[:12])
        while len(self.buf) < 12 + length:
            self._fill(deadline)
        body, self.buf = self.buf[12:12 + length], self.buf[12 + length:]
        return ftype, call_id, body[:meta_len], body[meta_len:]

    def expect(self, ftype):
        while True:
            f = self.read_frame()
            if f[0] == ftype:
                return f

    def wait_eof(self):
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._fill(deadline)
            except EOFError:
                return
            except ConnectionResetError:
                return

    def close(self):
        self.sock.close()

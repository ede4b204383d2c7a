# SPDX-License-Identifier: MIT
"""A Python rawrpc server for testing the C channel: the test scripts what
it answers, frame by frame, and every frame the client sends is checked
against PROTOCOL.md."""

import socket
from dataclasses import dataclass

import codec
from codec import (CANCEL, GOAWAY, PING, PONG, REQUEST, SETTINGS)
from conn import TIMEOUT, Conn

import testmsg_pb2

DEFAULT_SETTINGS = [(codec.MAX_FRAME_SIZE, 4194304),
                    (codec.MAX_CONCURRENT_CALLS, 100),
                    (codec.HEARTBEAT_INTERVAL_MS, 0),
                    (codec.MAX_METADATA_SIZE, 8192)]


@dataclass
class Request:
    call_id: int
    method: str
    timeout_us: int
    metadata: list
    payload: bytes
    frame: codec.Frame

    def echo(self):
        m = testmsg_pb2.Echo()
        m.ParseFromString(self.payload)
        return m


class Listener:
    """A listening socket on 127.0.0.1, port chosen by the kernel."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]

    def accept(self, timeout=TIMEOUT):
        self.sock.settimeout(timeout)
        try:
            s, _ = self.sock.accept()
        except socket.timeout:
            raise AssertionError(f"no connection within {timeout:.1f} s") from None
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Peer(s)

    def close(self):
        self.sock.close()


class Peer(Conn):
    """The server's end of one connection from the C channel."""

    def __init__(self, sock):
        super().__init__(sock, preface=True)
        self.limits = codec.apply_settings(DEFAULT_SETTINGS)  # ours
        self.client_settings = None
        self.client_preface = None
        self.greatest = 0
        self.requests = {}     # call_id -> Request
        self.in_flight = set()
        self.max_in_flight = 0
        self.cancels = []
        self.goaways = []

    # ---------------------------------------------------------- handshake

    def hello(self, settings=DEFAULT_SETTINGS, version=codec.VERSION,
              magic=codec.MAGIC):
        self.limits = codec.apply_settings(settings, strict=False)
        self.send(codec.encode_preface(version, magic=magic) +
                  codec.encode_settings(settings))

    def read_hello(self, timeout=TIMEOUT):
        """Reads the client's preface and SETTINGS; returns its limits."""
        self.read_preface(timeout)
        self.client_preface = self.reader.raw_preface
        f = self.read_frame(timeout)
        assert f is not None and f.type == SETTINGS, \
            f"client's first frame: {f}"
        return self.client_settings

    def handshake(self, settings=DEFAULT_SETTINGS, **kw):
        self.hello(settings, **kw)
        return self.read_hello()

    # ------------------------------------------------------------- checks

    def check(self, f):
        assert f.flags == 0, f"client sent flags {f.flags}: {f}"
        assert f.type in (SETTINGS, REQUEST, CANCEL, PING, PONG, GOAWAY), \
            f"client sent {f}"
        assert len(f.body) <= self.limits[codec.MAX_FRAME_SIZE], \
            f"client sent {len(f.body)} bytes over our MAX_FRAME_SIZE"
        if self.client_settings is None:
            assert f.type == SETTINGS, f"client's first frame is {f}"
        if f.type in (REQUEST, CANCEL):
            assert f.call_id != 0, f"call_id 0: {f}"
        else:
            assert f.call_id == 0, f"connection frame with a call_id: {f}"
        if f.type != REQUEST:
            assert f.meta_len == 0, f"meta_len on {f}"
        if f.type == SETTINGS:
            assert self.client_settings is None, "second SETTINGS"
            self.client_settings = codec.apply_settings(
                codec.decode_settings(f.body))  # every value in range
        elif f.type == REQUEST:
            self._check_request(f)
        elif f.type == CANCEL:
            assert f.body == b"", f"CANCEL with a body: {f}"
            assert f.call_id in self.requests, f"CANCEL of a call never sent: {f}"
            self.cancels.append(f.call_id)
        elif f.type in (PING, PONG):
            assert len(f.body) == 8, f"{f.name()} of {len(f.body)} bytes"
        elif f.type == GOAWAY:
            g = codec.decode_goaway(f.body)
            assert g.last_call_id == 0, f"client GOAWAY names {g.last_call_id}"
            self.goaways.append(g)

    def _check_request(self, f):
        assert f.call_id > self.greatest, \
            f"call_id {f.call_id} not above {self.greatest}"
        self.greatest = f.call_id
        assert f.meta_len <= len(f.body), f"meta_len > length: {f}"
        assert f.meta_len <= self.limits[codec.MAX_METADATA_SIZE], \
            f"meta_len {f.meta_len} over our MAX_METADATA_SIZE"
        try:
            m = codec.decode_request_meta(f.meta)  # strict UTF-8
        except Exception as e:
            raise AssertionError(f"RequestMeta does not decode: {e}") from None
        self.requests[f.call_id] = Request(
            f.call_id, m.method, m.timeout_us,
            [(e.key, e.value) for e in m.metadata], f.payload, f)
        self.in_flight.add(f.call_id)
        self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
        assert len(self.in_flight) <= self.limits[codec.MAX_CONCURRENT_CALLS], \
            f"{len(self.in_flight)} calls in flight, over our limit"

    # -------------------------------------------------------------- calls

    def read_request(self, timeout=TIMEOUT):
        f, _ = self.read_until(lambda f: f.type == REQUEST, timeout)
        return self.requests[f.call_id]

    def read_requests(self, n, timeout=TIMEOUT):
        return [self.read_request(timeout) for _ in range(n)]

    def respond(self, call_id, payload=b"", status=0, message="", meta=None):
        self.in_flight.discard(call_id)
        self.send(codec.response_frame(call_id, payload, status, message, meta))

    def read_cancel(self, call_id, timeout=TIMEOUT):
        self.read_until(lambda f: f.type == CANCEL and f.call_id == call_id,
                        timeout)

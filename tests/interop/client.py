# SPDX-License-Identifier: MIT
"""A Python rawrpc client for testing the C server: it sends exactly the
bytes a test asks for (valid or not) and checks every frame the server
sends against PROTOCOL.md."""

import socket
import struct
from dataclasses import dataclass

import codec
from codec import GOAWAY, PING, PONG, RESPONSE, SETTINGS
from conn import ERROR_WAIT, TIMEOUT, Conn

DEFAULT_SETTINGS = [(codec.MAX_FRAME_SIZE, 4194304),
                    (codec.MAX_CONCURRENT_CALLS, 100),
                    (codec.HEARTBEAT_INTERVAL_MS, 0),
                    (codec.MAX_METADATA_SIZE, 8192)]


@dataclass
class Reply:
    call_id: int
    status: int
    message: str
    payload: bytes
    meta_len: int
    frame: codec.Frame

    @property
    def status_name(self):
        return codec.status_name(self.status)


class Client(Conn):
    def __init__(self, sock):
        super().__init__(sock, preface=True)
        self.settings = dict(codec.SETTING_INITIAL)  # what we advertised
        self.server_settings = None
        self.server_version = None
        self.last_id = 0
        self.sent_ids = set()
        self.answered = set()
        self.goaways = []
        self.got_settings = False

    @classmethod
    def connect(cls, port, timeout=TIMEOUT):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    # ---------------------------------------------------------- handshake

    def hello(self, settings=DEFAULT_SETTINGS, version=codec.VERSION):
        """Sends our preface and SETTINGS (not waiting for the server's)."""
        self.settings = codec.apply_settings(settings, strict=False)
        self.send(codec.encode_preface(version) + codec.encode_settings(settings))

    def read_hello(self, timeout=TIMEOUT):
        """Reads and checks the server's preface and SETTINGS."""
        version, reserved = self.read_preface(timeout)
        assert version == codec.VERSION, f"server preface version {version}"
        assert reserved == 0, f"server preface reserved {reserved}"
        self.server_version = version
        f = self.read_frame(timeout)
        assert f is not None, "EOF instead of the server's SETTINGS"
        assert f.type == SETTINGS, f"server's first frame is {f}"
        self.server_settings = codec.apply_settings(codec.decode_settings(f.body))
        return self.server_settings

    def handshake(self, settings=DEFAULT_SETTINGS, version=codec.VERSION):
        self.hello(settings, version)
        return self.read_hello()

    # ------------------------------------------------------------- checks

    def check(self, f):
        assert f.flags == 0, f"server sent flags {f.flags}: {f}"
        assert f.type in (SETTINGS, RESPONSE, PING, PONG, GOAWAY), \
            f"server sent {f}"
        assert len(f.body) <= self.settings[codec.MAX_FRAME_SIZE], \
            f"server sent {len(f.body)} bytes over our MAX_FRAME_SIZE"
        if not self.got_settings:
            assert f.type == SETTINGS, f"server's first frame is {f}"
        if f.type == RESPONSE:
            assert f.call_id != 0, f"RESPONSE with call_id 0: {f}"
            assert f.meta_len <= len(f.body), f"meta_len > length: {f}"
            assert f.call_id in self.sent_ids, \
                f"RESPONSE for call {f.call_id}, never sent"
            assert f.call_id not in self.answered, \
                f"second RESPONSE for call {f.call_id}"
            self.answered.add(f.call_id)
            try:  # strict: a message that is not UTF-8 raises DecodeError
                codec.decode_response_meta(f.meta)
            except Exception as e:
                raise AssertionError(
                    f"ResponseMeta of call {f.call_id} does not decode "
                    f"strictly ({e}): {f.meta[-60:]!r}") from None
            return
        assert f.call_id == 0, f"connection frame with a call_id: {f}"
        assert f.meta_len == 0, f"meta_len on a connection frame: {f}"
        if f.type == SETTINGS:
            assert not self.got_settings, "second SETTINGS from the server"
            self.got_settings = True
            codec.apply_settings(codec.decode_settings(f.body))  # in range
        elif f.type in (PING, PONG):
            assert len(f.body) == 8, f"{f.name()} of {len(f.body)} bytes"
        elif f.type == GOAWAY:
            g = codec.decode_goaway(f.body)  # strict UTF-8
            for earlier in self.goaways:
                assert g.last_call_id <= earlier.last_call_id, \
                    "a later GOAWAY raised last_call_id"
            self.goaways.append(g)

    # -------------------------------------------------------------- calls

    def next_id(self):
        return self.last_id + 1

    def request(self, method, payload=b"", timeout_us=0, metadata=(),
                call_id=None, meta=None):
        """Sends a REQUEST; returns its call ID."""
        if call_id is None:
            call_id = self.next_id()
        self.last_id = max(self.last_id, call_id)
        self.sent_ids.add(call_id)
        self.send(codec.request_frame(call_id, method, payload, timeout_us,
                                      metadata, meta))
        return call_id

    def cancel(self, call_id):
        self.send(codec.cancel_frame(call_id))

    def response(self, call_id, timeout=TIMEOUT):
        f, _ = self.read_until(
            lambda f: f.type == RESPONSE and f.call_id == call_id, timeout)
        meta = codec.decode_response_meta(f.meta)
        return Reply(call_id, meta.status, meta.message, f.payload,
                     f.meta_len, f)

    def call(self, method, payload=b"", timeout_us=0, metadata=(),
             timeout=TIMEOUT):
        """One unary call: its Reply."""
        return self.response(self.request(method, payload, timeout_us,
                                          metadata), timeout)

    def call_msg(self, method, req, reply_type, timeout_us=0, metadata=(),
                 timeout=TIMEOUT):
        """A call with protobuf messages: (Reply, decoded reply or None)."""
        r = self.call(method, req.SerializeToString(), timeout_us, metadata,
                      timeout)
        out = None
        if r.status == 0:
            out = reply_type()
            out.ParseFromString(r.payload)
        return r, out

    # ------------------------------------------------------------ closing

    def goaway(self, timeout=TIMEOUT, answer_pings=True):
        f, _ = self.read_until(lambda f: f.type == GOAWAY, timeout,
                               answer_pings)
        return codec.decode_goaway(f.body)

    def expect_error(self, code, timeout=ERROR_WAIT, answer_pings=True):
        """The server must send GOAWAY `code`, then close; returns the
        GOAWAY."""
        try:
            g = self.goaway(timeout, answer_pings)
        except AssertionError as e:
            raise AssertionError(
                f"expected GOAWAY {codec.error_name(code)}: {e}") from None
        assert g.error_code == code, (
            f"GOAWAY {codec.error_name(g.error_code)} ({g.message!r}), "
            f"expected {codec.error_name(code)}")
        self.expect_eof(timeout, answer_pings)
        return g

    def alive(self, timeout=TIMEOUT):
        """The connection still works: a PING gets its PONG."""
        self.roundtrip(timeout)
        return True


def settings_frame(*entries):
    return codec.encode_settings(list(entries))


def raw_frame(length, ftype, flags=0, meta_len=0, call_id=0, body=b""):
    return struct.pack(">IBBHI", length, ftype, flags, meta_len,
                       call_id) + body


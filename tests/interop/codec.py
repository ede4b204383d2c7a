# SPDX-License-Identifier: MIT
"""The rawrpc v1 wire codec, written from docs/PROTOCOL.md alone.

Integers are big-endian.  A connection starts with a 12-byte preface
(section 2), then frames: a 12-byte header (length u32, type u8, flags u8,
meta_len u16, call_id u32) and `length` bytes of body (section 3).  The
metadata of REQUEST and RESPONSE is protobuf (rawrpc.v1, wire.proto),
decoded with python3-protobuf, whose proto3 decoder rejects strings that
are not UTF-8: the oracle for "every string the library sends is UTF-8".
"""

import struct
from dataclasses import dataclass, field

from rawrpc.v1 import wire_pb2

MAGIC = bytes.fromhex("89525250430D0A1A")
VERSION = 1
PREFACE_SIZE = 12
HEADER_SIZE = 12

# Frame types (section 3).
SETTINGS = 0x01
REQUEST = 0x02
RESPONSE = 0x03
CANCEL = 0x04
PING = 0x05
PONG = 0x06
GOAWAY = 0x07
TYPE_NAMES = {SETTINGS: "SETTINGS", REQUEST: "REQUEST", RESPONSE: "RESPONSE",
              CANCEL: "CANCEL", PING: "PING", PONG: "PONG", GOAWAY: "GOAWAY"}

# SETTINGS ids, initial values and valid ranges (section 4).
MAX_FRAME_SIZE = 1
MAX_CONCURRENT_CALLS = 2
HEARTBEAT_INTERVAL_MS = 3
MAX_METADATA_SIZE = 4
SETTING_INITIAL = {MAX_FRAME_SIZE: 4194304, MAX_CONCURRENT_CALLS: 100,
                   HEARTBEAT_INTERVAL_MS: 0, MAX_METADATA_SIZE: 8192}
SETTING_RANGE = {MAX_FRAME_SIZE: (1024, 0xFFFFFFFF),
                 MAX_CONCURRENT_CALLS: (1, 0xFFFFFFFF),
                 HEARTBEAT_INTERVAL_MS: (0, 0xFFFFFFFF),
                 MAX_METADATA_SIZE: (0, 65535)}

# GOAWAY error codes (section 10).
NO_ERROR = 0
PROTOCOL_ERROR = 1
FRAME_TOO_LARGE = 2
BAD_PREFACE = 3
UNSUPPORTED_VERSION = 4
SETTINGS_ERROR = 5
HANDSHAKE_TIMEOUT = 6
HEARTBEAT_TIMEOUT = 7
ENHANCE_YOUR_CALM = 8
INTERNAL_ERROR = 9
ERROR_NAMES = ["NO_ERROR", "PROTOCOL_ERROR", "FRAME_TOO_LARGE", "BAD_PREFACE",
               "UNSUPPORTED_VERSION", "SETTINGS_ERROR", "HANDSHAKE_TIMEOUT",
               "HEARTBEAT_TIMEOUT", "ENHANCE_YOUR_CALM", "INTERNAL_ERROR"]

# Status codes (section 5.3), gRPC's.
STATUS_NAMES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
                "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
                "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
                "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                "UNAUTHENTICATED"]
STATUS = {name: code for code, name in enumerate(STATUS_NAMES)}


class ProtocolViolation(Exception):
    """The peer's bytes break a rule of PROTOCOL.md."""


def error_name(code):
    return ERROR_NAMES[code] if code < len(ERROR_NAMES) else f"code {code}"


def status_name(code):
    return STATUS_NAMES[code] if code < len(STATUS_NAMES) else "UNKNOWN"


# ---------------------------------------------------------------- preface

def encode_preface(version=VERSION, reserved=0, magic=MAGIC):
    return magic + struct.pack(">HH", version, reserved)


def decode_preface(data):
    """Returns (version, reserved) of a 12-byte preface."""
    if len(data) != PREFACE_SIZE:
        raise ProtocolViolation(f"preface of {len(data)} bytes")
    for i, (got, want) in enumerate(zip(data[:8], MAGIC)):
        if got != want:
            raise ProtocolViolation(f"magic byte {i} is {got:#04x}")
    return struct.unpack(">HH", data[8:12])


# ----------------------------------------------------------------- frames

@dataclass
class Frame:
    type: int
    body: bytes = b""
    call_id: int = 0
    flags: int = 0
    meta_len: int = 0

    @property
    def meta(self):
        return self.body[:self.meta_len]

    @property
    def payload(self):
        return self.body[self.meta_len:]

    def name(self):
        return TYPE_NAMES.get(self.type, f"type {self.type:#04x}")

    def __repr__(self):
        return (f"Frame({self.name()}, call {self.call_id}, "
                f"flags {self.flags}, meta {self.meta_len}, "
                f"body {self.body[:40]!r}{'...' if len(self.body) > 40 else ''})")


def encode_header(length, ftype, flags=0, meta_len=0, call_id=0):
    return struct.pack(">IBBHI", length, ftype, flags, meta_len, call_id)


def decode_header(data):
    """Returns (length, type, flags, meta_len, call_id)."""
    return struct.unpack(">IBBHI", data)


def encode_frame(ftype, body=b"", call_id=0, flags=0, meta_len=0, length=None):
    """A frame; `length` overrides the body's size to build bad frames."""
    if length is None:
        length = len(body)
    return encode_header(length, ftype, flags, meta_len, call_id) + body


def encode(frame):
    return encode_frame(frame.type, frame.body, frame.call_id, frame.flags,
                        frame.meta_len)


# --------------------------------------------------------------- SETTINGS

def encode_settings_body(entries):
    return b"".join(struct.pack(">HI", i, v) for i, v in entries)


def encode_settings(entries):
    """A SETTINGS frame from a list of (id, value), in that order."""
    return encode_frame(SETTINGS, encode_settings_body(entries))


def decode_settings(body):
    """A SETTINGS body as a list of (id, value)."""
    if len(body) % 6:
        raise ProtocolViolation(f"SETTINGS body of {len(body)} bytes")
    return [struct.unpack(">HI", body[i:i + 6]) for i in range(0, len(body), 6)]


def apply_settings(entries, strict=True):
    """The limits SETTINGS entries state, over the initial values; raises
    ProtocolViolation for a value out of range (each entry is checked)."""
    limits = dict(SETTING_INITIAL)
    for sid, value in entries:
        if sid not in SETTING_RANGE:
            continue  # unknown ids are ignored
        lo, hi = SETTING_RANGE[sid]
        if strict and not lo <= value <= hi:
            raise ProtocolViolation(f"setting {sid} = {value} out of range")
        limits[sid] = value
    return limits


# ---------------------------------------------------------------- GOAWAY

@dataclass
class Goaway:
    last_call_id: int
    error_code: int
    message: str


def encode_goaway(last_call_id, error_code, message=b""):
    if isinstance(message, str):
        message = message.encode()
    return encode_frame(GOAWAY, struct.pack(">II", last_call_id, error_code)
                        + message)


def decode_goaway(body):
    """Decodes a GOAWAY body; its message must be UTF-8 (strict)."""
    if len(body) < 8:
        raise ProtocolViolation(f"GOAWAY body of {len(body)} bytes")
    last, code = struct.unpack(">II", body[:8])
    try:
        message = body[8:].decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise ProtocolViolation(f"GOAWAY message not UTF-8: {body[8:]!r}") from e
    return Goaway(last, code, message)


# ------------------------------------------------------- metadata, calls

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


def pb_field(number, wire_type, value):
    """One protobuf field: varint (0) of an int, or length-delimited (2)."""
    if wire_type == 0:
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def raw_request_meta(method=b"", timeout_us=0, metadata=(), extra=b""):
    """RequestMeta encoded by hand, so that strings may hold any bytes
    (the protobuf library refuses to encode invalid UTF-8)."""
    if isinstance(method, str):
        method = method.encode()
    out = pb_field(1, 2, method) if method else b""
    if timeout_us:
        out += pb_field(2, 0, timeout_us)
    for key, value in metadata:
        if isinstance(key, str):
            key = key.encode()
        entry = (pb_field(1, 2, key) if key else b"") + \
            (pb_field(2, 2, value) if value else b"")
        out += pb_field(3, 2, entry)
    return out + extra


def encode_request_meta(method, timeout_us=0, metadata=()):
    meta = wire_pb2.RequestMeta(method=method, timeout_us=timeout_us)
    for key, value in metadata:
        meta.metadata.add(key=key, value=value)
    return meta.SerializeToString()


def request_frame(call_id, method, payload=b"", timeout_us=0, metadata=(),
                  meta=None):
    """A REQUEST; `meta` (bytes) replaces the encoded RequestMeta."""
    if meta is None:
        meta = encode_request_meta(method, timeout_us, metadata)
    return encode_frame(REQUEST, meta + payload, call_id, meta_len=len(meta))


def decode_request_meta(meta):
    """RequestMeta, strictly (a string that is not UTF-8 raises)."""
    m = wire_pb2.RequestMeta()
    m.ParseFromString(meta)
    return m


def encode_response_meta(status=0, message="", metadata=()):
    meta = wire_pb2.ResponseMeta(status=status, message=message)
    for key, value in metadata:
        meta.metadata.add(key=key, value=value)
    return meta.SerializeToString()


def response_frame(call_id, payload=b"", status=0, message="", meta=None):
    if meta is None:
        meta = encode_response_meta(status, message)
    return encode_frame(RESPONSE, meta + payload, call_id, meta_len=len(meta))


def decode_response_meta(meta):
    """ResponseMeta, strictly (a message that is not UTF-8 raises)."""
    m = wire_pb2.ResponseMeta()
    m.ParseFromString(meta)
    return m


def cancel_frame(call_id):
    return encode_frame(CANCEL, b"", call_id)


def ping_frame(payload):
    return encode_frame(PING, payload)


def pong_frame(payload):
    return encode_frame(PONG, payload)


# --------------------------------------------------------------- parsing

@dataclass
class Reader:
    """Splits a byte stream into a preface (if `preface`) and frames.

    feed() takes any slice of the stream; frames() returns the complete
    frames so far.  Only the header rules that need no local limit are
    applied here; the caller checks the rest.
    """
    preface: bool = True
    buf: bytearray = field(default_factory=bytearray)
    got_preface: tuple = None
    raw_preface: bytes = b""

    def feed(self, data):
        self.buf += data

    def take_preface(self):
        if self.got_preface is None and len(self.buf) >= PREFACE_SIZE:
            self.raw_preface = bytes(self.buf[:PREFACE_SIZE])
            self.got_preface = decode_preface(self.raw_preface)
            del self.buf[:PREFACE_SIZE]
        return self.got_preface

    def magic_mismatch(self):
        """The index of the first byte received that differs from the
        magic, or None."""
        for i, b in enumerate(self.buf[:8]):
            if b != MAGIC[i]:
                return i
        return None

    def next_frame(self):
        if self.preface and self.got_preface is None:
            if self.take_preface() is None:
                return None
        if len(self.buf) < HEADER_SIZE:
            return None
        length, ftype, flags, meta_len, call_id = decode_header(
            bytes(self.buf[:HEADER_SIZE]))
        if len(self.buf) < HEADER_SIZE + length:
            return None
        body = bytes(self.buf[HEADER_SIZE:HEADER_SIZE + length])
        del self.buf[:HEADER_SIZE + length]
        return Frame(ftype, body, call_id, flags, meta_len)


def decode_all(data, preface=False):
    """Every frame of a complete byte string (test vectors)."""
    r = Reader(preface=preface)
    r.feed(data)
    frames = []
    while (f := r.next_frame()) is not None:
        frames.append(f)
    if r.buf:
        raise ProtocolViolation(f"{len(r.buf)} bytes left over")
    return frames

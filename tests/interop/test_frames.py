# SPDX-License-Identifier: MIT
"""PROTOCOL.md section 3 against the C server: the rules every receiver
applies from the header alone (length, meta_len, call_id, body sizes,
unknown and extension types, flags) and the byte stream's framing."""

import time
import unittest

from base import ECHO, ServerTest, codec, echo
from client import raw_frame
from codec import CANCEL, GOAWAY, PING, PONG, REQUEST, SETTINGS

MIB4 = 4194304


def request_of_size(call_id, size, method=ECHO):
    """A REQUEST of exactly `size` body bytes (an Echo with padding)."""
    meta = codec.encode_request_meta(method)
    want = size - len(meta)
    k = want
    while len(echo(data=b"p" * k)) > want:
        k -= 1
    payload = echo(data=b"p" * k)
    assert len(payload) == want, (size, len(payload))
    return codec.encode_frame(REQUEST, meta + payload, call_id,
                              meta_len=len(meta))


class Length(ServerTest):
    def check(self, header, code=codec.FRAME_TOO_LARGE):
        c = self.ready()
        c.send(header)  # the header alone: nothing may wait for the body
        return self.assertError(c, code)

    def test_over_max_frame_size(self):
        self.check(raw_frame(MIB4 + 1, REQUEST, meta_len=10, call_id=1))

    def test_0xffffffff(self):
        for t in (REQUEST, PING, 0x80):
            with self.subTest(type=t):
                self.check(raw_frame(0xFFFFFFFF, t, call_id=1 if t == REQUEST else 0))

    def test_message_names_the_numbers(self):
        g = self.check(raw_frame(0xFFFFFFFF, REQUEST, call_id=1))
        self.assertIn("4294967295", g.message)
        self.assertIn("4194304", g.message)


class SmallFrames(ServerTest):
    server_opts = {"max_frame": 2048}

    def test_exactly_max_frame_size_accepted(self):
        c = self.ready()
        c.sent_ids.add(1)
        c.send(request_of_size(1, 2048))
        self.assertStatus(c.response(1), "OK")

    def test_one_byte_over(self):
        c = self.ready()
        c.send(request_of_size(1, 2049))
        self.assertError(c, codec.FRAME_TOO_LARGE)

    def test_extension_frame_over(self):
        """Decided: MAX_FRAME_SIZE applies to extension frames too."""
        c = self.ready()
        c.send(codec.encode_frame(0x80, b"e" * 2049))
        self.assertError(c, codec.FRAME_TOO_LARGE)

    def test_extension_frame_at_limit_skipped(self):
        c = self.ready()
        c.send(codec.encode_frame(0x80, b"e" * 2048))
        self.assertTrue(c.alive())


class MetaLen(ServerTest):
    def check(self, frame):
        c = self.ready()
        c.send(frame)
        self.assertError(c, codec.PROTOCOL_ERROR)

    def test_meta_len_over_length(self):
        self.check(raw_frame(5, REQUEST, meta_len=6, call_id=1, body=b"12345"))

    def test_meta_len_on_connection_frames(self):
        for t, body in ((PING, b"12345678"), (PONG, b"12345678"),
                        (GOAWAY, b"\0" * 8)):
            with self.subTest(type=t):
                self.check(raw_frame(len(body), t, meta_len=1, body=body))

    def test_meta_len_on_cancel(self):
        c = self.ready()
        c.request("/rawrpc.kv.Kv/Sleep", b"\x08\xe8\x07")  # 1000 ms
        c.send(raw_frame(0, CANCEL, meta_len=1, call_id=1))
        c.expect_error(codec.PROTOCOL_ERROR)

    def test_meta_len_on_settings(self):
        c = self.connect()
        c.send(codec.encode_preface() + raw_frame(0, SETTINGS, meta_len=1))
        self.assertError(c, codec.PROTOCOL_ERROR)


class CallId(ServerTest):
    def check(self, frame):
        c = self.ready()
        c.send(frame)
        self.assertError(c, codec.PROTOCOL_ERROR)

    def test_request_call_id_0(self):
        self.check(codec.request_frame(0, ECHO, echo("zero")))

    def test_cancel_call_id_0(self):
        self.check(codec.cancel_frame(0))

    def test_connection_frames_with_call_id(self):
        for t, body in ((PING, b"12345678"), (PONG, b"12345678"),
                        (GOAWAY, b"\0" * 8)):
            with self.subTest(type=t):
                self.check(codec.encode_frame(t, body, call_id=1))

    def test_settings_with_call_id(self):
        c = self.connect()
        c.send(codec.encode_preface() + codec.encode_frame(SETTINGS, call_id=1))
        self.assertError(c, codec.PROTOCOL_ERROR)

    def test_response_from_client(self):
        self.check(codec.response_frame(1, echo("x")))


class BodySize(ServerTest):
    def check(self, frame):
        c = self.ready()
        c.send(frame)
        self.assertError(c, codec.PROTOCOL_ERROR)

    def test_cancel_with_body(self):
        self.check(codec.encode_frame(CANCEL, b"x", call_id=1))

    def test_ping_not_8(self):
        for n in (0, 7, 9):
            with self.subTest(size=n):
                self.check(codec.encode_frame(PING, b"p" * n))

    def test_pong_not_8(self):
        for n in (0, 7, 9):
            with self.subTest(size=n):
                self.check(codec.encode_frame(PONG, b"p" * n))

    def test_goaway_under_8(self):
        for n in (0, 7):
            with self.subTest(size=n):
                self.check(codec.encode_frame(GOAWAY, b"\0" * n))


class Types(ServerTest):
    def test_unknown_types_are_protocol_errors(self):
        for t in (0x00, 0x08, 0x0F, 0x10, 0x42, 0x7F):
            with self.subTest(type=t):
                c = self.ready()
                c.send(codec.encode_frame(t, b"body"))
                self.assertError(c, codec.PROTOCOL_ERROR)

    def test_extension_types_skipped(self):
        for t in (0x80, 0xC3, 0xFF):
            with self.subTest(type=t):
                c = self.ready()
                # flags, meta_len (> length) and call_id are not interpreted
                c.send(raw_frame(10, t, flags=0xFF, meta_len=0xFFFF,
                                 call_id=0xDEADBEEF, body=b"0123456789"))
                c.send(codec.encode_frame(t))  # and an empty one
                self.assertStatus(c.call(ECHO, echo("after")), "OK")

    def test_extension_between_calls_in_one_write(self):
        c = self.ready()
        ext = codec.encode_frame(0x99, b"\x02" * 300)  # looks like a REQUEST
        c.sent_ids.update((1, 2))
        c.send(codec.request_frame(1, ECHO, echo("a")) + ext +
               codec.request_frame(2, ECHO, echo("b")))
        self.assertEqual(c.response(1).payload, echo("a"))
        self.assertEqual(c.response(2).payload, echo("b"))

    def test_unknown_flags_ignored(self):
        c = self.ready()
        c.send(codec.encode_frame(PING, b"flagsff!", flags=0xFF))
        f, _ = c.read_until(lambda f: f.type == PONG)
        self.assertEqual(f.body, b"flagsff!")
        c.sent_ids.add(1)
        c.send(codec.encode_frame(REQUEST, codec.encode_request_meta(ECHO) +
                                  echo("f"), 1, flags=0x81,
                                  meta_len=len(codec.encode_request_meta(ECHO))))
        self.assertStatus(c.response(1), "OK")

    def test_response_type_from_client_closes(self):
        c = self.ready()
        c.request("/rawrpc.kv.Kv/Sleep", b"\x08\xe8\x07")
        c.send(codec.response_frame(1))
        c.expect_error(codec.PROTOCOL_ERROR)


class Stream(ServerTest):
    def test_frame_split_across_reads(self):
        c = self.ready()
        c.sent_ids.add(1)
        frame = codec.request_frame(1, ECHO, echo("split" * 20))
        for i in range(0, len(frame), 7):
            c.send(frame[i:i + 7])
            time.sleep(0.002)  # pacing, so the pieces travel apart
        self.assertEqual(c.response(1).payload, echo("split" * 20))

    def test_many_frames_in_one_write(self):
        c = self.ready()
        data = b""
        for i in range(1, 51):
            c.sent_ids.add(i)
            data += codec.request_frame(i, ECHO, echo(str(i)))
        data += codec.ping_frame(b"together")
        c.send(data)
        for i in range(1, 51):
            self.assertEqual(c.response(i).payload, echo(str(i)))
        f, _ = c.read_until(lambda f: f.type == PONG)
        self.assertEqual(f.body, b"together")


if __name__ == "__main__":
    unittest.main()

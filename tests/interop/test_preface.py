# SPDX-License-Identifier: MIT
"""PROTOCOL.md sections 2 and 4 against the C server: the preface (magic,
version), the order of the first frames, SETTINGS and the handshake
timeout."""

import time
import unittest

from base import (BIG, ECHO, HOLD, ServerTest, codec, echo, SLOW)
from client import DEFAULT_SETTINGS, settings_frame
from codec import (MAX_CONCURRENT_CALLS, MAX_FRAME_SIZE, MAX_METADATA_SIZE,
                   HEARTBEAT_INTERVAL_MS)

PREFACE = codec.encode_preface()
GOOD_SETTINGS = codec.encode_settings(DEFAULT_SETTINGS)


class ServerPreface(ServerTest):
    def test_preface_is_the_vector_and_sent_without_waiting(self):
        c = self.connect()  # we send nothing at all
        c.sock.settimeout(5 * SLOW)
        got = b""
        while len(got) < 12:
            b = c.sock.recv(12 - len(got))
            self.assertTrue(b, "EOF inside the preface")
            got += b
        self.assertEqual(got, bytes.fromhex("89525250430D0A1A00010000"))

    def test_settings_first_in_range_multiple_of_six(self):
        c = self.connect()
        limits = c.read_hello()
        f = c.received[0]
        self.assertEqual(f.type, codec.SETTINGS)
        self.assertEqual(len(f.body) % 6, 0)
        self.assertEqual(limits[MAX_FRAME_SIZE], 4194304)

    def test_settings_state_the_servers_limits(self):
        srv = self.own_server(max_frame=2048, max_calls=4, max_meta=1000,
                              heartbeat_interval=0.5, heartbeat_timeout=5)
        limits = self.connect(srv).read_hello()
        self.assertEqual(limits[MAX_FRAME_SIZE], 2048)
        self.assertEqual(limits[MAX_CONCURRENT_CALLS], 4)
        self.assertEqual(limits[HEARTBEAT_INTERVAL_MS], 500)
        self.assertEqual(limits[MAX_METADATA_SIZE], 1000)


class Magic(ServerTest):
    def test_rejected_at_each_differing_byte(self):
        """Rejected at the first differing byte, without the rest."""
        for i in range(8):
            with self.subTest(byte=i):
                c = self.connect()
                c.send(codec.MAGIC[:i] + bytes([codec.MAGIC[i] ^ 0xFF]))
                g = self.assertError(c, codec.BAD_PREFACE)
                self.assertEqual(g.last_call_id, 0)

    def test_http_request_rejected(self):
        c = self.connect()
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertError(c, codec.BAD_PREFACE)

    def test_bad_magic_with_bytes_not_utf8(self):
        """The GOAWAY message stays UTF-8 (decoded strictly) whatever the
        peer sent."""
        c = self.connect()
        c.send(b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\0\1\0\0")
        self.assertError(c, codec.BAD_PREFACE)


class Version(ServerTest):
    def test_version_0_unsupported(self):
        c = self.connect()
        c.send(codec.encode_preface(version=0) + GOOD_SETTINGS)
        self.assertError(c, codec.UNSUPPORTED_VERSION)

    def test_versions_above_1_accepted(self):
        for v in (2, 7, 0xFFFF):
            with self.subTest(version=v):
                c = self.ready(version=v)
                self.assertEqual(c.server_version, 1)
                r = c.call(ECHO, echo("v"))
                self.assertStatus(r, "OK")

    def test_reserved_ignored(self):
        c = self.connect()
        c.send(codec.encode_preface(reserved=0xABCD) + GOOD_SETTINGS)
        c.read_hello()
        self.assertStatus(c.call(ECHO, echo("r")), "OK")


class Order(ServerTest):
    def test_request_before_settings(self):
        c = self.connect()
        c.send(PREFACE + codec.request_frame(1, ECHO, echo("x")))
        self.assertError(c, codec.PROTOCOL_ERROR)

    def test_ping_before_settings(self):
        c = self.connect()
        c.send(PREFACE + codec.ping_frame(b"12345678"))
        self.assertError(c, codec.PROTOCOL_ERROR)

    def test_extension_before_settings(self):
        """Decided: SETTINGS must be first, extension frames included."""
        c = self.connect()
        c.send(PREFACE + codec.encode_frame(0x80, b"ext") + GOOD_SETTINGS)
        self.assertError(c, codec.PROTOCOL_ERROR)

    def test_second_settings(self):
        c = self.ready()
        c.send(GOOD_SETTINGS)
        self.assertError(c, codec.PROTOCOL_ERROR)

    def test_request_before_servers_settings_arrive(self):
        c = self.connect()
        c.sent_ids.add(1)
        c.send(PREFACE + GOOD_SETTINGS + codec.request_frame(1, ECHO, echo("early")))
        c.read_hello()
        r = c.response(1)
        self.assertStatus(r, "OK")


class Settings(ServerTest):
    def check_accepted(self, *entries):
        c = self.ready(settings=list(entries))
        self.assertStatus(c.call(ECHO, echo("ok")), "OK")
        return c

    def check_rejected(self, *entries):
        c = self.connect()
        c.send(PREFACE + settings_frame(*entries))
        self.assertError(c, codec.SETTINGS_ERROR)

    def test_max_frame_size_range(self):
        for v in (0, 1, 1023):
            with self.subTest(value=v):
                self.check_rejected((MAX_FRAME_SIZE, v))
        for v in (1024, 0xFFFFFFFF):
            with self.subTest(value=v):
                self.check_accepted((MAX_FRAME_SIZE, v))

    def test_max_concurrent_calls_range(self):
        self.check_rejected((MAX_CONCURRENT_CALLS, 0))
        for v in (1, 0xFFFFFFFF):
            with self.subTest(value=v):
                self.check_accepted((MAX_CONCURRENT_CALLS, v))

    def test_heartbeat_interval_any_value(self):
        for v in (0, 1, 0xFFFFFFFF):
            with self.subTest(value=v):
                self.check_accepted((HEARTBEAT_INTERVAL_MS, v))

    def test_max_metadata_size_range(self):
        for v in (65536, 0xFFFFFFFF):
            with self.subTest(value=v):
                self.check_rejected((MAX_METADATA_SIZE, v))
        for v in (0, 65535):
            with self.subTest(value=v):
                self.check_accepted((MAX_METADATA_SIZE, v))

    def test_unknown_ids_ignored(self):
        self.check_accepted((0, 0), (5, 0xFFFFFFFF), (0x7FFF, 1), (0xFFFF, 0),
                            (MAX_FRAME_SIZE, 4096))

    def test_empty_settings(self):
        self.check_accepted()

    def test_repeated_id_last_wins(self):
        c = self.check_accepted((MAX_FRAME_SIZE, 1024), (MAX_FRAME_SIZE, 65536))
        self.assertStatus(c.call(BIG, echo("2000")), "OK")
        c = self.check_accepted((MAX_FRAME_SIZE, 65536), (MAX_FRAME_SIZE, 1024))
        self.assertStatus(c.call(BIG, echo("2000")), "RESOURCE_EXHAUSTED")

    def test_repeated_id_earlier_value_out_of_range(self):
        """Decided: every entry is validated, not only the last."""
        with self.subTest(id="MAX_FRAME_SIZE"):
            self.check_rejected((MAX_FRAME_SIZE, 5), (MAX_FRAME_SIZE, 4096))
        with self.subTest(id="MAX_METADATA_SIZE"):
            self.check_rejected((MAX_METADATA_SIZE, 70000),
                                (MAX_METADATA_SIZE, 100))

    def test_body_not_multiple_of_six(self):
        c = self.connect()
        c.send(PREFACE + codec.encode_frame(codec.SETTINGS, b"\0\1\0\0\4"))
        self.assertError(c, codec.PROTOCOL_ERROR)

    def test_server_respects_clients_max_frame_size(self):
        c = self.ready(settings=[(MAX_FRAME_SIZE, 1024)])
        ok = c.call(BIG, echo("900"))
        self.assertStatus(ok, "OK")
        self.assertLessEqual(len(ok.frame.body), 1024)
        self.assertStatus(c.call(BIG, echo("1100")), "RESOURCE_EXHAUSTED")
        self.assertTrue(c.alive())

    def test_clients_max_concurrent_calls_ignored(self):
        """Decided: a client's MAX_CONCURRENT_CALLS has no effect in v1."""
        c = self.ready(settings=[(MAX_CONCURRENT_CALLS, 1)])
        ids = [c.request(HOLD, echo("100")) for _ in range(3)]
        for i in ids:
            self.assertStatus(c.response(i), "OK")


class HandshakeTimeout(ServerTest):
    server_opts = {"handshake_timeout": 0.5}

    def check_timeout(self, send):
        c = self.connect()
        start = time.monotonic()
        if send:
            c.send(send)
        self.assertError(c, codec.HANDSHAKE_TIMEOUT)
        self.assertGreaterEqual(time.monotonic() - start, 0.4)

    def test_nothing_sent(self):
        self.check_timeout(b"")

    def test_partial_preface(self):
        self.check_timeout(PREFACE[:5])

    def test_preface_without_settings(self):
        self.check_timeout(PREFACE)

    def test_partial_settings(self):
        self.check_timeout(PREFACE + GOOD_SETTINGS[:15])

    def test_complete_handshake_kept(self):
        c = self.ready()
        frames = c.frames_for(1.0)  # twice the handshake timeout
        self.assertEqual(frames, [])
        self.assertStatus(c.call(ECHO, echo("still")), "OK")


if __name__ == "__main__":
    unittest.main()

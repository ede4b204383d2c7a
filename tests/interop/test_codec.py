# SPDX-License-Identifier: MIT
"""Section 11's test vectors: this codec decodes each one and encodes it
again byte for byte.  No server involved."""

import unittest

import codec


def hx(s):
    return bytes.fromhex(s)


PREFACE = hx("89 52 52 50 43 0D 0A 1A 00 01 00 00")
SETTINGS = hx("00 00 00 18 01 00 00 00 00 00 00 00"
              "00 01 00 40 00 00 00 02 00 00 04 00"
              "00 03 00 00 13 88 00 04 00 00 20 00")
REQUEST = hx("00 00 00 18 02 00 00 14 00 00 00 01"
             "0A 0E 2F 64 65 6D 6F 2E 45 63 68 6F 2F 53 61 79"
             "10 90 A1 0F 0A 02 68 69")
REQUEST_META = hx("00 00 00 21 02 00 00 21 00 00 00 02"
                  "0A 0E 2F 64 65 6D 6F 2E 45 63 68 6F 2F 53 61 79"
                  "1A 0F 0A 08 74 72 61 63 65 2D 69 64 12 03 61 62 63")
RESPONSE_OK = hx("00 00 00 04 03 00 00 00 00 00 00 01 0A 02 68 69")
RESPONSE_ERR = hx("00 00 00 0F 03 00 00 0F 00 00 00 02 08 05"
                  "12 0B 6E 6F 20 73 75 63 68 20 6B 65 79")
CANCEL = hx("00 00 00 00 04 00 00 00 00 00 00 01")
PING = hx("00 00 00 08 05 00 00 00 00 00 00 00 01 02 03 04 05 06 07 08")
PONG = hx("00 00 00 08 06 00 00 00 00 00 00 00 01 02 03 04 05 06 07 08")
GOAWAY = hx("00 00 00 1C 07 00 00 00 00 00 00 00 00 00 00 07 00 00 00 00"
            "73 65 72 76 65 72 20 73 68 75 74 74 69 6E 67 20 64 6F 77 6E")


def one(data):
    frames = codec.decode_all(data)
    assert len(frames) == 1, frames
    return frames[0]


class Vectors(unittest.TestCase):
    def test_preface(self):
        self.assertEqual(codec.decode_preface(PREFACE), (1, 0))
        self.assertEqual(codec.encode_preface(), PREFACE)

    def test_preface_magic_is_checked_per_byte(self):
        for i in range(8):
            bad = bytearray(PREFACE)
            bad[i] ^= 0x20
            with self.assertRaises(codec.ProtocolViolation):
                codec.decode_preface(bytes(bad))

    def test_settings(self):
        f = one(SETTINGS)
        self.assertEqual((f.type, f.call_id, f.meta_len), (codec.SETTINGS, 0, 0))
        entries = codec.decode_settings(f.body)
        self.assertEqual(entries, [(1, 4194304), (2, 1024), (3, 5000),
                                   (4, 8192)])
        self.assertEqual(codec.encode_settings(entries), SETTINGS)

    def test_request(self):
        f = one(REQUEST)
        self.assertEqual((f.type, f.call_id, f.meta_len), (codec.REQUEST, 1, 20))
        m = codec.decode_request_meta(f.meta)
        self.assertEqual((m.method, m.timeout_us, len(m.metadata)),
                         ("/demo.Echo/Say", 250000, 0))
        self.assertEqual(f.payload, hx("0A 02 68 69"))
        self.assertEqual(codec.request_frame(1, "/demo.Echo/Say", f.payload,
                                             timeout_us=250000), REQUEST)
        self.assertEqual(codec.encode_frame(codec.REQUEST, codec.raw_request_meta(
            b"/demo.Echo/Say", 250000) + f.payload, 1, meta_len=20), REQUEST)

    def test_request_with_metadata(self):
        f = one(REQUEST_META)
        self.assertEqual((f.type, f.call_id, f.meta_len), (codec.REQUEST, 2, 33))
        m = codec.decode_request_meta(f.meta)
        self.assertEqual(m.method, "/demo.Echo/Say")
        self.assertEqual(m.timeout_us, 0)
        self.assertEqual([(e.key, e.value) for e in m.metadata],
                         [("trace-id", b"abc")])
        self.assertEqual(f.payload, b"")
        self.assertEqual(codec.request_frame(
            2, "/demo.Echo/Say", metadata=[("trace-id", b"abc")]), REQUEST_META)

    def test_response_ok(self):
        f = one(RESPONSE_OK)
        self.assertEqual((f.type, f.call_id, f.meta_len), (codec.RESPONSE, 1, 0))
        m = codec.decode_response_meta(f.meta)
        self.assertEqual((m.status, m.message), (0, ""))
        self.assertEqual(codec.response_frame(1, f.payload), RESPONSE_OK)

    def test_response_error(self):
        f = one(RESPONSE_ERR)
        self.assertEqual((f.type, f.call_id, f.meta_len), (codec.RESPONSE, 2, 15))
        m = codec.decode_response_meta(f.meta)
        self.assertEqual((m.status, m.message), (5, "no such key"))
        self.assertEqual(codec.response_frame(2, status=5,
                                              message="no such key"),
                         RESPONSE_ERR)

    def test_cancel(self):
        f = one(CANCEL)
        self.assertEqual((f.type, f.call_id, f.body), (codec.CANCEL, 1, b""))
        self.assertEqual(codec.cancel_frame(1), CANCEL)

    def test_ping_pong(self):
        ping, pong = one(PING), one(PONG)
        self.assertEqual((ping.type, ping.call_id), (codec.PING, 0))
        self.assertEqual((pong.type, pong.call_id), (codec.PONG, 0))
        self.assertEqual(ping.body, bytes(range(1, 9)))
        self.assertEqual(pong.body, ping.body)
        self.assertEqual(codec.ping_frame(ping.body), PING)
        self.assertEqual(codec.pong_frame(ping.body), PONG)

    def test_goaway(self):
        f = one(GOAWAY)
        g = codec.decode_goaway(f.body)
        self.assertEqual((g.last_call_id, g.error_code, g.message),
                         (7, codec.NO_ERROR, "server shutting down"))
        self.assertEqual(codec.encode_goaway(7, codec.NO_ERROR,
                                             "server shutting down"), GOAWAY)

    def test_stream_split_anywhere(self):
        """Section 1: a frame split across any number of reads, several
        frames in one read."""
        stream = PREFACE + SETTINGS + REQUEST + REQUEST_META + PING + GOAWAY
        want = [f.type for f in codec.decode_all(stream[12:])]
        for step in (1, 5, 13, len(stream)):
            r = codec.Reader(preface=True)
            got = []
            for i in range(0, len(stream), step):
                r.feed(stream[i:i + step])
                while (f := r.next_frame()) is not None:
                    got.append(f.type)
            self.assertEqual(got, want, f"step {step}")
            self.assertEqual(r.got_preface, (1, 0))

    def test_strict_utf8_oracle(self):
        """The oracle the suite relies on: python3-protobuf rejects a
        proto3 string that is not UTF-8."""
        bad = codec.pb_field(2, 2, b"\xff\xfe")
        with self.assertRaises(Exception):
            codec.decode_response_meta(bad)
        with self.assertRaises(codec.ProtocolViolation):
            codec.decode_goaway(b"\0" * 8 + b"\xff")


if __name__ == "__main__":
    unittest.main()

# SPDX-License-Identifier: MIT
"""PROTOCOL.md section 8 against the C server: PING answered with the
same bytes, the server's own PINGs after its advertised interval, their
cadence, what counts as traffic, and the heartbeat timeout."""

import time
import unittest

from base import ECHO, ServerTest, codec, echo, SLOW
from codec import PING, PONG


class Pong(ServerTest):
    def test_ping_answered_with_same_bytes(self):
        c = self.ready()
        for payload in (bytes(8), b"\xff" * 8, bytes(range(1, 9)), b"rawrpc!!"):
            with self.subTest(payload=payload):
                c.send(codec.ping_frame(payload))
                f, _ = c.read_until(lambda f: f.type == PONG, answer_pings=False)
                self.assertEqual(f.body, payload)
                self.assertEqual((f.call_id, f.flags, f.meta_len), (0, 0, 0))

    def test_burst_of_pings_answered_in_order(self):
        c = self.ready()
        payloads = [i.to_bytes(8, "big") for i in range(90)]
        c.send(b"".join(codec.ping_frame(p) for p in payloads))
        got = []
        while len(got) < len(payloads):
            f, _ = c.read_until(lambda f: f.type in (PONG, codec.GOAWAY))
            self.assertEqual(f.type, PONG, f"GOAWAY after {len(got)} PONGs")
            got.append(f.body)
        self.assertEqual(got, payloads)

    def test_ping_while_calls_in_flight(self):
        c = self.ready()
        i = c.request("/rrtest.Test/Hold", echo("400"))
        c.send(codec.ping_frame(b"midcall!"))
        f, others = c.read_until(lambda f: f.type == PONG)
        self.assertEqual(f.body, b"midcall!")
        self.assertNotIn(i, [o.call_id for o in others], "PONG queued behind")
        self.assertStatus(c.response(i), "OK")


class ServerPings(ServerTest):
    server_opts = {"heartbeat_interval": 0.5, "heartbeat_timeout": 2.0}

    def test_interval_advertised(self):
        c = self.ready()
        self.assertEqual(c.server_settings[codec.HEARTBEAT_INTERVAL_MS], 500)

    def test_ping_after_interval_of_silence(self):
        c = self.ready()
        start = time.monotonic()
        f, _ = c.read_until(lambda f: f.type == PING, answer_pings=False)
        took = time.monotonic() - start
        self.assertEqual((len(f.body), f.call_id), (8, 0))
        self.assertGreaterEqual(took, 0.4)
        self.assertLess(took, 1.5 * SLOW)

    def test_cadence_when_every_ping_is_answered(self):
        """Decided: PINGs keep coming about every interval (0.5 s), not
        every heartbeat timeout."""
        c = self.ready()
        times = []
        deadline = time.monotonic() + 2.8
        while (left := deadline - time.monotonic()) > 0:
            f = c.poll_frame(left)
            if f is None:
                break
            if f.type == PING:
                times.append(time.monotonic())
                c.send(codec.pong_frame(f.body))
        self.assertGreaterEqual(len(times), 4, f"PINGs at {times}")
        self.assertLessEqual(len(times), 7, f"PINGs at {times}")
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertTrue(all(0.35 < g < 1.0 * SLOW for g in gaps), gaps)

    def test_any_frame_restarts_the_interval(self):
        c = self.ready()
        server_pings = []
        for i in range(8):  # a frame of ours every 0.25 s for 2 s
            c.send(codec.ping_frame(i.to_bytes(8, "big")))
            server_pings += [f for f in c.frames_for(0.25) if f.type == PING]
        self.assertEqual(server_pings, [])

    def test_calls_count_as_traffic(self):
        c = self.ready()
        pings = []
        for _ in range(6):
            c.call(ECHO, echo("t"))
            pings += [f for f in c.frames_for(0.3) if f.type == PING]
        self.assertEqual(pings, [])


class Timeout(ServerTest):
    server_opts = {"heartbeat_interval": 0.5, "heartbeat_timeout": 1.0}

    def test_unanswered_ping_times_out(self):
        c = self.ready()
        start = time.monotonic()
        g = c.expect_error(codec.HEARTBEAT_TIMEOUT, timeout=5 * SLOW,
                           answer_pings=False)
        took = time.monotonic() - start
        self.assertGreaterEqual(took, 1.3)
        self.assertEqual(g.last_call_id, 0)
        self.assertTrue(any(f.type == PING for f in c.received))

    def trickle(self, c, data, gap):
        """Sends data a byte per `gap` seconds; returns the frames that
        arrived meanwhile (PINGs unanswered: we are inside a frame)."""
        got = []
        for b in data:
            c.send(bytes([b]))
            got += c.frames_for(gap, answer_pings=False)
        return got

    def test_partial_frame_bytes_keep_the_connection(self):
        """Decided: bytes of a partial frame count as traffic, so a slow
        frame is no heartbeat timeout."""
        c = self.ready()
        frame = codec.ping_frame(b"trickle!")
        got = self.trickle(c, frame[:13], 0.2)  # 2.6 s inside one frame
        self.assertNotIn(codec.GOAWAY, [f.type for f in got], got)
        c.send(frame[13:])
        f, _ = c.read_until(lambda f: f.type == PONG and f.body == b"trickle!",
                            answer_pings=False)

    def test_partial_frame_bytes_defer_the_ping(self):
        """Decided: bytes of a partial frame restart the interval."""
        c = self.ready()
        frame = codec.ping_frame(b"trickle?")
        got = self.trickle(c, frame[:11], 0.2)
        self.assertEqual([f for f in got if f.type == PING], [])
        c.send(frame[11:])


if __name__ == "__main__":
    unittest.main()

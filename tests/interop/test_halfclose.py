# SPDX-License-Identifier: MIT
"""Half-close against the C server (decided): a client that sends its
REQUESTs and then shuts its write side gets exactly one RESPONSE per
REQUEST, big replies included; the server sends GOAWAY NO_ERROR naming
the greatest call received, answers every call in flight, flushes, then
closes, with no heartbeat after the client's EOF."""

import unittest

from base import (HOLD, KV_GET, KV_PUT, KV_SLEEP, ServerTest, codec, echo,
                  goaways, kv_pb2, responses, sleep_req, TIMEOUT)
from codec import PING, RESPONSE


class HalfClose(ServerTest):
    """Decided: after the client's EOF the server sends GOAWAY NO_ERROR
    naming the greatest call received, answers every call, flushes, then
    closes."""

    def finish(self, c):
        """Half-closes; returns every frame up to the server's EOF."""
        c.shut_wr()
        return c.expect_eof(timeout=TIMEOUT * 2)

    def check_goaway(self, frames, last):
        gs = goaways(frames)
        self.assertTrue(gs, f"no GOAWAY after our EOF: {frames[:3]}")
        self.assertEqual(gs[0].error_code, codec.NO_ERROR)
        self.assertEqual(gs[0].last_call_id, last)

    def test_goaway_after_eof(self):
        c = self.ready()
        i = c.request(HOLD, echo("300"))
        self.check_goaway(self.finish(c), i)

    def test_long_call_answered_after_eof(self):
        c = self.ready()
        i = c.request(KV_SLEEP, sleep_req(500))
        self.finish(c)
        self.assertEqual(c.answered, {i})
        self.assertEqual(responses(c.received)[i], 0)

    def test_goaway_names_greatest_call(self):
        c = self.ready()
        for i in (1, 2, 9):
            c.request(HOLD, echo("200"), call_id=i)
        self.check_goaway(self.finish(c), 9)

    def bulk(self, size, count, sleeps=()):
        c = self.ready()
        slow = [c.request(KV_SLEEP, sleep_req(ms)) for ms in sleeps]
        key = f"half-{size}"
        r = c.call(KV_PUT, kv_pb2.PutRequest(key=key, value=b"v" * size)
                   .SerializeToString())
        self.assertStatus(r, "OK")
        get = kv_pb2.GetRequest(key=key).SerializeToString()
        ids = [c.request(KV_GET, get) for _ in range(count)]
        self.finish(c)
        self.assertEqual(len(c.answered), count + len(sleeps) + 1)
        self.assertEqual(c.answered, set(ids) | set(slow) | {r.call_id})
        self.assertTrue(all(responses(c.received)[i] == 0 for i in slow))
        for f in c.received:
            if f.type == RESPONSE and f.call_id in ids:
                out = kv_pb2.GetReply()
                out.ParseFromString(f.payload)
                self.assertEqual(len(out.value), size)

    def test_256_replies_of_16k(self):
        self.bulk(16 << 10, 256)

    def test_16_replies_of_256k(self):
        self.bulk(256 << 10, 16)

    def test_long_calls_among_big_replies(self):
        self.bulk(16 << 10, 256, sleeps=(300, 600))

    def test_no_heartbeat_after_eof(self):
        """Decided: no PINGs and no heartbeat timeout after the peer's
        EOF (interval 0.5 s, timeout 1 s, a call of 2.5 s)."""
        srv = self.own_server(heartbeat_interval=0.5, heartbeat_timeout=1.0)
        c = self.ready(srv)
        i = c.request(KV_SLEEP, sleep_req(2500))
        frames = self.finish(c)
        self.assertEqual([f for f in frames if f.type == PING], [])
        self.assertEqual(c.answered, {i})
        self.assertNotIn(codec.HEARTBEAT_TIMEOUT,
                         [g.error_code for g in goaways(frames)])


if __name__ == "__main__":
    unittest.main()

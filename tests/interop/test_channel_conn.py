# SPDX-License-Identifier: MIT
"""The C channel (rawrpc-interop-client) against the Python server, over
a connection's life: deadline and cancel, the server's GOAWAY, heartbeats
both ways, a server that half-closes, and the client's side of the
connection errors.  Every frame the client sends is checked by
server.Peer."""

import time
import unittest

import codec
from base import echo
from conn import ERROR_WAIT, SLOW, TIMEOUT
from test_channel import ECHO, ChannelTest, reply


class DeadlineCancel(ChannelTest):
    def warm(self, run):
        """Answers call 0, so the connection is up before call 1 starts."""
        p = self.accept()
        r = p.read_request()
        p.respond(r.call_id, reply("warm"))
        return p

    def test_deadline(self):
        run = self.start("text=warm", "text=slow,t=0.3,hold=1",
                         "text=next,hold=1")
        p = self.warm(run)
        run.command("start 1")
        r = p.read_request()
        self.assertGreater(r.timeout_us, 0)
        self.assertLessEqual(r.timeout_us, 300000)
        p.read_cancel(r.call_id, timeout=2 * SLOW)  # sent when it passes
        p.respond(r.call_id, reply("late"))  # owed; the client drops it
        run.command("start 2")
        n = p.read_request()
        self.assertGreater(n.call_id, r.call_id)
        p.respond(n.call_id, reply("next"))
        res = self.finish(run)
        self.assertResult(res[1], "DEADLINE_EXCEEDED")
        self.assertResult(res[2], "OK", "next")

    def test_cancel(self):
        run = self.start("text=warm", "text=c,hold=1", "text=next,hold=1")
        p = self.warm(run)
        run.command("start 1")
        r = p.read_request()
        run.command("cancel 1")
        p.read_cancel(r.call_id)
        p.respond(r.call_id, status=1)  # owed; the client drops it
        run.command("start 2")
        n = p.read_request()
        p.respond(n.call_id, reply("next"))
        res = self.finish(run)
        self.assertResult(res[1], "CANCELLED")
        self.assertResult(res[2], "OK", "next")


class Goaway(ChannelTest):
    def test_calls_above_last_id_retried_or_failed(self):
        run = self.start(*[f"text={i}" for i in range(4)])
        p = self.accept()
        reqs = sorted(p.read_requests(4), key=lambda r: r.call_id)
        last = reqs[1].call_id
        p.send(codec.encode_goaway(last, codec.NO_ERROR, "shutting down"))
        for r in reqs[:2]:
            p.respond(r.call_id, reply("one" + r.echo().text))
        p.shut_wr()
        # The calls above `last` never ran: the channel may retry them.
        retried = {}
        try:
            q = self.listener.accept(timeout=TIMEOUT)
            self.addCleanup(q.close)
            q.handshake()
            for _ in range(5):
                if len(retried) == 2:
                    break
                r = q.poll_frame(TIMEOUT)
                if r is None:
                    break
                if r.type == codec.REQUEST:
                    t = q.requests[r.call_id].echo().text
                    retried[t] = True
                    q.respond(r.call_id, reply("two" + t))
        except AssertionError:
            pass  # no retry: the calls must fail
        tail = p.expect_eof()  # the client closes the old connection
        self.assertEqual([f for f in tail if f.type == codec.REQUEST], [])
        res = self.finish(run)
        for i in (0, 1):
            self.assertResult(res[i], "OK", f"one{i}")
        for i in (2, 3):
            if str(i) in retried:
                self.assertResult(res[i], "OK", f"two{i}")
            else:
                self.assertResult(res[i], "UNAVAILABLE")


class Heartbeat(ChannelTest):
    def test_server_ping_answered(self):
        run = self.start("text=held")
        p = self.accept()
        r = p.read_request()
        for payload in (b"srvping1", bytes(8)):
            p.send(codec.ping_frame(payload))
            f, _ = p.read_until(lambda f: f.type == codec.PONG,
                                answer_pings=False)
            self.assertEqual(f.body, payload)
        p.respond(r.call_id, reply("ok"))
        self.finish(run)

    def test_client_pings_after_its_interval(self):
        run = self.start("text=held", heartbeat_interval=0.3,
                         heartbeat_timeout=5)
        p = self.listener.accept()
        self.addCleanup(p.close)
        start = time.monotonic()  # before the client can hear from us
        p.handshake()
        r = p.read_request()
        f, _ = p.read_until(lambda f: f.type == codec.PING, answer_pings=False)
        self.assertGreaterEqual(time.monotonic() - start, 0.28)
        p.send(codec.pong_frame(f.body))
        p.respond(r.call_id, reply("ok"))
        self.assertResult(self.finish(run)[0], "OK")

    def test_client_heartbeat_timeout(self):
        run = self.start("text=held", heartbeat_interval=0.3,
                         heartbeat_timeout=0.5)
        p = self.accept()
        p.read_request()
        frames = p.expect_eof(timeout=TIMEOUT, answer_pings=False)
        codes = [codec.decode_goaway(f.body).error_code
                 for f in frames if f.type == codec.GOAWAY]
        self.assertIn(codec.HEARTBEAT_TIMEOUT, codes)
        self.assertResult(self.finish(run)[0], "UNAVAILABLE")


class Closing(ChannelTest):
    def test_server_half_closes_after_responses(self):
        run = self.start("text=a", "text=b", "text=c")
        p = self.accept()
        reqs = p.read_requests(3)
        for r in reqs:
            p.respond(r.call_id, reply(r.echo().text.upper()))
        p.shut_wr()
        res = self.finish(run)
        for i, t in enumerate("ABC"):
            self.assertResult(res[i], "OK", t)
        p.expect_eof(timeout=ERROR_WAIT)  # the client closes too

    def test_server_goaway_then_half_close(self):
        run = self.start("text=a", "text=b")
        p = self.accept()
        reqs = p.read_requests(2)
        p.send(codec.encode_goaway(max(r.call_id for r in reqs), 0))
        for r in reqs:
            p.respond(r.call_id, reply(r.echo().text))
        p.shut_wr()
        res = self.finish(run)
        self.assertResult(res[0], "OK", "a")
        self.assertResult(res[1], "OK", "b")
        p.expect_eof(timeout=ERROR_WAIT)

    def test_connection_lost_unavailable(self):
        run = self.start("text=lost")
        p = self.accept()
        p.read_request()
        p.close()
        self.assertResult(self.finish(run)[0], "UNAVAILABLE")

    def test_response_for_unknown_call(self):
        run = self.start("text=x")
        p = self.accept()
        r = p.read_request()
        p.send(codec.response_frame(r.call_id + 1000, reply("who")))
        g = [f for f in p.expect_eof() if f.type == codec.GOAWAY]
        self.assertTrue(g, "no GOAWAY")
        self.assertEqual(codec.decode_goaway(g[0].body).error_code,
                         codec.PROTOCOL_ERROR)
        self.assertResult(self.finish(run)[0], "UNAVAILABLE")

    def test_request_to_client(self):
        run = self.start("text=x")
        p = self.accept()
        p.read_request()
        p.send(codec.request_frame(1, ECHO, echo("back at you")))
        g = [f for f in p.expect_eof() if f.type == codec.GOAWAY]
        self.assertTrue(g, "no GOAWAY")
        self.assertEqual(codec.decode_goaway(g[0].body).error_code,
                         codec.PROTOCOL_ERROR)
        self.assertResult(self.finish(run)[0], "UNAVAILABLE")

    def test_extension_frame_skipped(self):
        run = self.start("text=x")
        p = self.accept()
        r = p.read_request()
        p.send(codec.encode_frame(0xA0, b"ext" * 10, call_id=5, meta_len=99))
        p.respond(r.call_id, reply("after ext"))
        self.assertResult(self.finish(run)[0], "OK", "after ext")


if __name__ == "__main__":
    unittest.main()

# SPDX-License-Identifier: MIT
"""The C channel (rawrpc-interop-client) against the Python server: the
handshake, unary calls, status and message, metadata and the server's
limits (test_channel_conn.py has the rest).  Every frame the client sends
is checked by server.Peer."""

import time
import unittest

import codec
import procs
from base import echo
from conn import TIMEOUT
from server import DEFAULT_SETTINGS, Listener

ECHO = "/rrtest.Test/Echo"


def reply(text="", data=b""):
    return echo(text, data)


class ChannelTest(unittest.TestCase):
    def setUp(self):
        self.listener = Listener()
        self.addCleanup(self.listener.close)

    def start(self, *calls, **opts):
        run = procs.ClientRun(self.listener.port, list(calls), **opts)
        self.addCleanup(run.kill)
        return run

    def accept(self, settings=DEFAULT_SETTINGS, **kw):
        p = self.listener.accept()
        self.addCleanup(p.close)
        p.handshake(settings, **kw)
        return p

    def finish(self, run, timeout=TIMEOUT):
        status, results = run.finish(timeout)
        self.assertEqual(status, 0, f"client exited {status}: "
                         f"{run.lines} {run.log[-2000:]}")
        self.assertEqual(run.lines[-1:], ["done"])
        return results

    def assertResult(self, r, status, text=None, msg=None):
        self.assertEqual(r["status"], status, r)
        if text is not None:
            self.assertEqual(r["text"], text, r)
        if msg is not None:
            self.assertEqual(r["msg"], msg, r)


class Handshake(ChannelTest):
    def test_preface_and_settings(self):
        run = self.start("text=hi")
        p = self.accept()
        self.assertEqual(p.client_preface,
                         bytes.fromhex("89525250430D0A1A00010000"))
        self.assertIsNotNone(p.client_settings)  # first, in range (Peer)
        r = p.read_request()
        p.respond(r.call_id, reply("ok"))
        self.finish(run)

    def test_server_version_2_accepted(self):
        run = self.start("text=v2")
        p = self.accept(version=2)
        r = p.read_request()
        p.respond(r.call_id, reply("v2"))
        self.assertResult(self.finish(run)[0], "OK", "v2")

    def test_bad_server_magic(self):
        run = self.start("text=x")
        p = self.listener.accept()
        self.addCleanup(p.close)
        p.send(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        res = self.finish(run)
        self.assertResult(res[0], "UNAVAILABLE")
        rest = []
        try:
            rest = p.expect_eof()
        except codec.ProtocolViolation:
            pass
        for f in rest:
            self.assertNotEqual(f.type, codec.REQUEST)


class Unary(ChannelTest):
    def test_ok(self):
        run = self.start("text=hi,data=5")
        p = self.accept()
        r = p.read_request()
        self.assertEqual(r.method, ECHO)
        self.assertEqual(r.timeout_us, 0)
        self.assertEqual((r.echo().text, r.echo().data), ("hi", b"ddddd"))
        p.respond(r.call_id, reply("hi back", b"xyz"))
        res = self.finish(run)
        self.assertResult(res[0], "OK", "hi back")
        self.assertEqual(res[0]["data"], "3")

    def test_error_status_with_message(self):
        run = self.start("text=k")
        p = self.accept()
        r = p.read_request()
        p.respond(r.call_id, status=5, message="no such key")
        self.assertResult(self.finish(run)[0], "NOT_FOUND", msg="no such key")

    def test_status_above_16_is_unknown(self):
        run = self.start("text=k")
        p = self.accept()
        r = p.read_request()
        p.respond(r.call_id, status=99, message="odd")
        self.assertResult(self.finish(run)[0], "UNKNOWN")

    def test_response_meta_does_not_unpack(self):
        run = self.start("text=k")
        p = self.accept()
        r = p.read_request()
        p.respond(r.call_id, meta=b"\x12\x40trunc")
        self.assertResult(self.finish(run)[0], "INTERNAL")

    def test_many_calls_answered_out_of_order(self):
        run = self.start(*[f"text={i}" for i in range(5)])
        p = self.accept()
        reqs = p.read_requests(5)
        ids = [r.call_id for r in reqs]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 5)
        for r in reversed(reqs):
            p.respond(r.call_id, reply("re" + r.echo().text))
        res = self.finish(run)
        for i in range(5):
            self.assertResult(res[i], "OK", f"re{i}")

    def test_metadata_sent(self):
        run = self.start("text=m,meta=trace-id:abc,meta=Key2:v2")
        p = self.accept()
        r = p.read_request()
        self.assertEqual(r.metadata, [("trace-id", b"abc"), ("Key2", b"v2")])
        p.respond(r.call_id, reply())
        self.finish(run)

    def test_no_reserved_user_key_sent(self):
        """Decided: a sender must not send user keys starting with rr-."""
        run = self.start("text=m,meta=rr-foo:x", "text=after")
        p = self.accept()
        seen = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            r = p.read_request()
            seen += [k for k, _ in r.metadata]
            p.respond(r.call_id, reply(r.echo().text))
            if r.echo().text == "after":
                break
        self.assertNotIn("rr-foo", seen)
        self.finish(run)

    def test_server_concurrency_limit_respected(self):
        run = self.start(*[f"text={i}" for i in range(5)])
        p = self.accept(DEFAULT_SETTINGS[:1] + [(codec.MAX_CONCURRENT_CALLS, 2)])
        for _ in range(5):
            r = p.read_request()  # Peer fails on a third in flight
            p.respond(r.call_id, reply(r.echo().text))
        self.assertLessEqual(p.max_in_flight, 2)
        res = self.finish(run)
        self.assertEqual(sorted(res), list(range(5)))
        self.assertTrue(all(v["status"] == "OK" for v in res.values()))

    def test_server_max_frame_size_respected(self):
        run = self.start("data=2000", "text=small", "at=0.3,text=later")
        p = self.accept([(codec.MAX_FRAME_SIZE, 1024)])
        for _ in range(2):
            r = p.read_request()  # Peer fails on a frame over 1024
            p.respond(r.call_id, reply(r.echo().text))
        res = self.finish(run)
        self.assertResult(res[0], "RESOURCE_EXHAUSTED")
        self.assertResult(res[1], "OK", "small")
        self.assertResult(res[2], "OK", "later")


if __name__ == "__main__":
    unittest.main()

# SPDX-License-Identifier: MIT
"""PROTOCOL.md sections 5 to 7 against the C server: unary calls, status
codes and messages, method names, metadata (both ways, and the client's
MAX_METADATA_SIZE), call IDs, MAX_CONCURRENT_CALLS, deadlines and
CANCEL."""

import re
import time
import unittest

from base import (ECHO, ECHO_ECHO, FAIL, HOLD, KV_GET, KV_PUT, KV_SLEEP,
                  META, UNSET, Echo, ServerTest, codec, echo, kv_pb2, sleep_req,
                  SLOW)
from client import DEFAULT_SETTINGS
from codec import MAX_METADATA_SIZE

from echo import echo_pb2

NOT_FOUND_META = bytes.fromhex("0805120B6E6F2073756368206B6579")


class Unary(ServerTest):
    def test_echo_ok_without_metadata(self):
        c = self.ready()
        r = c.call(ECHO, echo("hello", b"\0\1\2"))
        self.assertStatus(r, "OK")
        self.assertEqual(r.meta_len, 0)  # an OK ResponseMeta is 0 bytes
        self.assertEqual(r.payload, echo("hello", b"\0\1\2"))

    def test_echo_service(self):
        c = self.ready()
        req = echo_pb2.EchoRequest(payload=bytes(range(256)) * 4)
        r, out = c.call_msg(ECHO_ECHO, req, echo_pb2.EchoReply)
        self.assertStatus(r, "OK")
        self.assertEqual(out.payload, req.payload)

    def test_kv_put_then_get(self):
        c = self.ready()
        r, out = c.call_msg(KV_PUT, kv_pb2.PutRequest(key="unary-k", value=b"v1"),
                            kv_pb2.PutReply)
        self.assertStatus(r, "OK")
        self.assertTrue(out.created)
        r, out = c.call_msg(KV_GET, kv_pb2.GetRequest(key="unary-k"),
                            kv_pb2.GetReply)
        self.assertEqual(out.value, b"v1")

    def test_error_status_and_message_bytes(self):
        c = self.ready()
        r = c.call(KV_GET, kv_pb2.GetRequest(key="absent").SerializeToString())
        self.assertStatus(r, "NOT_FOUND")
        self.assertEqual(r.message, "no such key")
        self.assertEqual(r.frame.meta, NOT_FOUND_META)  # section 11's vector
        self.assertEqual(r.payload, b"")

    def test_application_status(self):
        c = self.ready()
        for code in (2, 7, 9, 10, 11, 15, 16):
            with self.subTest(code=code):
                r = c.call(FAIL, echo(f"{code} because {code}"))
                self.assertEqual(r.status, code)
                self.assertEqual(r.message, f"because {code}")
                self.assertEqual(r.payload, b"")

    def test_responses_in_any_order(self):
        c = self.ready()
        slow = c.request(HOLD, echo("600"))
        fast = c.request(HOLD, echo("10"))
        f, _ = c.read_until(lambda f: f.type == codec.RESPONSE)
        self.assertEqual(f.call_id, fast, "the fast call should answer first")
        self.assertStatus(c.response(slow), "OK")

    def test_unknown_request_meta_fields_skipped(self):
        c = self.ready()
        meta = codec.raw_request_meta(ECHO, extra=codec.pb_field(15, 0, 7) +
                                      codec.pb_field(20, 2, b"future"))
        r = c.response(c.request(ECHO, echo("x"), meta=meta))
        self.assertStatus(r, "OK")

    def test_request_meta_does_not_unpack(self):
        c = self.ready()
        r = c.response(c.request(ECHO, echo("x"), meta=b"\x0a\x40/rr"))
        self.assertStatus(r, "INVALID_ARGUMENT")
        self.assertTrue(c.alive())

    def test_payload_does_not_unpack(self):
        c = self.ready()
        r = c.call(ECHO, b"\x0a\x05ab")
        self.assertStatus(r, "INVALID_ARGUMENT")
        self.assertStatus(c.call(ECHO, echo("next")), "OK")

    def test_empty_payload(self):
        c = self.ready()
        r = c.call(ECHO, b"")
        self.assertStatus(r, "OK")
        self.assertEqual(r.payload, b"")

    def test_request_meta_over_server_limit(self):
        c = self.ready()
        def meta_of(size):
            m = codec.encode_request_meta(ECHO, metadata=[("pad", b"")])
            pad = size - len(m) - 2
            m = codec.encode_request_meta(ECHO, metadata=[("pad", b"x" * pad)])
            while len(m) > size:
                pad -= 1
                m = codec.encode_request_meta(ECHO, metadata=[("pad", b"x" * pad)])
            self.assertEqual(len(m), size)
            return m
        r = c.response(c.request(ECHO, echo("at"), meta=meta_of(8192)))
        self.assertStatus(r, "OK")
        r = c.response(c.request(ECHO, echo("over"), meta=meta_of(8193)))
        self.assertStatus(r, "RESOURCE_EXHAUSTED")
        self.assertTrue(c.alive())

    def test_method_without_handler(self):
        c = self.ready()
        self.assertStatus(c.call(UNSET, echo()), "UNIMPLEMENTED")


class MethodNames(ServerTest):
    def unimplemented(self, c, method):
        meta = codec.raw_request_meta(method)
        r = c.response(c.request("", echo("m"), meta=meta))
        self.assertStatus(r, "UNIMPLEMENTED", repr(method))
        return r

    def test_unknown_method(self):
        c = self.ready()
        self.unimplemented(c, b"/rrtest.Test/Nope")
        self.unimplemented(c, b"/no.Such/Service")
        self.unimplemented(c, b"")

    def test_nul_and_more_after_a_known_name(self):
        """Decided: names match byte for byte, length included."""
        c = self.ready()
        self.assertStatus(c.call(ECHO, echo("warm")), "OK")
        self.unimplemented(c, ECHO.encode() + b"\0anything")
        self.unimplemented(c, ECHO.encode() + b"\0")

    def test_case_differs(self):
        c = self.ready()
        for m in (b"/rrtest.test/echo", b"/RRTEST.Test/Echo", b"/rrtest.Test/ECHO"):
            with self.subTest(method=m):
                self.unimplemented(c, m)

    def test_prefix_or_longer(self):
        c = self.ready()
        for m in (b"/rrtest.Test/Ech", b"/rrtest.Test/EchoX", b"/rrtest.Test/Echo/",
                  b"rrtest.Test/Echo", b"/rrtest.Test/"):
            with self.subTest(method=m):
                self.unimplemented(c, m)

    def test_name_not_utf8(self):
        """Decided: UNIMPLEMENTED, not INVALID_ARGUMENT."""
        c = self.ready()
        self.unimplemented(c, ECHO.encode() + b"\xff")
        self.unimplemented(c, b"/x/\xc3")

    def test_message_escapes_bytes_not_utf8(self):
        """Decided: bytes that are not UTF-8 are quoted as \\xHH."""
        c = self.ready()
        r = self.unimplemented(c, b"/x.Y/\xff\xfe")
        self.assertRegex(r.message, re.compile(r"\\x[fF]{2}\\x[fF][eE]"))

    def test_long_multibyte_names_cut_on_character(self):
        """Decided: a status message is at most 1024 bytes, whole
        characters (the strict decoder would reject a cut one)."""
        c = self.ready()
        for ch in ("é", "€", "😀", "a"):
            for n in (333, 334, 335, 2000):
                with self.subTest(char=ch, n=n):
                    r = self.unimplemented(c, ("/" + ch * n).encode())
                    self.assertLessEqual(len(r.message.encode()), 1024)


class ResponseMetaLimit(ServerTest):
    """Decided: the server keeps RESPONSE metadata within the client's
    MAX_METADATA_SIZE, but always sends the status of a non-OK call."""

    def not_found(self, limit):
        settings = [(k, v) for k, v in DEFAULT_SETTINGS if k != MAX_METADATA_SIZE]
        c = self.ready(settings=settings + [(MAX_METADATA_SIZE, limit)])
        r = c.call(KV_GET, kv_pb2.GetRequest(key="absent").SerializeToString())
        self.assertStatus(r, "NOT_FOUND")
        self.assertLessEqual(r.meta_len, max(limit, 2), r.frame.meta)
        self.assertTrue("no such key".startswith(r.message), r.message)
        return c, r

    def test_limit_15_whole_message(self):
        _, r = self.not_found(15)
        self.assertEqual(r.message, "no such key")

    def test_limit_14_shorter_message(self):
        _, r = self.not_found(14)
        self.assertLess(len(r.message), len("no such key"))

    def test_limit_4_status_only(self):
        self.not_found(4)

    def test_limit_0_status_still_sent(self):
        c, r = self.not_found(0)
        self.assertEqual(r.frame.meta, b"\x08\x05")
        ok = c.call(ECHO, echo("ok"))
        self.assertStatus(ok, "OK")
        self.assertEqual(ok.meta_len, 0)

    def test_cut_on_character_boundary(self):
        for limit in range(20, 28):
            with self.subTest(limit=limit):
                settings = [(MAX_METADATA_SIZE, limit)]
                c = self.ready(settings=settings)
                meta = codec.raw_request_meta(("/" + "€" * 40).encode())
                r = c.response(c.request("", echo(), meta=meta))
                self.assertStatus(r, "UNIMPLEMENTED")
                self.assertLessEqual(r.meta_len, limit)


class Deadlines(ServerTest):
    def test_deadline_passes_during_call(self):
        c = self.ready()
        start = time.monotonic()
        r = c.call(KV_SLEEP, sleep_req(3000), timeout_us=200000)
        took = time.monotonic() - start
        self.assertStatus(r, "DEADLINE_EXCEEDED")
        self.assertGreaterEqual(took, 0.15)
        self.assertLess(took, 2.0 * SLOW)

    def test_one_microsecond(self):
        c = self.ready()
        r = c.call(KV_SLEEP, sleep_req(2000), timeout_us=1, timeout=1.5 * SLOW)
        self.assertStatus(r, "DEADLINE_EXCEEDED")

    def test_late_reply_dropped(self):
        """Hold ignores the cancel; its reply after the deadline must not
        become a second RESPONSE (Client.check fails on one)."""
        c = self.ready()
        i = c.request(HOLD, echo("300"), timeout_us=50000)
        self.assertStatus(c.response(i), "DEADLINE_EXCEEDED")
        late = [f for f in c.frames_for(0.6) if f.type == codec.RESPONSE]
        self.assertEqual(late, [])
        self.assertStatus(c.call(ECHO, echo("after")), "OK")

    def test_zero_means_no_deadline(self):
        c = self.ready()
        self.assertStatus(c.call(HOLD, echo("250"), timeout_us=0), "OK")

    def test_budget_large_enough(self):
        c = self.ready()
        self.assertStatus(c.call(HOLD, echo("50"), timeout_us=10_000_000), "OK")


class Cancel(ServerTest):
    def test_cancel_in_flight(self):
        c = self.ready()
        i = c.request(KV_SLEEP, sleep_req(5000))
        c.cancel(i)
        start = time.monotonic()
        self.assertStatus(c.response(i), "CANCELLED")
        self.assertLess(time.monotonic() - start, 2.0 * SLOW)

    def test_cancel_handler_that_ignores_it(self):
        c = self.ready()
        i = c.request(HOLD, echo("3000"))
        c.cancel(i)
        self.assertStatus(c.response(i, timeout=2.0 * SLOW), "CANCELLED")

    def test_cancel_unknown_id_ignored(self):
        c = self.ready()
        c.cancel(99)
        self.assertTrue(c.alive())
        self.assertStatus(c.call(ECHO, echo("x")), "OK")

    def test_cancel_completed_call_ignored(self):
        c = self.ready()
        r = c.call(ECHO, echo("done"))
        c.cancel(r.call_id)
        self.assertTrue(c.alive())
        self.assertStatus(c.call(ECHO, echo("next")), "OK")

    def test_cancel_twice_one_response(self):
        c = self.ready()
        i = c.request(KV_SLEEP, sleep_req(5000))
        c.cancel(i)
        c.cancel(i)
        self.assertStatus(c.response(i), "CANCELLED")
        self.assertTrue(c.alive())  # and no second RESPONSE (Client.check)


class Metadata(ServerTest):
    def meta_call(self, c, key, metadata):
        r = c.call(META, echo(key), metadata=metadata)
        self.assertStatus(r, "OK")
        out = Echo()
        out.ParseFromString(r.payload)
        return out

    def test_value_reaches_handler(self):
        c = self.ready()
        out = self.meta_call(c, "trace-id", [("trace-id", b"abc")])
        self.assertEqual((out.text, out.data), ("present", b"abc"))

    def test_keys_case_sensitive(self):
        c = self.ready()
        out = self.meta_call(c, "trace-id", [("Trace-Id", b"abc")])
        self.assertEqual(out.text, "absent")

    def test_binary_value(self):
        c = self.ready()
        out = self.meta_call(c, "bin", [("bin", bytes(range(256)))])
        self.assertEqual(out.data, bytes(range(256)))

    def test_many_entries(self):
        c = self.ready()
        entries = [(f"k{i}", f"v{i}".encode()) for i in range(60)]
        out = self.meta_call(c, "k37", entries)
        self.assertEqual(out.data, b"v37")

    def test_reserved_rr_keys_not_shown_to_handlers(self):
        """Decided: unknown rr- keys are hidden; the call still runs."""
        c = self.ready()
        out = self.meta_call(c, "rr-foo", [("rr-foo", b"x"), ("user", b"u")])
        self.assertEqual(out.text, "absent")


class CallIds(ServerTest):
    def test_increasing_with_gaps(self):
        c = self.ready()
        for i in (1, 5, 1000, 0xFFFFFFFE, 0xFFFFFFFF):
            with self.subTest(call_id=i):
                self.assertStatus(c.response(c.request(ECHO, echo(str(i)),
                                                       call_id=i)), "OK")

    def test_duplicate_after_completion(self):
        c = self.ready()
        self.assertStatus(c.call(ECHO, echo("1")), "OK")
        c.request(ECHO, echo("again"), call_id=1)
        c.expect_error(codec.PROTOCOL_ERROR)

    def test_duplicate_in_flight(self):
        c = self.ready()
        c.request(KV_SLEEP, sleep_req(3000), call_id=7)
        c.request(ECHO, echo("dup"), call_id=7)
        c.expect_error(codec.PROTOCOL_ERROR)

    def test_lower_than_greatest(self):
        c = self.ready()
        self.assertStatus(c.response(c.request(ECHO, echo("5"), call_id=5)), "OK")
        c.request(ECHO, echo("3"), call_id=3)
        g = c.expect_error(codec.PROTOCOL_ERROR)
        self.assertLessEqual(g.last_call_id, 5)


class Concurrency(ServerTest):
    server_opts = {"max_calls": 4}

    def test_over_the_limit_answered_at_once(self):
        c = self.ready()
        self.assertEqual(c.server_settings[codec.MAX_CONCURRENT_CALLS], 4)
        held = [c.request(HOLD, echo("800")) for _ in range(4)]
        extra = c.request(ECHO, echo("fifth"))  # would answer OK if run
        f, _ = c.read_until(lambda f: f.type == codec.RESPONSE)
        self.assertEqual(f.call_id, extra)
        self.assertEqual(codec.decode_response_meta(f.meta).status,
                         codec.STATUS["RESOURCE_EXHAUSTED"])
        for i in held:
            self.assertStatus(c.response(i), "OK")
        self.assertStatus(c.call(ECHO, echo("room again")), "OK")

    def test_cancelled_call_frees_its_slot(self):
        c = self.ready()
        held = [c.request(KV_SLEEP, sleep_req(5000)) for _ in range(4)]
        c.cancel(held[0])
        self.assertStatus(c.response(held[0]), "CANCELLED")
        self.assertStatus(c.call(ECHO, echo("slot")), "OK")
        for i in held[1:]:
            c.cancel(i)
            self.assertStatus(c.response(i), "CANCELLED")


if __name__ == "__main__":
    unittest.main()

# SPDX-License-Identifier: MIT
"""PROTOCOL.md section 9 against the C server: its graceful shutdown
(GOAWAY, calls finish, crossing REQUESTs never run, the grace period, no
new connections) and the client's GOAWAY."""

import time
import unittest

from base import (ECHO, HOLD, KV_SLEEP, ServerTest, codec, goaways, responses,
                  echo, sleep_req, SLOW)
from conn import ERROR_WAIT
from client import Client


class ServerShutdown(ServerTest):
    server = None

    @classmethod
    def setUpClass(cls):
        pass  # every test has a server of its own

    def test_goaway_names_greatest_call_and_calls_finish(self):
        srv = self.own_server(grace=5)
        c = self.ready(srv)
        ids = [c.request(HOLD, echo("300")) for _ in range(3)]
        c.roundtrip()
        srv.terminate()
        g = c.goaway()
        self.assertEqual((g.error_code, g.last_call_id), (codec.NO_ERROR, ids[-1]))
        for i in ids:
            self.assertStatus(c.response(i), "OK")
        c.expect_eof()  # the server shut its write side after the last
        c.close()
        self.assertEqual(srv.wait(), 0)

    def test_request_crossing_goaway_never_runs(self):
        srv = self.own_server(grace=5)
        c = self.ready(srv)
        first = c.request(HOLD, echo("400"))
        c.roundtrip()
        srv.terminate()
        g = c.goaway()
        self.assertEqual(g.last_call_id, first)
        late = c.request(ECHO, echo("crossed"))
        rest = c.expect_eof()
        self.assertNotIn(late, responses(rest), "a call above last_call_id ran")
        self.assertEqual(c.answered, {first})
        c.close()
        self.assertEqual(srv.wait(), 0)
        self.assertEqual(srv.executions(), 1)

    def test_idle_connection_closed(self):
        srv = self.own_server()
        c = self.ready(srv)
        c.roundtrip()  # the server has taken our SETTINGS
        srv.terminate()
        g = c.goaway()
        self.assertEqual((g.error_code, g.last_call_id), (codec.NO_ERROR, 0))
        c.expect_eof()
        c.close()
        self.assertEqual(srv.wait(), 0)

    def test_no_new_connections_during_shutdown(self):
        """Decided: the listeners close; connect is refused."""
        srv = self.own_server(grace=5)
        c = self.ready(srv)
        i = c.request(HOLD, echo("1500"))
        c.roundtrip()
        srv.terminate()
        c.goaway()
        refused = False
        try:
            late = Client.connect(srv.port)
            self.clients.append(late)
        except ConnectionRefusedError:
            refused = True
        self.assertTrue(refused, "connect accepted during graceful shutdown")
        self.assertStatus(c.response(i), "OK")

    def test_waits_for_client_eof_at_most_handshake_timeout(self):
        """Decided: after its last RESPONSE the server waits for the
        client's EOF at most its handshake timeout (here 1 s)."""
        srv = self.own_server(handshake_timeout=1.0)
        c = self.ready(srv)
        c.roundtrip()  # the server has taken our SETTINGS
        srv.terminate()
        c.goaway()
        c.expect_eof()
        start = time.monotonic()
        status = srv.wait(3.0 * SLOW)  # we keep our socket open
        self.assertIsNotNone(status, "server still waits for our EOF")
        self.assertGreaterEqual(time.monotonic() - start, 0.5)

    def test_grace_period_end_answers_unavailable(self):
        """Decided: calls still in flight at the end of the grace period
        are answered UNAVAILABLE (a handler that ignores the cancel)."""
        srv = self.own_server(grace=0.5)
        c = self.ready(srv)
        i = c.request(HOLD, echo("10000"))
        c.roundtrip()
        srv.terminate()
        self.assertEqual(c.goaway().last_call_id, i)
        self.assertStatus(c.response(i, timeout=3 * SLOW), "UNAVAILABLE")

    def test_grace_period_end_answers_unavailable_sleep(self):
        """Decided: UNAVAILABLE too when the handler stops on the cancel
        (Sleep fails its call CANCELLED)."""
        srv = self.own_server(grace=0.5)
        c = self.ready(srv)
        i = c.request(KV_SLEEP, sleep_req(10000))
        c.roundtrip()
        srv.terminate()
        c.goaway()
        self.assertStatus(c.response(i, timeout=3 * SLOW), "UNAVAILABLE")


class ClientGoaway(ServerTest):
    def test_calls_in_flight_answered_then_closed(self):
        c = self.ready()
        ids = [c.request(HOLD, echo("300")) for _ in range(2)]
        c.send(codec.encode_goaway(0, codec.NO_ERROR, "client done"))
        for i in ids:
            self.assertStatus(c.response(i), "OK")
        rest = c.expect_eof(timeout=ERROR_WAIT)
        for g in goaways(rest):
            self.assertEqual(g.error_code, codec.NO_ERROR)

    def test_idle_client_goaway_closes(self):
        c = self.ready()
        c.send(codec.encode_goaway(0, codec.NO_ERROR))
        c.expect_eof(timeout=ERROR_WAIT)

    def test_request_after_client_goaway(self):
        """Decided: a REQUEST after the client's GOAWAY is a
        PROTOCOL_ERROR."""
        c = self.ready()
        c.request(HOLD, echo("500"))
        c.send(codec.encode_goaway(0, codec.NO_ERROR))
        c.request(ECHO, echo("after goaway"))
        c.expect_error(codec.PROTOCOL_ERROR)

    def test_client_goaway_last_call_id_ignored(self):
        c = self.ready()
        i = c.request(HOLD, echo("200"))
        c.send(codec.encode_goaway(12345, codec.NO_ERROR))
        self.assertStatus(c.response(i), "OK")
        c.expect_eof(timeout=ERROR_WAIT)


if __name__ == "__main__":
    unittest.main()

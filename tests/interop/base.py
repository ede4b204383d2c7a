# SPDX-License-Identifier: MIT
"""Test cases against a C server: one server per test class (started by
setUpClass, stopped gracefully by PID in tearDownClass, which also checks
that it exited 0: under valgrind a leak or error fails), and servers of
their own for the tests that need other options or end the server."""

import unittest

import codec
from client import Client
from conn import SLOW, TIMEOUT
from codec import GOAWAY, RESPONSE
import procs

import testmsg_pb2
from kv import kv_pb2

ECHO = "/rrtest.Test/Echo"
HOLD = "/rrtest.Test/Hold"
FAIL = "/rrtest.Test/Fail"
BIG = "/rrtest.Test/Big"
META = "/rrtest.Test/Meta"
UNSET = "/rrtest.Test/Unset"
KV_GET = "/rawrpc.kv.Kv/Get"
KV_PUT = "/rawrpc.kv.Kv/Put"
KV_SLEEP = "/rawrpc.kv.Kv/Sleep"
ECHO_ECHO = "/rawrpc.echo.Echo/Echo"

Echo = testmsg_pb2.Echo


def echo(text="", data=b""):
    return Echo(text=text, data=data).SerializeToString()


def sleep_req(ms):
    return kv_pb2.SleepRequest(ms=ms).SerializeToString()


def responses(frames):
    return {f.call_id: codec.decode_response_meta(f.meta).status
            for f in frames if f.type == RESPONSE}


def goaways(frames):
    return [codec.decode_goaway(f.body) for f in frames if f.type == GOAWAY]


class ServerTest(unittest.TestCase):
    server_opts = {}
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = procs.Server(**cls.server_opts)

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.stop()

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def own_server(self, **opts):
        """A server for this test alone, stopped at its end."""
        srv = procs.Server(**opts)
        self.addCleanup(self._stop_own, srv)
        return srv

    def _stop_own(self, srv):
        for c in self.clients:  # closed before the server stops
            c.close()
        srv.stop()

    def connect(self, server=None):
        c = Client.connect((server or self.server).port)
        self.clients.append(c)
        return c

    def ready(self, server=None, settings=None, **kw):
        """A connected client past the handshake."""
        c = self.connect(server)
        if settings is None:
            c.handshake(**kw)
        else:
            c.handshake(settings, **kw)
        return c

    def assertStatus(self, reply, name, msg=None):
        self.assertEqual(reply.status_name, name,
                         f"call {reply.call_id}: {reply.status_name} "
                         f"{reply.message!r} ({msg or ''})")

    def assertError(self, client, code, send=None):
        """Sends `send`, then expects GOAWAY `code` and the close."""
        if send is not None:
            client.try_send(send)
        return client.expect_error(code)


__all__ = ["ServerTest", "ECHO", "HOLD", "FAIL", "BIG", "META", "UNSET",
           "KV_GET", "KV_PUT", "KV_SLEEP", "ECHO_ECHO", "Echo", "echo",
           "sleep_req", "codec", "goaways", "responses", "SLOW", "TIMEOUT", "kv_pb2"]

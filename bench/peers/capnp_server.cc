// SPDX-License-Identifier: MIT
//
// capnp_server.cc -- capnp-bench-server, the Cap'n Proto 0.9 comparator's
// echo server: capnp::EzRpcServer, one thread running kj's event loop,
// exporting echo.capnp's Echo as the bootstrap capability.  Every call is
// answered at once (a ready promise) by copying the request's Data into
// the results.
//
// Serialization: the payload is capnp's own Data (see echo.capnp), not a
// protobuf-c EchoRequest inside Data as the other peers carry.  Cap'n
// Proto reads a message where it lies, so the server's only copy of the
// payload is into the reply, where a protobuf-c server (rawrpc, baseline,
// nng, zmq) copies it out on unpack and in again on pack; at 64 KiB that
// is one copy of the payload fewer on each side in capnp's favour.
// Against it: its RPC protocol has the caller send a Finish for every
// Return, so the server reads two messages a call, and 0.9 reads each
// message with two read()s (segment table, then segments) and writes each
// reply with its own writev(): about five system calls a call, counted
// with perf at 64 B x 64, where baseline-server makes 0.05 by batching.
//
//   capnp-bench-server [--port P]   prints "port N", serves until SIGTERM

#include <capnp/ez-rpc.h>
#include <kj/async-io.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>

#include "echo.capnp.h"
#include "peer.h"

namespace
{

class EchoImpl final : public rrb::Echo::Server
{
  protected:
    kj::Promise<void> echo(EchoContext ctx) override
    {
        capnp::Data::Reader in = ctx.getParams().getPayload();
        // Sized for the payload, so the reply is built in one segment.
        ctx.getResults(capnp::MessageSize{in.size() / 8 + 8, 0}).setPayload(in);
        return kj::READY_NOW;
    }
};

// Serves until SIGTERM or SIGINT comes in on sfd.  kj reports failures
// (a port in use) by throwing.
int
serve(long want, int sfd)
{
    capnp::EzRpcServer server(kj::heap<EchoImpl>(), "127.0.0.1",
                              (unsigned) want);
    kj::WaitScope &ws = server.getWaitScope();
    unsigned port = server.getPort().wait(ws);
    std::printf("port %u\n", port);
    std::fflush(stdout);

    kj::Own<kj::AsyncInputStream> sig =
        server.getLowLevelIoProvider().wrapInputFd(
            sfd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    struct signalfd_siginfo info;
    sig->read(&info, sizeof(info)).wait(ws);
    return 0;
}

} // namespace

int
main(int argc, char **argv)
{
    long want = peer_port_arg(argc, argv);
    if (want < 0) {
        std::fprintf(stderr, "usage: capnp-bench-server [--port P]\n");
        return 2;
    }
    // SIGTERM and SIGINT come in on a signalfd that the event loop reads,
    // so the loop, not a handler, ends the server.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        std::perror("capnp-bench-server: signalfd");
        return 1;
    }
    try {
        return serve(want, sfd);
    } catch (const kj::Exception &e) {
        std::fprintf(stderr, "capnp-bench-server: %s\n",
                     e.getDescription().cStr());
        return 1;
    }
}

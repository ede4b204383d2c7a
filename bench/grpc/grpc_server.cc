// SPDX-License-Identifier: MIT
//
// grpc_server.cc -- grpc-bench-server, the gRPC comparator's echo server:
// gRPC C++'s asynchronous API with one completion queue served by one
// thread, the fastest of its server APIs for small unary calls.  The reply
// takes the request's payload by move, as rawrpc's echo does.
//
//   grpc-bench-server               prints "port N", serves until SIGTERM

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <thread>

#include "echo.grpc.pb.h"

namespace
{

using rawrpc::echo::Echo;
using rawrpc::echo::EchoReply;
using rawrpc::echo::EchoRequest;

// One call's life: waiting for a request, then for its reply to go out.
class EchoCall
{
  public:
    EchoCall(Echo::AsyncService *svc, grpc::ServerCompletionQueue *cq)
        : svc_(svc), cq_(cq), responder_(&ctx_)
    {
        svc_->RequestEcho(&ctx_, &req_, &responder_, cq_, cq_, this);
    }

    // ok is false when the queue is shutting down.
    void Proceed(bool ok)
    {
        if (replied_ || !ok) {
            delete this;
            return;
        }
        new EchoCall(svc_, cq_); // the next request finds a listener
        *rep_.mutable_payload() = std::move(*req_.mutable_payload());
        replied_ = true;
        responder_.Finish(rep_, grpc::Status::OK, this);
    }

  private:
    Echo::AsyncService *svc_;
    grpc::ServerCompletionQueue *cq_;
    grpc::ServerContext ctx_;
    EchoRequest req_;
    EchoReply rep_;
    grpc::ServerAsyncResponseWriter<EchoReply> responder_;
    bool replied_ = false;
};

} // namespace

int
main()
{
    Echo::AsyncService svc;
    grpc::ServerBuilder builder;
    int port = 0;

    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&svc);
    std::unique_ptr<grpc::ServerCompletionQueue> cq =
        builder.AddCompletionQueue();
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (server == nullptr || port == 0) {
        std::fprintf(stderr, "grpc-bench-server: cannot listen\n");
        return 1;
    }

    // SIGTERM is taken by sigwait on this thread; the poller gets none.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    // Enough listeners for every call the load generator keeps in flight.
    for (int i = 0; i < 256; i++)
        new EchoCall(&svc, cq.get());
    std::thread poller([&cq] {
        void *tag;
        bool ok;
        while (cq->Next(&tag, &ok))
            static_cast<EchoCall *>(tag)->Proceed(ok);
    });
    std::printf("port %d\n", port);
    std::fflush(stdout);

    int sig;
    sigwait(&set, &sig);
    server->Shutdown();
    cq->Shutdown();
    poller.join();
    return 0;
}

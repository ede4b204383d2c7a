// SPDX-License-Identifier: MIT
//
// grpc_bench.cc -- grpc-bench, the gRPC comparator's load generator.  The
// same closed loop as rawrpc-bench (N connections, M calls in flight on
// each, a warm-up, a measured run), on gRPC C++'s asynchronous client API
// with one completion queue polled by this thread, and the same JSON.
// Allocations are not counted here (allocs_per_call is -1).
//
//   grpc-bench --port P [--conns N] [--inflight M] [--payload BYTES]
//              [--duration S] [--warmup S] [--server-pid PID]
//              [--scenario NAME]

#include <getopt.h>
#include <grpcpp/grpcpp.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "echo.grpc.pb.h"
#include "hist.h"
#include "proc.h"

namespace
{

using rawrpc::echo::Echo;
using rawrpc::echo::EchoReply;
using rawrpc::echo::EchoRequest;

uint64_t
now_ns()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

struct Slot {
    int conn = 0;
    uint64_t start = 0;
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientAsyncResponseReader<EchoReply>> rpc;
    EchoReply reply;
    grpc::Status status;
};

struct Options {
    unsigned port = 0;
    int conns = 1, inflight = 1;
    size_t payload = 64;
    double duration = 3, warmup = 1;
    int server_pid = 0;
    std::string scenario = "custom";
};

bool
parse(int argc, char **argv, Options *o)
{
    static const struct option longopts[] = {
        {"port", required_argument, nullptr, 'p'},
        {"conns", required_argument, nullptr, 'c'},
        {"inflight", required_argument, nullptr, 'i'},
        {"payload", required_argument, nullptr, 'b'},
        {"duration", required_argument, nullptr, 'd'},
        {"warmup", required_argument, nullptr, 'w'},
        {"server-pid", required_argument, nullptr, 'P'},
        {"scenario", required_argument, nullptr, 'n'},
        {"system", required_argument, nullptr, 's'}, // accepted, ignored
        {nullptr, 0, nullptr, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, nullptr)) != -1) {
        switch (c) {
        case 'p':
            o->port = (unsigned) std::strtoul(optarg, nullptr, 10);
            break;
        case 'c':
            o->conns = std::max(1, (int) std::strtol(optarg, nullptr, 10));
            break;
        case 'i':
            o->inflight = std::max(1, (int) std::strtol(optarg, nullptr, 10));
            break;
        case 'b':
            o->payload = std::strtoul(optarg, nullptr, 10);
            break;
        case 'd':
            o->duration = std::strtod(optarg, nullptr);
            break;
        case 'w':
            o->warmup = std::strtod(optarg, nullptr);
            break;
        case 'P':
            o->server_pid = (int) std::strtol(optarg, nullptr, 10);
            break;
        case 'n':
            o->scenario = optarg;
            break;
        case 's':
            break;
        default:
            return false;
        }
    }
    return o->port > 0 && o->port <= 65535;
}

} // namespace

int
main(int argc, char **argv)
{
    Options o;
    if (!parse(argc, argv, &o)) {
        std::fprintf(stderr, "usage: see bench/grpc/grpc_bench.cc\n");
        return 2;
    }
    std::string target = "127.0.0.1:" + std::to_string(o.port);
    std::vector<std::unique_ptr<Echo::Stub>> stubs;
    for (int i = 0; i < o.conns; i++) {
        // Its own subchannel pool: one TCP connection per channel, as
        // rawrpc-bench opens one per rr_channel.
        grpc::ChannelArguments args;
        args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
        stubs.push_back(Echo::NewStub(grpc::CreateCustomChannel(
            target, grpc::InsecureChannelCredentials(), args)));
    }
    EchoRequest req;
    req.set_payload(std::string(o.payload, '\0'));

    grpc::CompletionQueue cq;
    std::vector<Slot> slots((size_t) o.conns * (size_t) o.inflight);
    auto issue = [&](Slot *s) {
        s->ctx = std::make_unique<grpc::ClientContext>();
        s->start = now_ns();
        s->rpc =
            stubs[(size_t) s->conn]->PrepareAsyncEcho(s->ctx.get(), req, &cq);
        s->rpc->StartCall();
        s->rpc->Finish(&s->reply, &s->status, s);
    };
    for (size_t i = 0; i < slots.size(); i++) {
        slots[i].conn = (int) (i / (size_t) o.inflight);
        issue(&slots[i]);
    }

    static hist h; // large: not on the stack
    uint64_t calls = 0, errors = 0, outstanding = slots.size();
    uint64_t t_start = now_ns();
    uint64_t t_measure = t_start + (uint64_t) (o.warmup * 1e9);
    uint64_t t_end = t_measure + (uint64_t) (o.duration * 1e9);
    bool measuring = false, done = false;
    double cli0 = 0, srv0 = 0;
    void *tag;
    bool ok;
    while (outstanding > 0 && cq.Next(&tag, &ok)) {
        Slot *s = static_cast<Slot *>(tag);
        uint64_t now = now_ns();
        outstanding--;
        if (!measuring && now >= t_measure) {
            measuring = true;
            cli0 = proc_self_cpu();
            srv0 = proc_cpu(o.server_pid);
            t_measure = now;
        }
        if (measuring && !done && now >= t_end) {
            done = true;
            t_end = now;
        }
        if (measuring && !done) {
            hist_add(&h, now - s->start);
            calls++;
            errors += !(ok && s->status.ok());
        }
        if (!done) {
            issue(s);
            outstanding++;
        }
    }
    double cli = proc_self_cpu() - cli0, srv = proc_cpu(o.server_pid) - srv0;
    double secs = (double) (t_end - t_measure) / 1e9;
    double n = calls > 0 ? (double) calls : 1;
    std::printf(
        "{\"system\": \"grpc\", \"scenario\": \"%s\", \"payload\": %zu, "
        "\"conns\": %d, \"inflight\": %d, \"calls\": %llu, "
        "\"errors\": %llu, \"calls_per_s\": %.0f, \"p50_us\": %.2f, "
        "\"p90_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, "
        "\"max_us\": %.2f, \"srv_cpu_us_per_call\": %.3f, "
        "\"cli_cpu_us_per_call\": %.3f, \"allocs_per_call\": -1, "
        "\"rss_kb\": %ld}\n",
        o.scenario.c_str(), o.payload, o.conns, o.inflight,
        (unsigned long long) calls, (unsigned long long) errors,
        (double) calls / (secs > 0 ? secs : 1),
        (double) hist_quantile(&h, 0.50) / 1e3,
        (double) hist_quantile(&h, 0.90) / 1e3,
        (double) hist_quantile(&h, 0.99) / 1e3,
        (double) hist_quantile(&h, 0.999) / 1e3, (double) h.max / 1e3,
        srv * 1e6 / n, cli * 1e6 / n, proc_peak_rss_kb(o.server_pid));
    return errors > 0 ? 1 : 0;
}

// SPDX-License-Identifier: MIT
//
// capnp_bench.cc -- capnp-bench, the Cap'n Proto 0.9 comparator's load
// generator: the closed loop of rawrpc-bench and grpc-bench (N
// connections, M calls in flight on each, a warm-up, a measured run) on
// Cap'n Proto RPC.
//
// Each connection is a capnp::EzRpcClient of its own (one TCP connection
// and one RPC session each); all of them live on this thread and so share
// its one kj event loop.  Each keeps M calls in flight on the bootstrap
// Echo capability: a call's promise, when it resolves, records the reply
// and sends that slot's next call.  kj timers end the warm-up and the
// run; the loop then runs until the last calls have come back.
//
// The payload is capnp Data (see echo.capnp and capnp_server.cc for what
// that spares it against the protobuf-c systems); the reply is checked by
// its size only, reading it in place being what capnp offers.
// Allocations are not counted (allocs_per_call is -1).
//
//   capnp-bench --port P [--conns N] [--inflight M] [--payload BYTES]
//               [--duration S] [--warmup S] [--server-pid PID]
//               [--scenario NAME]

#include <capnp/ez-rpc.h>
#include <kj/async-io.h>
#include <kj/timer.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "echo.capnp.h"
#include "peer.h"

namespace
{

struct Slot {
    size_t conn = 0;
    uint64_t start = 0;
};

class Bench final : private kj::TaskSet::ErrorHandler
{
  public:
    explicit Bench(const peer_opts &o)
        : o_(o), payload_(o.payload), tasks_(*this)
    {
        for (int i = 0; i < o.conns; i++) {
            clients_.push_back(
                std::make_unique<capnp::EzRpcClient>("127.0.0.1", o.port));
            caps_.push_back(clients_.back()->getMain<rrb::Echo>());
        }
        slots_.resize((size_t) o.conns * (size_t) o.inflight);
        for (size_t i = 0; i < slots_.size(); i++)
            slots_[i].conn = i / (size_t) o.inflight;
    }

    // Runs the warm-up and the measured run, and waits for the calls still
    // in flight; then m holds the results.
    void Run(peer_meter *m)
    {
        m_ = m;
        peer_meter_init(m_, &o_);
        auto last = kj::newPromiseAndFulfiller<void>();
        idle_ = kj::mv(last.fulfiller);
        outstanding_ = slots_.size();
        for (Slot &s : slots_)
            Issue(s);

        kj::Timer &timer = clients_[0]->getIoProvider().getTimer();
        kj::WaitScope &ws = clients_[0]->getWaitScope();
        timer.afterDelay(Seconds(o_.warmup)).wait(ws);
        peer_meter_begin(m_);
        timer.afterDelay(Seconds(o_.duration)).wait(ws);
        peer_meter_end(m_);
        last.promise.wait(ws);
    }

  private:
    static kj::Duration Seconds(double s)
    {
        return (int64_t) (s * 1e9) * kj::NANOSECONDS;
    }

    void Issue(Slot &s)
    {
        auto req = caps_[s.conn].echoRequest(
            capnp::MessageSize{payload_.size() / 8 + 8, 0});
        req.setPayload(capnp::Data::Reader(payload_.data(), payload_.size()));
        s.start = peer_now_ns();
        Slot *sp = &s;
        tasks_.add(req.send().then(
            [this, sp](capnp::Response<rrb::Echo::EchoResults> &&r) {
                Finish(*sp, r.getPayload().size() == o_.payload);
            },
            [this, sp](kj::Exception &&) { Finish(*sp, false); }));
    }

    void Finish(Slot &s, bool ok)
    {
        peer_meter_record(m_, s.start, ok);
        if (m_->phase != PEER_DONE)
            Issue(s);
        else if (--outstanding_ == 0)
            idle_->fulfill();
    }

    void taskFailed(kj::Exception &&e) override
    {
        std::fprintf(stderr, "capnp-bench: %s\n", e.getDescription().cStr());
        std::exit(1);
    }

    const peer_opts &o_;
    std::vector<capnp::byte> payload_; // zeros, as the other systems send
    std::vector<std::unique_ptr<capnp::EzRpcClient>> clients_;
    std::vector<rrb::Echo::Client> caps_;
    std::vector<Slot> slots_;
    peer_meter *m_ = nullptr;
    size_t outstanding_ = 0;
    kj::Own<kj::PromiseFulfiller<void>> idle_;
    kj::TaskSet tasks_; // last: destroyed first, before what its tasks use
};

} // namespace

int
main(int argc, char **argv)
{
    peer_opts o;
    if (!peer_parse(argc, argv, &o)) {
        std::fprintf(stderr, "usage: see bench/peers/capnp_bench.cc\n");
        return 2;
    }
    static peer_meter m; // large: not on the stack
    {
        Bench b(o);
        b.Run(&m);
    }
    peer_meter_report(&m, "capnp", &o);
    return m.errors > 0 ? 1 : 0;
}

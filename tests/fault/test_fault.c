// SPDX-License-Identifier: MIT
//
// test_fault.c -- the fault-injection suite: real server processes
// (rawrpc-fault-server), a real client in this process, and a network
// made to misbehave by a fault-injecting proxy (tests/fault/proxy.c, no
// root needed) or by network namespaces joined by a veth pair with
// nftables rules (root; skipped without it).  Each scenario states what
// must hold and checks it:
//
//   sigkill_mid_call      pending calls fail UNAVAILABLE within a second;
//                         the channel reconnects, with growing backoff,
//                         when a new server appears
//   blackhole_*           a network that silently drops everything (no
//                         FIN, no RST) is found dead by the heartbeat on
//                         both sides within interval + timeout
//   slow_pieces           50 ms delay and 1-byte pieces: calls with a
//                         sufficient deadline succeed, the rest fail with
//                         DEADLINE_EXCEEDED, nothing runs or answers twice
//   proxy_stall_and_reset a stall loses nothing; a reset fails pending
//                         calls at once and the channel reconnects
//   netns_packet_loss     5 % of packets dropped: the same promise
//   hostile_crowd         500 garbage and 500 silent connections and one
//                         4 GiB length: a good client is served all along
//                         and the server's RSS stays bounded
//   descriptor_exhaustion the server sheds, logs, and serves again once
//                         descriptors free up
//   shutdown_under_load   SIGTERM under load: every call the server ran is
//                         answered, none runs twice, none is lost
//
// Timing bounds are generous (a shared VM under valgrind); what they
// guard against is minutes, not milliseconds.

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "namehash.h"
#include "codec/buf.h"
#include "codec/frame.h"
#include "codec/preface.h"
#include "proxy.h"
#include "rawrpc/rawrpc.h"
#include "testmsg.pb-c.h"

#define NS      "rrfault"
#define NS_IP   "10.213.77.2"
#define HOST_IP "10.213.77.1"

static const rr_method m_echo = {"/rrtest.Test/Echo", &rrtest__echo__descriptor,
                                 &rrtest__echo__descriptor};
static const rr_method m_hold = {"/rrtest.Test/Hold", &rrtest__echo__descriptor,
                                 &rrtest__echo__descriptor};

// ------------------------------------------------------------ the loop

static struct ev_loop *loop;

static void
break_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void) w;
    (void) revents;
    ev_break(l, EVBREAK_ONE);
}

// Runs the loop for seconds of loop time.
static void
run_for(double seconds)
{
    ev_timer t;

    ev_timer_init(&t, break_cb, seconds, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

// Runs the loop until *n reaches want or limit seconds pass; returns the
// loop time it took.
static double
run_until_count(const int *n, int want, double limit)
{
    double t0 = ev_time();

    while (*n < want && ev_time() - t0 < limit)
        run_for(0.005);
    return ev_time() - t0;
}

// ---------------------------------------------------------- the server

typedef struct srvproc {
    pid_t pid;
    uint16_t port;
    int out; // its stdout
    char log[64];
} srvproc;

typedef struct srvstats {
    unsigned long long executions, duplicates, sum;
} srvstats;

// Starts rawrpc-fault-server (inside netns ns when not NULL) with the
// extra arguments, NULL-terminated; waits for its "port N".
static void
srv_start(srvproc *s, const char *ns, ...)
{
    const char *argv[32];
    int n = 0, pipefd[2];
    va_list ap;

    memset(s, 0, sizeof(*s));
    if (ns != NULL) {
        argv[n++] = "ip";
        argv[n++] = "netns";
        argv[n++] = "exec";
        argv[n++] = ns;
    }
    argv[n++] = FAULT_SERVER;
    va_start(ap, ns);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 31;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;

    snprintf(s->log, sizeof(s->log), "/tmp/rr-fault-%d-XXXXXX", (int) getpid());
    int logfd = mkstemp(s->log);
    assert_true(logfd >= 0);
    assert_int_equal(pipe(pipefd), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        dup2(pipefd[1], 1);
        dup2(logfd, 2);
        close(pipefd[0]);
        execvp(argv[0], (char *const *) argv);
        _exit(127);
    }
    close(pipefd[1]);
    close(logfd);
    s->out = pipefd[0];
    char line[64] = "";
    size_t len = 0;
    struct pollfd pfd = {s->out, POLLIN, 0};
    while (len < sizeof(line) - 1 && strchr(line, '\n') == NULL &&
           poll(&pfd, 1, 10000) == 1) {
        ssize_t r = read(s->out, line + len, 1);
        if (r <= 0)
            break;
        line[++len] = '\0';
    }
    unsigned port = 0;
    if (sscanf(line, "port %u", &port) != 1 || port == 0)
        fail_msg("fault server did not start: \"%s\"", line);
    s->port = (uint16_t) port;
}

// SIGTERM: the graceful shutdown; reads the server's figures.
static void
srv_stop(srvproc *s, srvstats *st)
{
    char buf[256] = "";
    size_t len = 0;
    int status;

    kill(s->pid, SIGTERM);
    for (;;) {
        // The loop keeps running: the clients must see the GOAWAY.
        struct pollfd pfd = {s->out, POLLIN, 0};
        if (poll(&pfd, 1, 0) == 1) {
            ssize_t r = read(s->out, buf + len, sizeof(buf) - 1 - len);
            if (r <= 0)
                break;
            len += (size_t) r;
            buf[len] = '\0';
            continue;
        }
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            ssize_t r;
            while ((r = read(s->out, buf + len, sizeof(buf) - 1 - len)) > 0)
                len += (size_t) r;
            buf[len] = '\0';
            s->pid = -1;
            break;
        }
        run_for(0.01);
    }
    if (s->pid > 0)
        waitpid(s->pid, &status, 0);
    close(s->out);
    unlink(s->log);
    memset(st, 0, sizeof(*st));
    if (sscanf(buf,
               "{\"executions\": %llu, \"duplicates\": %llu, \"sum\": %llu",
               &st->executions, &st->duplicates, &st->sum) != 3)
        fail_msg("no figures from the fault server: \"%s\"", buf);
}

static void
srv_kill(srvproc *s)
{
    int status;

    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    close(s->out);
    unlink(s->log);
}

// Whether the server's log has needle yet.
static bool
srv_logged(const srvproc *s, const char *needle)
{
    char buf[1 << 16];
    FILE *fp = fopen(s->log, "r");
    size_t n;

    if (fp == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

// Runs the loop until the server logs needle; returns the time taken, or
// a negative number after limit seconds.
static double
wait_logged(const srvproc *s, const char *needle, double limit)
{
    double t0 = ev_time();

    while (!srv_logged(s, needle)) {
        if (ev_time() - t0 > limit)
            return -1;
        run_for(0.01);
    }
    return ev_time() - t0;
}

static long
srv_rss_kb(const srvproc *s)
{
    char path[64], line[256];
    long kb = 0;

    snprintf(path, sizeof(path), "/proc/%d/status", (int) s->pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(fp);
    return kb;
}

// ------------------------------------------------------------- calls

enum { MAX_CALLS = 4096 };

typedef struct call {
    int runs;
    rr_status status;
    double done_at;
    char name[24];
} call;

typedef struct calls {
    call c[MAX_CALLS];
    int n, done, ok;
    unsigned long long ok_sum; // over the names of successful calls
} calls;

static calls cs;

static void
call_done(const rr_result *res, void *arg)
{
    call *c = arg;

    assert_int_equal(++c->runs, 1); // never twice
    c->status = res->status;
    c->done_at = ev_time();
    cs.done++;
    if (res->status == RR_STATUS_OK) {
        cs.ok++;
        cs.ok_sum += fault_name_hash(c->name);
    }
}

// Starts a call named uniquely; Hold replies after hold_ms.
static call *
start(rr_channel *ch, bool hold, int hold_ms, double timeout,
      bool wait_for_ready)
{
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    rr_call_opts o = {.timeout = timeout, .wait_for_ready = wait_for_ready};
    static uint8_t pad[65536]; // Hold's delay is its data's length in ms

    assert_true(cs.n < MAX_CALLS);
    assert_true(!hold || (size_t) hold_ms <= sizeof(pad));
    call *c = &cs.c[cs.n++];
    snprintf(c->name, sizeof(c->name), "call-%d-%d", (int) getpid(), cs.n);
    req.text = c->name;
    req.data.data = pad;
    req.data.len = hold ? (size_t) hold_ms : 0;
    assert_int_equal(rr_channel_call(ch, hold ? &m_hold : &m_echo, &req.base,
                                     &o, call_done, c, NULL),
                     RR_OK);
    return c;
}

static int
calls_setup(void **state)
{
    (void) state;
    memset(&cs, 0, sizeof(cs));
    return 0;
}

static rr_channel *
channel(const char *host, uint16_t port, double hb, double backoff)
{
    rr_channel_opts o;
    rr_channel *ch;
    char target[64];

    rr_channel_opts_init(&o);
    if (hb > 0) {
        o.heartbeat_interval = hb;
        o.heartbeat_timeout = hb;
    }
    o.backoff_initial = backoff;
    o.backoff_max = backoff * 4;
    o.connect_timeout = 2;
    snprintf(target, sizeof(target), "%s:%u", host, (unsigned) port);
    assert_int_equal(rr_channel_new(&ch, loop, target, &o), RR_OK);
    return ch;
}

// --------------------------------------------------------- scenarios

// Reconnect delays the channel logs, in order.
static double delays[16];
static int n_delays;

static void
log_delays(rr_log_level level, const char *msg, void *arg)
{
    double d;
    const char *p = strstr(msg, "reconnecting in ");

    (void) level;
    (void) arg;
    if (p != NULL && n_delays < 16 && sscanf(p, "reconnecting in %lf", &d) == 1)
        delays[n_delays++] = d;
}

static void
test_fault_sigkill_mid_call(void **state)
{
    (void) state;
    srvproc s;
    char port[16];

    srv_start(&s, NULL, (const char *) NULL);
    rr_channel *ch = channel("127.0.0.1", s.port, 0, 0.05);
    for (int i = 0; i < 20; i++)
        start(ch, true, 60000, 0, false); // a minute: only a kill ends them
    run_for(0.3);
    assert_int_equal(cs.done, 0);

    double killed = ev_time();
    srv_kill(&s);
    run_until_count(&cs.done, 20, 10);
    assert_int_equal(cs.done, 20);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(cs.c[i].status, RR_STATUS_UNAVAILABLE);
        assert_true(cs.c[i].done_at - killed < 1.0); // promptly
    }

    // While no server runs, a waiting call queues and the channel backs
    // off; when one appears on the same port, the call goes through.
    n_delays = 0;
    rr_log_set(log_delays, NULL, RR_LOG_INFO);
    call *c = start(ch, false, 0, 0, true);
    run_for(0.6);
    assert_int_equal(c->runs, 0);
    snprintf(port, sizeof(port), "%u", (unsigned) s.port);
    srv_start(&s, NULL, "--port", port, (const char *) NULL);
    run_until_count(&c->runs, 1, 5);
    rr_log_set(NULL, NULL, RR_LOG_WARN);
    assert_int_equal(c->status, RR_STATUS_OK);
    // Backoff grows: 0.05 s, then x1.6 per attempt, +-20 % jitter.
    assert_true(n_delays >= 3);
    for (int i = 1; i < 3; i++)
        assert_true(delays[i] > delays[i - 1]);

    srvstats st;
    rr_channel_free(ch);
    srv_stop(&s, &st);
    assert_int_equal(st.duplicates, 0);
}

// A network that swallows everything: both sides' heartbeats (0.2 s
// interval and timeout) must notice within about 0.4 s.
static void
blackhole_check(srvproc *s, rr_channel *ch, void (*cut)(void *), void *arg)
{
    call *ok = start(ch, false, 0, 0, false);
    run_until_count(&ok->runs, 1, 5);
    assert_int_equal(ok->status, RR_STATUS_OK);
    call *c = start(ch, true, 60000, 0, false);
    run_for(0.1);
    double t0 = ev_time();
    cut(arg);
    run_until_count(&c->runs, 1, 10);
    double took = ev_time() - t0;
    assert_int_equal(c->status, RR_STATUS_UNAVAILABLE);
    assert_true(took < 1.5); // interval + timeout = 0.4 s, and slack
    double srv = wait_logged(s, "HEARTBEAT_TIMEOUT", 3);
    assert_true(srv >= 0); // the server found it too
}

static void
cut_proxy(void *arg)
{
    proxy_set(arg, PROXY_BLACKHOLE, 0);
}

static void
test_fault_blackhole_proxy(void **state)
{
    (void) state;
    srvproc s;

    srv_start(&s, NULL, "--heartbeat", "0.2", (const char *) NULL);
    proxy *px = proxy_new(loop, s.port);
    assert_non_null(px);
    rr_channel *ch = channel("127.0.0.1", proxy_port(px), 0.2, 0.05);
    blackhole_check(&s, ch, cut_proxy, px);
    rr_channel_free(ch);
    proxy_free(px);
    srvstats st;
    srv_stop(&s, &st);
    assert_int_equal(st.duplicates, 0);
}

// ------------------------------------------------- network namespaces

__attribute__((format(printf, 1, 2))) static bool
sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd) == 0;
}

static bool
netns_possible(void)
{
    return geteuid() == 0 && sh("command -v nft >/dev/null 2>&1") &&
           sh("command -v ip >/dev/null 2>&1");
}

// A namespace joined to ours by a veth pair: NS_IP there, HOST_IP here.
static void
netns_up(void)
{
    sh("ip netns del " NS " 2>/dev/null");
    sh("ip link del rrf0 2>/dev/null");
    assert_true(sh("ip netns add " NS));
    assert_true(sh("ip link add rrf0 type veth peer name rrf1"));
    assert_true(sh("ip link set rrf1 netns " NS));
    assert_true(
        sh("ip addr add " HOST_IP "/24 dev rrf0 && ip link set rrf0 up"));
    assert_true(
        sh("ip netns exec " NS " sh -c 'ip addr add " NS_IP
           "/24 dev rrf1 && ip link set rrf1 up && ip link set lo up'"));
}

static void
netns_down(void)
{
    sh("ip netns del " NS " 2>/dev/null");
    sh("ip link del rrf0 2>/dev/null");
}

// nftables inside the namespace: rule is added to both directions.
static void
netns_filter(void *rule)
{
    assert_true(sh("ip netns exec " NS " nft -f - <<'EOF'\n"
                   "table inet rrfault {\n"
                   "  chain in { type filter hook input priority 0; %s; }\n"
                   "  chain out { type filter hook output priority 0; %s; }\n"
                   "}\nEOF",
                   (const char *) rule, (const char *) rule));
}

static void
test_fault_blackhole_netns(void **state)
{
    (void) state;
    srvproc s;

    if (!netns_possible())
        skip();
    netns_up();
    srv_start(&s, NS, "--host", NS_IP, "--heartbeat", "0.2",
              (const char *) NULL);
    rr_channel *ch = channel(NS_IP, s.port, 0.2, 0.05);
    static char drop[] = "drop";
    blackhole_check(&s, ch, netns_filter, drop);
    rr_channel_free(ch);
    srv_kill(&s); // it cannot hear us any more
    netns_down();
}

// Calls with a sufficient deadline succeed; calls with one too short
// fail with DEADLINE_EXCEEDED; nothing runs twice.
static void
deadline_mix(rr_channel *ch, int good, double good_timeout, int tight,
             double tight_timeout)
{
    int first = cs.n;

    for (int i = 0; i < good; i++)
        start(ch, false, 0, good_timeout, false);
    for (int i = 0; i < tight; i++)
        start(ch, true, 100, tight_timeout, false);
    run_until_count(&cs.done, cs.n, good_timeout + 10);
    assert_int_equal(cs.done, cs.n);
    for (int i = first; i < first + good; i++)
        assert_int_equal(cs.c[i].status, RR_STATUS_OK);
    for (int i = first + good; i < cs.n; i++)
        assert_int_equal(cs.c[i].status, RR_STATUS_DEADLINE_EXCEEDED);
}

static void
test_fault_slow_pieces(void **state)
{
    (void) state;
    srvproc s;
    srvstats st;

    srv_start(&s, NULL, (const char *) NULL);
    proxy *px = proxy_new(loop, s.port);
    assert_non_null(px);
    rr_channel *ch = channel("127.0.0.1", proxy_port(px), 0, 0.05);
    call *c = start(ch, false, 0, 0, false); // connect at full speed
    run_until_count(&c->runs, 1, 5);
    proxy_set(px, PROXY_PIECES, 0.05); // 50 ms, then one byte at a time
    // Hold replies after 100 ms: a 20 ms deadline cannot be met.
    deadline_mix(ch, 50, 5.0, 20, 0.02);
    rr_channel_free(ch);
    proxy_free(px);
    srv_stop(&s, &st);
    assert_int_equal(st.duplicates, 0);
    assert_true(st.executions >= (unsigned long long) cs.ok);
}

// A stalled network holds bytes without losing them: calls whose
// deadline outlasts the stall succeed once it ends, the others fail with
// DEADLINE_EXCEEDED.  A reset fails what is pending at once, and the
// channel's next calls go through on a new connection.
static void
test_fault_proxy_stall_and_reset(void **state)
{
    (void) state;
    srvproc s;
    srvstats st;

    srv_start(&s, NULL, (const char *) NULL);
    proxy *px = proxy_new(loop, s.port);
    assert_non_null(px);
    rr_channel *ch = channel("127.0.0.1", proxy_port(px), 0, 0.05);
    call *c = start(ch, false, 0, 0, false);
    run_until_count(&c->runs, 1, 5);
    assert_int_equal(c->status, RR_STATUS_OK);

    proxy_set(px, PROXY_STALL, 0);
    call *patient = start(ch, false, 0, 5.0, false);
    call *hasty = start(ch, false, 0, 0.1, false);
    run_for(0.3);
    assert_int_equal(patient->runs, 0); // held, not lost
    assert_int_equal(hasty->runs, 1);
    assert_int_equal(hasty->status, RR_STATUS_DEADLINE_EXCEEDED);
    proxy_set(px, PROXY_PASS, 0);
    run_until_count(&patient->runs, 1, 5);
    assert_int_equal(patient->status, RR_STATUS_OK);

    call *held = start(ch, true, 60000, 0, false);
    run_for(0.1);
    double t0 = ev_time();
    proxy_reset(px);
    run_until_count(&held->runs, 1, 5);
    assert_int_equal(held->status, RR_STATUS_UNAVAILABLE);
    assert_true(held->done_at - t0 < 1.0);
    c = start(ch, false, 0, 5.0, false); // a new connection
    run_until_count(&c->runs, 1, 5);
    assert_int_equal(c->status, RR_STATUS_OK);

    rr_channel_free(ch);
    proxy_free(px);
    srv_stop(&s, &st);
    assert_int_equal(st.duplicates, 0);
}

static void
test_fault_netns_packet_loss(void **state)
{
    (void) state;
    srvproc s;
    srvstats st;

    if (!netns_possible())
        skip();
    netns_up();
    srv_start(&s, NS, "--host", NS_IP, (const char *) NULL);
    rr_channel *ch = channel(NS_IP, s.port, 0, 0.05);
    call *c = start(ch, false, 0, 0, false);
    run_until_count(&c->runs, 1, 5);
    static char loss[] = "numgen random mod 100 < 5 drop";
    netns_filter(loss);
    deadline_mix(ch, 200, 20.0, 20, 0.02);
    rr_channel_free(ch);
    srv_stop(&s, &st);
    assert_int_equal(st.duplicates, 0);
    assert_true(st.executions >= (unsigned long long) cs.ok);
    netns_down();
}

// Opens a TCP connection to the server; -1 when out of descriptors.
static int
raw_connect(uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void
test_fault_hostile_crowd(void **state)
{
    (void) state;
    enum { EACH = 500 };
    static int fds[2 * EACH + 1];
    srvproc s;
    srvstats st;
    struct rlimit rl;

    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t) 4 * EACH) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t) 4 * EACH)
            skip(); // cannot open the crowd here
    }
    srv_start(&s, NULL, (const char *) NULL);
    long rss0 = srv_rss_kb(&s);
    rr_channel *ch = channel("127.0.0.1", s.port, 0, 0.05);
    uint8_t junk[512];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t) (i * 131 + 7);

    int n = 0;
    for (int i = 0; i < 2 * EACH; i++) {
        fds[n] = raw_connect(s.port);
        assert_true(fds[n] >= 0);
        if (i % 2 == 0) // garbage; the other half says nothing
            assert_true(send(fds[n], junk, sizeof(junk), MSG_NOSIGNAL) > 0);
        n++;
        if (i % 50 == 0) { // a good client keeps being served
            call *c = start(ch, false, 0, 5, false);
            run_until_count(&c->runs, 1, 5);
            assert_int_equal(c->status, RR_STATUS_OK);
        }
    }
    // And one that announces a 4 GiB frame after a proper handshake.
    rr_buf b;
    rr_settings set;
    rr__settings_init(&set);
    rr__buf_init(&b, 1024);
    rr__preface_put(&b, 1);
    rr__settings_put(&b, &set);
    uint8_t *p;
    rr_frame f = {.length = 0, .type = RR_FRAME_REQUEST, .call_id = 1};
    assert_int_equal(rr__frame_start(&b, &f, &p), RR_OK);
    memset(p - RR_FRAME_HEADER_SIZE, 0xFF, 4); // length = 2^32 - 1
    rr__buf_commit(&b, RR_FRAME_HEADER_SIZE);
    fds[n] = raw_connect(s.port);
    assert_true(fds[n] >= 0);
    assert_true(
        send(fds[n++], rr__buf_data(&b), rr__buf_size(&b), MSG_NOSIGNAL) > 0);
    rr__buf_fini(&b);
    for (int i = 0; i < 10; i++) {
        call *c = start(ch, false, 0, 5, false);
        run_until_count(&c->runs, 1, 5);
        assert_int_equal(c->status, RR_STATUS_OK);
    }
    long rss = srv_rss_kb(&s);
    // 1001 connections; bounded: no per-connection input buffers kept.
    assert_true(rss - rss0 < 32L * 1024);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    rr_channel_free(ch);
    srv_stop(&s, &st);
    assert_int_equal(st.duplicates, 0);
}

static void
test_fault_descriptor_exhaustion(void **state)
{
    (void) state;
    enum { CROWD = 80 };
    int fds[CROWD];
    srvproc s;
    srvstats st;

    srv_start(&s, NULL, "--nofile", "48", (const char *) NULL);
    for (int i = 0; i < CROWD; i++)
        assert_true((fds[i] = raw_connect(s.port)) >= 0);
    assert_true(wait_logged(&s, "shedding", 5) >= 0);
    rr_channel *ch = channel("127.0.0.1", s.port, 0, 0.05);
    call *c = start(ch, false, 0, 0, true); // waits while shed
    run_for(0.3);
    for (int i = 0; i < CROWD; i++)
        close(fds[i]);
    run_until_count(&c->runs, 1, 10);
    assert_int_equal(c->status, RR_STATUS_OK); // served again
    rr_channel_free(ch);
    srv_stop(&s, &st);
}

static void
test_fault_shutdown_under_load(void **state)
{
    (void) state;
    enum { CHANNELS = 4, DEPTH = 16 };
    rr_channel *chs[CHANNELS];
    srvproc s;
    srvstats st;

    srv_start(&s, NULL, "--grace", "5", (const char *) NULL);
    for (int i = 0; i < CHANNELS; i++)
        chs[i] = channel("127.0.0.1", s.port, 0, 0.05);
    // Keep DEPTH calls in flight per channel until the server is gone.
    double t0 = ev_time();
    bool stopping = false;
    pid_t pid = s.pid;
    while (cs.n < MAX_CALLS - CHANNELS * DEPTH) {
        int inflight = cs.n - cs.done;
        for (int i = 0; inflight < CHANNELS * DEPTH; i++, inflight++)
            start(chs[i % CHANNELS], i % 4 == 0, 20, 0, false);
        run_for(0.002);
        if (!stopping && ev_time() - t0 > 0.5) {
            kill(pid, SIGTERM); // srv_stop collects the figures below
            stopping = true;
        }
        if (stopping && cs.done > cs.ok) // calls fail: it stopped taking
            break;
    }
    srv_stop(&s, &st); // the same SIGTERM again is harmless
    run_until_count(&cs.done, cs.n, 10);
    assert_int_equal(cs.done, cs.n);
    // Every call the server ran was answered; none ran twice.
    assert_int_equal(st.duplicates, 0);
    assert_int_equal(st.executions, (unsigned long long) cs.ok);
    assert_true(st.sum == cs.ok_sum);
    assert_true(cs.ok > 100);
    for (int i = 0; i < CHANNELS; i++)
        rr_channel_free(chs[i]);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup(name, calls_setup)
    const struct CMUnitTest tests[] = {
        T(test_fault_sigkill_mid_call),
        T(test_fault_blackhole_proxy),
        T(test_fault_blackhole_netns),
        T(test_fault_slow_pieces),
        T(test_fault_proxy_stall_and_reset),
        T(test_fault_netns_packet_loss),
        T(test_fault_hostile_crowd),
        T(test_fault_descriptor_exhaustion),
        T(test_fault_shutdown_under_load),
    };
#undef T
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &sa, NULL); // a peer that is gone must not kill us
    rr_log_set(NULL, NULL, RR_LOG_WARN);
    loop = ev_loop_new(EVFLAG_AUTO);
    int rv = cmocka_run_group_tests_name("fault", tests, NULL, NULL);
    ev_loop_destroy(loop);
    return rv;
}

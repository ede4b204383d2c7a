// SPDX-License-Identifier: MIT
//
// rawrpc -- the command-line caller (grpcurl's job, for rawrpc):
//
//   rawrpc [OPTIONS] list ADDR [SERVICE]
//   rawrpc [OPTIONS] describe ADDR SYMBOL
//   rawrpc [OPTIONS] call ADDR pkg.Service/Method [JSON | -d @FILE | -d @-]
//   rawrpc [OPTIONS] health ADDR [SERVICE]
//
// Messages are built at run time from descriptors: the server's
// reflection (rr_server_enable_reflection), or --proto FILE with -I DIR
// (protoc makes a descriptor set), or --protoset FILE.  Requests and
// replies are protobuf's canonical JSON mapping.
//
// Why C++ and libprotobuf here, in a C project: the JSON mapping of
// protobuf (lowerCamel names, 64-bit integers as strings, bytes as
// base64, enums by name, Timestamp, Duration, wrappers, Struct and Any in
// their own forms) is defined by libprotobuf's util/json_util, and its
// DynamicMessage builds messages from descriptors known only at run time.
// Both are the reference implementations, in Debian with protoc itself;
// the library and everything else stay C.  The transport is librawrpc's
// C API (rr_channel_call_raw).

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "health/health.rr.h"
#include "rawrpc/rawrpc.h"

namespace pb = google::protobuf;

namespace {

// The exit status of a failure before any call: a usage error, bad JSON,
// a name the descriptors do not have.  A call's own status is its code.
constexpr int EXIT_LOCAL = 2;

struct Options {
    std::vector<std::string> protos, includes, protosets;
    std::vector<std::pair<std::string, std::string>> headers;
    double deadline = 0;
    bool emit_defaults = false;
    bool text = false;
    std::string data;      // -d
    std::string emit_wire; // --emit-wire FILE: the request's bytes
};

// What ends the program: thrown, so that the channel and its loop are
// freed on the way out (main catches it), as they are on success.
struct Exit {
    int code;
};

[[noreturn]] void
die(int code, const std::string &msg)
{
    // One line, whatever the message (libprotobuf's JSON errors quote
    // the input on lines of their own).
    std::string line;
    bool space = false;
    for (char ch : msg) {
        bool ws = ch == '\n' || ch == '\r' || ch == '\t' || ch == ' ';
        if (ws && !space && !line.empty())
            line += ' ';
        else if (!ws)
            line += ch;
        space = ws;
    }
    while (!line.empty() && line.back() == ' ')
        line.pop_back();
    std::cerr << "rawrpc: " << line << "\n";
    throw Exit{code};
}

[[noreturn]] void
usage()
{
    std::cerr
        << "usage: rawrpc [OPTIONS] list ADDR [SERVICE]\n"
           "       rawrpc [OPTIONS] describe ADDR SYMBOL\n"
           "       rawrpc [OPTIONS] call ADDR pkg.Service/Method [JSON | -d "
           "@FILE | -d @-]\n"
           "       rawrpc [OPTIONS] health ADDR [SERVICE]\n"
           "options:\n"
           "  --proto FILE      descriptors from a .proto (protoc runs; "
           "repeatable)\n"
           "  -I DIR            where --proto looks for imports "
           "(repeatable)\n"
           "  --protoset FILE   descriptors from a FileDescriptorSet "
           "(repeatable)\n"
           "  -H KEY:VALUE      request metadata (repeatable)\n"
           "  --deadline SEC    the call's deadline\n"
           "  --emit-defaults   print fields that have their default value\n"
           "  --format json|text  the reply as JSON (default) or protobuf "
           "text\n"
           "  -d DATA           the request: JSON, @FILE or @- (standard "
           "input)\n"
           "  --emit-wire FILE  also write the request's bytes to FILE\n"
           "exit status: the call's status code (0 = OK), 2 for an error "
           "before the call\n";
    throw Exit{EXIT_LOCAL};
}

// ------------------------------------------------------------- the wire

// A channel on a private loop, and blocking calls over it.
class Conn {
  public:
    explicit Conn(const std::string &addr) : addr_(addr)
    {
        loop_ = ev_loop_new(EVFLAG_AUTO);
        rr_channel_opts o;
        rr_channel_opts_init(&o);
        o.connect_timeout = 5;
        if (loop_ == nullptr || rr_channel_new(&ch_, loop_, addr.c_str(), &o) !=
                                    RR_OK)
            die(EXIT_LOCAL, addr + ": not an address (" +
                                std::string(rr_last_error()) + ")");
    }
    ~Conn()
    {
        rr_channel_free(ch_);
        ev_run(loop_, EVRUN_NOWAIT);
        ev_loop_destroy(loop_);
    }
    Conn(const Conn &) = delete;
    Conn &operator=(const Conn &) = delete;

    struct Result {
        rr_status status = RR_STATUS_UNKNOWN;
        std::string message, reply;
        bool done = false;
    };

    // Calls method with the packed request; the reply's bytes come back.
    Result
    call(const std::string &method, const std::string &req,
         const Options &opt) const
    {
        Result r;
        std::vector<rr_metadata> md;
        for (const auto &h : opt.headers)
            md.push_back({h.first.c_str(),
                          reinterpret_cast<const uint8_t *>(h.second.data()),
                          h.second.size()});
        rr_call_opts co = {};
        co.struct_size = sizeof(co);
        co.timeout = opt.deadline;
        co.metadata = md.empty() ? nullptr : md.data();
        co.n_metadata = md.size();
        int rv = rr_channel_call_raw(
            ch_, method.c_str(),
            reinterpret_cast<const uint8_t *>(req.data()), req.size(), &co,
            done_cb, &r, nullptr);
        if (rv != RR_OK)
            die(EXIT_LOCAL, method + ": " + rr_strerror(rv) + ": " +
                                rr_last_error());
        while (!r.done)
            ev_run(loop_, EVRUN_ONCE);
        return r;
    }

    const std::string &
    addr() const
    {
        return addr_;
    }

    double deadline = 0; // --deadline, for reflection's calls too

  private:
    static void
    done_cb(const rr_result *res, void *arg)
    {
        auto *r = static_cast<Result *>(arg);
        r->done = true;
        r->status = res->status;
        r->message = res->message;
        if (res->reply_data != nullptr)
            r->reply.assign(reinterpret_cast<const char *>(res->reply_data),
                            res->reply_len);
    }

    std::string addr_;
    struct ev_loop *loop_ = nullptr;
    rr_channel *ch_ = nullptr;
};

[[noreturn]] void
die_status(const Conn::Result &r)
{
    std::cerr << rr_status_name(r.status) << ": " << r.message << "\n";
    throw Exit{static_cast<int>(r.status)};
}

// ----------------------------------------------------------- reflection

using ReflReq = Grpc__Reflection__V1__ServerReflectionRequest;
using ReflResp = Grpc__Reflection__V1__ServerReflectionResponse;

// One reflection round trip; nullptr with the status set when the server
// has no reflection (or the call failed).
std::unique_ptr<ReflResp, void (*)(ReflResp *)>
reflect(const Conn &c, const ReflReq &req, Conn::Result *res)
{
    std::string bytes(protobuf_c_message_get_packed_size(&req.base), '\0');
    protobuf_c_message_pack(&req.base, reinterpret_cast<uint8_t *>(&bytes[0]));
    Options none;
    none.deadline = c.deadline; // the user's, for every question too
    *res = c.call("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                  bytes, none);
    ReflResp *r = nullptr;
    if (res->status == RR_STATUS_OK)
        r = grpc__reflection__v1__server_reflection_response__unpack(
            nullptr, res->reply.size(),
            reinterpret_cast<const uint8_t *>(res->reply.data()));
    return {r, [](ReflResp *p) {
                if (p != nullptr)
                    grpc__reflection__v1__server_reflection_response__free_unpacked(
                        p, nullptr);
            }};
}

// A descriptor database that asks the server, file by file, as the pool
// needs them.
class ReflectionDb : public pb::DescriptorDatabase {
  public:
    explicit ReflectionDb(const Conn &c) : c_(c) {}

    bool
    FindFileByName(const std::string &name,
                   pb::FileDescriptorProto *out) override
    {
        if (known_.FindFileByName(name, out))
            return true;
        if (name.rfind("google/protobuf/", 0) == 0)
            return false; // the well-known types: libprotobuf's own
        std::string keep = why; // an import's absence is not the reason
        ReflReq req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
        req.message_request_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
        req.file_by_filename = const_cast<char *>(name.c_str());
        bool found = ask(req) && known_.FindFileByName(name, out);
        why = keep;
        return found;
    }

    bool
    FindFileContainingSymbol(const std::string &symbol,
                             pb::FileDescriptorProto *out) override
    {
        if (known_.FindFileContainingSymbol(symbol, out))
            return true;
        why.clear();
        ReflReq req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
        req.message_request_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
        req.file_containing_symbol = const_cast<char *>(symbol.c_str());
        return ask(req) && known_.FindFileContainingSymbol(symbol, out);
    }

    bool
    FindFileContainingExtension(const std::string &, int,
                                pb::FileDescriptorProto *) override
    {
        return false;
    }

    // Why the last question found nothing, for the user.
    std::string why;

  private:
    bool
    ask(const ReflReq &req)
    {
        Conn::Result res;
        auto r = reflect(c_, req, &res);
        if (r == nullptr) {
            why = std::string("the server has no reflection (") +
                  rr_status_name(res.status) + ": " + res.message +
                  "); give --proto or --protoset";
            if (res.status == RR_STATUS_UNAVAILABLE ||
                res.status == RR_STATUS_DEADLINE_EXCEEDED)
                die_status(res);
            return false;
        }
        // The answers are a oneof: a union in protobuf-c, told by its case.
        if (r->message_response_case !=
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE) {
            why = r->message_response_case ==
                          GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE
                      ? r->error_response->error_message
                      : "the server's reflection answered something else";
            return false;
        }
        const auto *fd = r->file_descriptor_response;
        for (size_t i = 0; fd != nullptr && i < fd->n_file_descriptor_proto;
             i++) {
            pb::FileDescriptorProto f;
            const auto &b = fd->file_descriptor_proto[i];
            if (!f.ParseFromArray(b.data, static_cast<int>(b.len)))
                die(EXIT_LOCAL, "the server's reflection sent a file "
                                "descriptor that does not parse");
            pb::FileDescriptorProto have;
            if (!known_.FindFileByName(f.name(), &have))
                known_.Add(f);
        }
        return true;
    }

    const Conn &c_;
    pb::SimpleDescriptorDatabase known_;
};

std::vector<std::string>
list_services(const Conn &c)
{
    ReflReq req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    req.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    req.list_services = const_cast<char *>("");
    Conn::Result res;
    auto r = reflect(c, req, &res);
    if (r == nullptr)
        die_status(res);
    std::set<std::string> names;
    if (r->message_response_case !=
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE)
        die(EXIT_LOCAL, "the server's reflection did not list its services");
    const auto *l = r->list_services_response;
    for (size_t i = 0; l != nullptr && i < l->n_service; i++)
        names.insert(l->service[i]->name);
    return {names.begin(), names.end()};
}

// ---------------------------------------------------------- descriptors

std::string
read_all(const std::string &path)
{
    if (path == "-")
        return {std::istreambuf_iterator<char>(std::cin), {}};
    struct stat st;
    if (stat(path.c_str(), &st) != 0)
        die(EXIT_LOCAL, path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        die(EXIT_LOCAL, path + ": not a regular file");
    std::ifstream in(path, std::ios::binary);
    std::string data{std::istreambuf_iterator<char>(in), {}};
    if (in.bad() || !in.is_open())
        die(EXIT_LOCAL, path + ": cannot be read");
    return data;
}

void
add_protoset(pb::SimpleDescriptorDatabase *db, const std::string &bytes,
             const std::string &what)
{
    pb::FileDescriptorSet set;
    if (!set.ParseFromString(bytes))
        die(EXIT_LOCAL, what + ": not a FileDescriptorSet");
    for (const auto &f : set.file()) {
        pb::FileDescriptorProto have;
        if (!db->FindFileByName(f.name(), &have))
            db->Add(f);
    }
}

// protoc makes the descriptor set of --proto files (imports included).
void
add_protos(pb::SimpleDescriptorDatabase *db, const Options &opt)
{
    char tmpl[] = "/tmp/rawrpc-protoset-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        die(EXIT_LOCAL, std::string("temporary file: ") + std::strerror(errno));
    close(fd);
    std::vector<std::string> args = {"protoc", "--include_imports",
                                     std::string("--descriptor_set_out=") +
                                         tmpl};
    for (const auto &i : opt.includes)
        args.push_back("-I" + i);
    for (const auto &p : opt.protos)
        args.push_back(p);
    std::string errs = std::string(tmpl) + ".err";
    pid_t pid = fork();
    if (pid == 0) {
        std::vector<char *> argv;
        for (auto &a : args)
            argv.push_back(&a[0]);
        argv.push_back(nullptr);
        if (freopen(errs.c_str(), "w", stderr) == nullptr)
            _exit(126);
        execvp("protoc", argv.data());
        std::perror("protoc");
        _exit(127);
    }
    int st = 0;
    bool ok = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
              WEXITSTATUS(st) == 0;
    std::string said = ok ? "" : read_all(errs);
    unlink(errs.c_str());
    if (!ok) {
        unlink(tmpl);
        die(EXIT_LOCAL, "protoc could not read the --proto files: " + said);
    }
    add_protoset(db, read_all(tmpl), "protoc's output");
    unlink(tmpl);
}

// The descriptors to use: files given, else the server's reflection; the
// well-known types always (libprotobuf has them compiled in).
class Descriptors {
  public:
    Descriptors(const Conn &c, const Options &opt)
        : refl_(c), wkt_(*pb::DescriptorPool::generated_pool())
    {
        bool given = !opt.protos.empty() || !opt.protosets.empty();
        for (const auto &s : opt.protosets)
            add_protoset(&files_, read_all(s), s);
        if (!opt.protos.empty())
            add_protos(&files_, opt);
        merged_ = std::make_unique<pb::MergedDescriptorDatabase>(
            given ? static_cast<pb::DescriptorDatabase *>(&files_)
                  : static_cast<pb::DescriptorDatabase *>(&refl_),
            &wkt_);
        pool_ = std::make_unique<pb::DescriptorPool>(merged_.get());
    }

    const pb::DescriptorPool &
    pool() const
    {
        return *pool_;
    }

    std::string
    why() const
    {
        return refl_.why.empty() ? "" : " (" + refl_.why + ")";
    }

  private:
    ReflectionDb refl_;
    pb::SimpleDescriptorDatabase files_;
    pb::DescriptorPoolDatabase wkt_;
    std::unique_ptr<pb::MergedDescriptorDatabase> merged_;
    std::unique_ptr<pb::DescriptorPool> pool_;
};

// --------------------------------------------------------------- commands

int
cmd_list(const Conn &c, const Options &opt, const std::vector<std::string> &a)
{
    if (a.empty()) {
        for (const auto &s : list_services(c))
            std::cout << s << "\n";
        return 0;
    }
    Descriptors d(c, opt);
    const pb::ServiceDescriptor *s = d.pool().FindServiceByName(a[0]);
    if (s == nullptr)
        die(EXIT_LOCAL, "no service " + a[0] + d.why());
    for (int i = 0; i < s->method_count(); i++)
        std::cout << s->method(i)->full_name() << "\n";
    return 0;
}

int
cmd_describe(const Conn &c, const Options &opt,
             const std::vector<std::string> &a)
{
    if (a.size() != 1)
        usage();
    Descriptors d(c, opt);
    const auto &p = d.pool();
    std::string name = a[0];
    if (const auto *m = p.FindMessageTypeByName(name))
        std::cout << name << " is a message:\n" << m->DebugString();
    else if (const auto *s = p.FindServiceByName(name))
        std::cout << name << " is a service:\n" << s->DebugString();
    else if (const auto *e = p.FindEnumTypeByName(name))
        std::cout << name << " is an enum:\n" << e->DebugString();
    else if (const auto *md = p.FindMethodByName(name))
        std::cout << name << " is a method:\n" << md->DebugString();
    else
        die(EXIT_LOCAL, "no symbol " + name + d.why());
    return 0;
}

// The request's JSON: an argument, -d JSON, -d @FILE or -d @-.
std::string
request_json(const Options &opt, const std::vector<std::string> &a)
{
    if (a.size() > 2 || (a.size() == 2 && !opt.data.empty()))
        usage();
    std::string d = a.size() == 2 ? a[1] : opt.data;
    if (d.empty())
        return "{}";
    if (d[0] == '@')
        return read_all(d.substr(1));
    return d;
}

int
cmd_call(const Conn &c, const Options &opt, const std::vector<std::string> &a)
{
    if (a.empty())
        usage();
    std::string full = a[0];
    if (!full.empty() && full[0] == '/')
        full = full.substr(1);
    size_t slash = full.rfind('/');
    if (slash == std::string::npos)
        die(EXIT_LOCAL, a[0] + ": give the method as pkg.Service/Method");
    std::string svc = full.substr(0, slash), name = full.substr(slash + 1);
    Descriptors d(c, opt);
    const pb::ServiceDescriptor *s = d.pool().FindServiceByName(svc);
    if (s == nullptr)
        die(EXIT_LOCAL, "no service " + svc + d.why());
    const pb::MethodDescriptor *m = s->FindMethodByName(name);
    if (m == nullptr)
        die(EXIT_LOCAL, "service " + svc + " has no method " + name);
    if (m->client_streaming() || m->server_streaming())
        die(EXIT_LOCAL, m->full_name() +
                            " is streaming, which rawrpc does not support yet");

    pb::DynamicMessageFactory factory(&d.pool());
    std::unique_ptr<pb::Message> req(
        factory.GetPrototype(m->input_type())->New());
    std::string json = request_json(opt, a);
    pb::util::JsonParseOptions jp;
    auto st = pb::util::JsonStringToMessage(json, req.get(), jp);
    if (!st.ok())
        die(EXIT_LOCAL, "the request is not a " + m->input_type()->full_name() +
                            " in JSON: " + std::string(st.message()));
    std::string bytes;
    if (!req->SerializeToString(&bytes))
        die(EXIT_LOCAL, "the request does not serialize");
    if (!opt.emit_wire.empty()) {
        std::ofstream w(opt.emit_wire, std::ios::binary);
        w << bytes;
        if (!w)
            die(EXIT_LOCAL, opt.emit_wire + ": cannot write");
    }
    Conn::Result r = c.call("/" + svc + "/" + name, bytes, opt);
    if (r.status != RR_STATUS_OK)
        die_status(r);
    std::unique_ptr<pb::Message> reply(
        factory.GetPrototype(m->output_type())->New());
    if (!reply->ParseFromString(r.reply))
        die(EXIT_LOCAL, "the reply does not parse as " +
                            m->output_type()->full_name());
    std::string out;
    if (opt.text) {
        pb::TextFormat::PrintToString(*reply, &out);
    } else {
        pb::util::JsonPrintOptions jo;
        jo.add_whitespace = true;
        jo.always_print_primitive_fields = opt.emit_defaults;
        auto ps = pb::util::MessageToJsonString(*reply, &out, jo);
        if (!ps.ok())
            die(EXIT_LOCAL, "the reply does not print as JSON: " +
                                std::string(ps.message()));
    }
    std::cout << out;
    if (!out.empty() && out.back() != '\n')
        std::cout << "\n";
    return 0;
}

int
cmd_health(const Conn &c, const Options &opt,
           const std::vector<std::string> &a)
{
    if (a.size() > 1)
        usage();
    Rawrpc__Health__V1__HealthCheckRequest req =
        RAWRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    std::string svc = a.empty() ? "" : a[0];
    req.service = const_cast<char *>(svc.c_str());
    std::string bytes(protobuf_c_message_get_packed_size(&req.base), '\0');
    protobuf_c_message_pack(&req.base, reinterpret_cast<uint8_t *>(&bytes[0]));
    Conn::Result r = c.call(rr_rawrpc__health__v1__health__check__method.full_name,
                            bytes, opt);
    if (r.status != RR_STATUS_OK)
        die_status(r);
    auto *h = rawrpc__health__v1__health_check_response__unpack(
        nullptr, r.reply.size(),
        reinterpret_cast<const uint8_t *>(r.reply.data()));
    if (h == nullptr)
        die(EXIT_LOCAL, "the health reply does not parse");
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &rawrpc__health__v1__health_check_response__serving_status__descriptor,
        h->status);
    std::cout << (v != nullptr ? v->name : "UNKNOWN") << "\n";
    bool serving =
        h->status == RAWRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rawrpc__health__v1__health_check_response__free_unpacked(h, nullptr);
    return serving ? 0 : 1;
}

} // namespace

static int
run(int argc, char **argv)
{
    Options opt;
    std::vector<std::string> pos;
    for (int i = 1; i < argc; i++) {
        std::string s = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc)
                usage();
            return argv[++i];
        };
        if (s == "--proto") {
            opt.protos.push_back(next());
        } else if (s == "-I") {
            opt.includes.push_back(next());
        } else if (s.rfind("-I", 0) == 0 && s.size() > 2) {
            opt.includes.push_back(s.substr(2));
        } else if (s == "--protoset") {
            opt.protosets.push_back(next());
        } else if (s == "-H") {
            std::string h = next();
            size_t colon = h.find(':');
            if (colon == std::string::npos || colon == 0)
                die(EXIT_LOCAL, "-H " + h + ": give KEY:VALUE");
            std::string v = h.substr(colon + 1);
            if (!v.empty() && v[0] == ' ')
                v = v.substr(1);
            opt.headers.emplace_back(h.substr(0, colon), v);
        } else if (s == "--deadline") {
            char *end = nullptr;
            std::string v = next();
            opt.deadline = std::strtod(v.c_str(), &end);
            if (end == v.c_str() || *end != '\0' || !(opt.deadline > 0))
                die(EXIT_LOCAL, "--deadline " + v + ": give seconds");
        } else if (s == "--emit-defaults") {
            opt.emit_defaults = true;
        } else if (s == "--format") {
            std::string f = next();
            if (f != "json" && f != "text")
                die(EXIT_LOCAL, "--format " + f + ": json or text");
            opt.text = f == "text";
        } else if (s == "-d") {
            opt.data = next();
        } else if (s == "--emit-wire") {
            opt.emit_wire = next();
        } else if (s == "-h" || s == "--help") {
            usage();
        } else if (s.size() > 1 && s[0] == '-' && pos.size() < 3) {
            die(EXIT_LOCAL, "unknown option " + s);
        } else {
            pos.push_back(s);
        }
    }
    if (pos.size() < 2)
        usage();
    rr_log_set(nullptr, nullptr, RR_LOG_OFF); // the errors are ours to say
    if (const char *env = std::getenv("RAWRPC_LOG")) {
        rr_log_level l;
        if (rr_log_level_parse(env, &l) == RR_OK)
            rr_log_set(nullptr, nullptr, l);
    }
    std::string cmd = pos[0];
    Conn c(pos[1]);
    c.deadline = opt.deadline;
    std::vector<std::string> rest(pos.begin() + 2, pos.end());
    if (cmd == "list")
        return cmd_list(c, opt, rest);
    if (cmd == "describe")
        return cmd_describe(c, opt, rest);
    if (cmd == "call")
        return cmd_call(c, opt, rest);
    if (cmd == "health")
        return cmd_health(c, opt, rest);
    usage();
}

int
main(int argc, char **argv)
{
    try {
        return run(argc, argv);
    } catch (const Exit &e) {
        return e.code;
    }
}

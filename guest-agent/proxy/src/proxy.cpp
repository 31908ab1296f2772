// GCC 12 reports -Wnull-dereference inside Boost.Asio's scheduler once it is inlined
// into coroutines (a false positive in the library, not in this file).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "cordon/proxy/proxy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <list>

#include "cordon/error.hpp"
#include "cordon/log.hpp"
#include "cordon/proxy/error_hints.hpp"
#include "cordon/proxy/gojson.hpp"
#include "cordon/proxy/http.hpp"
#include "cordon/unique_fd.hpp"

namespace cordon::policy {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;

namespace {

constexpr const char* kProxyLog = "policy-proxy";

struct Session;

// Lets one coroutine wait for another that was spawned beside it.
struct Join {
    explicit Join(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    bool done = false;
    void finish() {
        done = true;
        timer.cancel();
    }
    awaitable<void> wait() {
        while (!done) {
            timer.expires_at(asio::steady_timer::time_point::max());
            error_code ec;
            co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
        }
    }
};

std::string pct_encode_path(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string o;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == ':' || c == '@') {
            o.push_back(ch);
        } else {
            o.push_back('%');
            o.push_back(hex[c >> 4]);
            o.push_back(hex[c & 15]);
        }
    }
    return o;
}

}  // namespace

struct PolicyProxy::Core {
    Core(asio::io_context& i, ProxyOptions o, PolicyConfig c, AuditSink& a)
        : io(i), opt(std::move(o)), policy(std::move(c)), audit(a) {}
    asio::io_context& io;
    ProxyOptions opt;
    Policy policy;
    AuditSink& audit;
    ProxyStats stats;
    std::vector<std::unique_ptr<stream::acceptor>> acceptors;
    std::vector<std::string> bound_paths;
    std::list<std::weak_ptr<Session>> sessions;
    std::uint64_t next_id = 0;
    bool stopped = false;
    std::unique_ptr<asio::steady_timer> flush_timer;
};

namespace {

// The dockerd API path that answers a lookup.
std::string lookup_path(const LookupRequest& r) {
    switch (r.kind) {
    case LookupRequest::Kind::image:
        return "/v1.41/images/" + pct_encode_path(r.name) + "/json";
    case LookupRequest::Kind::volume:
        return "/v1.41/volumes/" + pct_encode_path(r.name);
    case LookupRequest::Kind::container:
        return "/v1.41/containers/" + pct_encode_path(r.name) + "/json";
    case LookupRequest::Kind::network:
        break;
    }
    return "/v1.41/networks/" + pct_encode_path(r.name);
}

// Records dockerd's answer (status 200 with its JSON, or 404) to a lookup in `out`; false
// when the answer is another status or not what dockerd writes.
bool record_lookup(const LookupRequest& r, int status, const std::string& body, Lookups& out) {
    if (status != 200 && status != 404)
        return false;
    gojson::Value v;
    if (status == 200) {
        try {
            gojson::Limits lim;
            lim.refuse_exact_duplicates = false;
            v = gojson::parse(body, lim);
        } catch (const gojson::ParseError&) {
            return false;
        }
    }
    const bool image = r.kind == LookupRequest::Kind::image;
    const bool volume = r.kind == LookupRequest::Kind::volume;
    const bool container = r.kind == LookupRequest::Kind::container;
    auto str = [&](const char* name) -> std::string {
        for (const auto& [k, val] : v.members)
            if (k == name && val.is_string())
                return val.text;
        return {};
    };
    if (container) {
        ContainerInfo info;
        info.found = status == 200;
        for (const auto& [k, val] : v.members) {
            if (k != "Mounts" || val.is_null())
                continue;
            if (!val.is_array())
                return false;
            for (const auto& item : val.items) {
                if (!item.is_object())
                    return false;
                ContainerMount m;
                for (const auto& [mk, mv] : item.members) {
                    if (!mv.is_string())
                        continue;
                    if (mk == "Type")
                        m.type = mv.text;
                    else if (mk == "Source")
                        m.source = mv.text;
                    else if (mk == "Name")
                        m.name = mv.text;
                    else if (mk == "Driver")
                        m.driver = mv.text;
                }
                info.mounts.push_back(std::move(m));
            }
        }
        out.containers[r.name] = std::move(info);
    } else if (image) {
        ImageInfo info;
        info.found = status == 200;
        info.id = str("Id");
        for (const auto& [k, val] : v.members) {
            if (k == "RepoDigests" && val.is_array())
                for (const auto& item : val.items)
                    if (item.is_string())
                        info.repo_digests.push_back(item.text);
            if (k == "RootFS" && val.is_object())
                for (const auto& [rk, rv] : val.members)
                    if (rk == "Layers" && rv.is_array())
                        for (const auto& layer : rv.items)
                            if (layer.is_string())
                                info.layers.push_back(layer.text);
        }
        if (info.found && info.id.empty())
            return false;
        out.images[r.name] = std::move(info);
    } else if (volume) {
        VolumeInfo info;
        info.found = status == 200;
        info.driver = str("Driver");
        for (const auto& [k, val] : v.members) {
            if (k != "Options" || val.is_null())
                continue;
            if (!val.is_object())
                return false;
            for (const auto& [ok, ov] : val.members) {
                if (!ov.is_string() && !ov.is_null())
                    return false;
                info.options.emplace_back(ok, ov.text);
            }
        }
        out.volumes[r.name] = std::move(info);
    } else {
        NetworkInfo info;
        info.found = status == 200;
        info.id = str("Id");
        info.name = str("Name");
        info.driver = str("Driver");
        out.networks[r.name] = std::move(info);
    }
    return true;
}

// A read buffer left uninitialised: the kernel commits its pages only as reads fill
// them, so an idle or ping-only connection costs a page, not 256 KiB.
class Scratch {
  public:
    explicit Scratch(std::size_t n) : p_(new char[n]), n_(n) {}
    char* data() { return p_.get(); }
    std::size_t size() const { return n_; }

  private:
    std::unique_ptr<char[]> p_;
    std::size_t n_;
};

inline asio::mutable_buffer buf_of(Scratch& s) {
    return asio::buffer(s.data(), s.size());
}

// Bodies this large (or the rest of a chunk this large) are moved with splice(2) through
// a pipe once the policy has decided: the kernel hands page references from one socket
// to the other, nothing is copied through user space. Smaller ones go through the read
// buffer (fewer system calls for small pieces).
constexpr std::uint64_t kSpliceMin = 64 * 1024;
constexpr std::size_t kAfterSplice = 4096;

// One direction's pipe for splice(2), created on first use (2 descriptors).
struct SplicePipe {
    UniqueFd r, w;
    std::size_t capacity = 0;
    bool failed = false;  // no pipe (descriptor limit): fall back to copying
    bool ready() {
        if (r || failed)
            return !failed;
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
            failed = true;
            return false;
        }
        r.reset(fds[0]);
        w.reset(fds[1]);
        int got = ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
        if (got <= 0)
            got = ::fcntl(fds[1], F_GETPIPE_SZ);
        capacity = got > 0 ? static_cast<std::size_t>(got) : 65536;
        return true;
    }
};

enum class Outcome { next, close, tunneled, upstream_gone };

// What a response may turn into: a tunnel after a 101 (the request asked for an upgrade
// on a route that may upgrade), a tunnel after dockerd's 200 raw-stream hijack head (a
// hijack route, the request forwarded without Upgrade), and whether the client is watched
// while a streamed body is relayed.
struct Relay {
    bool upgrade = false;
    bool hijack = false;
    bool watch = false;
};
enum class BodyRead { ok, too_big, bad, eof };

struct Session : std::enable_shared_from_this<Session> {
    Session(std::shared_ptr<PolicyProxy::Core> c, stream::socket s, Role r)
        : core(std::move(c)),
          client(std::move(s)),
          upstream(core->io),
          role(r),
          id(++core->next_id),
          cscratch(core->opt.io_buffer),
          uscratch(core->opt.io_buffer) {}

    std::shared_ptr<PolicyProxy::Core> core;
    stream::socket client;
    stream::socket upstream;
    bool upstream_open = false;
    Role role;
    std::uint64_t id;
    std::string cbuf, ubuf;
    Scratch cscratch, uscratch;
    SplicePipe to_upstream_pipe, to_client_pipe;
    bool splice_ok(SplicePipe& p) { return core->opt.splice_bodies && p.ready(); }
    bool pump_ok = true;

    // Moves exactly `n` bytes from `from` to `to` with splice(2) through `pipe`, waiting
    // for readiness on the event loop (the sockets are non-blocking). False on EOF or an
    // error (the caller closes the connection; the pipe may then hold bytes, which die
    // with the session).
    awaitable<bool> splice_bytes(stream::socket& from, stream::socket& to, SplicePipe& pipe,
                                 std::uint64_t n) {
        std::size_t held = 0;
        const int in = from.native_handle(), out = to.native_handle();
        while (n > 0 || held > 0) {
            bool progress = false;
            if (n > 0 && held < pipe.capacity) {
                std::size_t want =
                    static_cast<std::size_t>(std::min<std::uint64_t>(n, pipe.capacity - held));
                ssize_t r = ::splice(in, nullptr, pipe.w.get(), nullptr, want,
                                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (r == 0)
                    co_return false;  // EOF inside the body
                if (r > 0) {
                    held += static_cast<std::size_t>(r);
                    n -= static_cast<std::uint64_t>(r);
                    progress = true;
                } else if (errno != EAGAIN && errno != EINTR) {
                    co_return false;
                }
            }
            if (held > 0) {
                ssize_t w = ::splice(pipe.r.get(), nullptr, out, nullptr, held,
                                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (w > 0) {
                    held -= static_cast<std::size_t>(w);
                    progress = true;
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    co_return false;
                }
            }
            if (progress)
                continue;
            // Bytes in the pipe go out before more are read, so a pause of the sender
            // never holds back what already arrived (logs -f, events).
            error_code ec;
            if (held > 0)
                co_await to.async_wait(stream::socket::wait_write,
                                       asio::redirect_error(use_awaitable, ec));
            else
                co_await from.async_wait(stream::socket::wait_read,
                                         asio::redirect_error(use_awaitable, ec));
            if (ec)
                co_return false;
        }
        co_return true;
    }

    void close_all() {
        error_code ec;
        client.close(ec);
        upstream.close(ec);
    }

    void audit(const http::RequestHead& h, const Decision& d, const char* decision) {
        AuditEntry e;
        e.connection = id;
        e.role = role_name(role);
        e.method = h.method;
        e.target = h.target;
        e.operation = d.route.operation;
        e.decision = decision;
        e.rule = d.rule;
        e.message = d.message;
        core->audit.record(std::move(e));
    }

    awaitable<bool> fill(stream::socket& s, std::string& buf, Scratch& scratch) {
        error_code ec;
        std::size_t n =
            co_await s.async_read_some(buf_of(scratch), asio::redirect_error(use_awaitable, ec));
        if (ec)
            co_return false;
        buf.append(scratch.data(), n);
        co_return true;
    }

    awaitable<bool> send(stream::socket& s, std::string_view data) {
        error_code ec;
        co_await asio::async_write(s, asio::buffer(data.data(), data.size()),
                                   asio::redirect_error(use_awaitable, ec));
        co_return !ec;
    }

    // Answers without forwarding, then closes. The client's unread body (if any) is
    // drained for a moment so it can read the answer instead of failing a write.
    awaitable<void> answer_and_close(std::string response, bool drain) {
        co_await send(client, response);
        error_code ec;
        client.shutdown(stream::socket::shutdown_send, ec);
        if (!drain)
            co_return;
        asio::steady_timer t(client.get_executor());
        t.expires_after(std::chrono::seconds(1));
        t.async_wait([self = shared_from_this()](error_code e) {
            if (!e) {
                error_code ig;
                self->client.close(ig);
            }
        });
        std::size_t total = 0;
        while (total < (4u << 20)) {
            std::size_t n = co_await client.async_read_some(
                buf_of(cscratch), asio::redirect_error(use_awaitable, ec));
            if (ec)
                break;
            total += n;
        }
        t.cancel();
    }

    // Every refusal names a rule and says why, in the answer and in the audit log.
    static Decision named_refusal(Decision d) {
        if (d.verdict != Verdict::deny || d.rule.empty() || d.rule.rfind("allow", 0) == 0)
            d.rule = d.verdict == Verdict::need_lookup ? "lookup" : "policy";
        if (d.message.empty())
            d.message = d.rule == "lookup"
                            ? "dockerd's answers did not settle the check of " + d.route.operation
                            : "the policy could not allow " + d.route.operation;
        d.verdict = Verdict::deny;
        return d;
    }

    awaitable<void> refuse(const http::RequestHead& h, const Decision& decided, bool body_pending) {
        ++core->stats.denied;
        const Decision d = named_refusal(decided);
        audit(h, d, "deny");
        log::info(kProxyLog, "refused {} {} ({}): {}", h.method, h.target.substr(0, 200), d.rule,
                  d.message);
        co_await answer_and_close(http::json_response(403, "Forbidden", denial_body(d), true),
                                  body_pending);
    }

    awaitable<void> bad_request(int status, const std::string& why, const http::RequestHead& h) {
        ++core->stats.bad_requests;
        Decision d;
        d.rule = "http.malformed";
        d.message = why;
        audit(h, d, "error");
        nlohmann::json j;
        j["message"] = "cordon: malformed HTTP request refused by the Docker socket policy: " + why;
        const char* reason = status == 431   ? "Request Header Fields Too Large"
                             : status == 417 ? "Expectation Failed"
                             : status == 501 ? "Not Implemented"
                             : status == 505 ? "HTTP Version Not Supported"
                                             : "Bad Request";
        co_await answer_and_close(http::json_response(status, reason, j.dump() + "\n", true), true);
    }

    // Reads a whole request body into `out` (decoding chunks), at most `max` bytes.
    awaitable<BodyRead> read_body(const http::RequestHead& h, std::string& out, std::size_t max) {
        if (h.content_length) {
            std::uint64_t n = *h.content_length;
            if (n > max)
                co_return BodyRead::too_big;
            while (cbuf.size() < n)
                if (!co_await fill(client, cbuf, cscratch))
                    co_return BodyRead::eof;
            out.assign(cbuf, 0, static_cast<std::size_t>(n));
            cbuf.erase(0, static_cast<std::size_t>(n));
            co_return BodyRead::ok;
        }
        if (!h.chunked)
            co_return BodyRead::ok;
        http::ChunkedDecoder dec;
        std::vector<std::string_view> spans;
        while (true) {
            spans.clear();
            std::size_t used = dec.feed(cbuf, spans);
            for (auto s : spans) out.append(s);
            cbuf.erase(0, used);
            if (out.size() > max)
                co_return BodyRead::too_big;
            if (dec.failed())
                co_return BodyRead::bad;
            if (dec.done())
                co_return BodyRead::ok;
            if (!co_await fill(client, cbuf, cscratch))
                co_return BodyRead::eof;
        }
    }

    // Reads a body the proxy must hold whole (inspected, or read and dropped), refusing
    // one above max_inspect_body. False when the connection is done (refused, malformed,
    // client gone).
    awaitable<bool> take_body(const http::RequestHead& h, const Decision& d, std::string& body) {
        std::size_t max = core->policy.config().max_inspect_body;
        Decision too_big = d;
        too_big.verdict = Verdict::deny;
        too_big.rule = "body-size";
        too_big.message = "the request body is larger than the " + std::to_string(max) +
                          "-byte limit for bodies the proxy must read before forwarding";
        if (h.content_length && *h.content_length > max) {
            co_await refuse(h, too_big, true);
            co_return false;
        }
        if (h.expect_continue && h.has_body() &&
            !co_await send(client, "HTTP/1.1 100 Continue\r\n\r\n"))
            co_return false;
        auto r = co_await read_body(h, body, max);
        if (r == BodyRead::too_big) {
            co_await refuse(h, too_big, true);
            co_return false;
        }
        if (r == BodyRead::bad) {
            co_await bad_request(400, "malformed chunked body", h);
            co_return false;
        }
        co_return r == BodyRead::ok;
    }

    // One GET to dockerd on a fresh connection (image/network lookups for the policy).
    awaitable<bool> upstream_get(const std::string& path, int& status, std::string& body) {
        stream::socket s(core->io);
        error_code ec;
        co_await s.async_connect(stream::endpoint(core->opt.upstream_path),
                                 asio::redirect_error(use_awaitable, ec));
        if (ec)
            co_return false;
        std::string req = "GET " + path + " HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n";
        if (!co_await send(s, req))
            co_return false;
        // Read by the response's framing (dockerd may keep the connection open), at
        // most 8 MiB, and give up after 10 seconds.
        asio::steady_timer deadline(s.get_executor());
        deadline.expires_after(std::chrono::seconds(10));
        deadline.async_wait([&s](error_code e) {
            if (!e) {
                error_code ig;
                s.close(ig);
            }
        });
        struct Cancel {
            asio::steady_timer& t;
            ~Cancel() { t.cancel(); }
        } cancel{deadline};
        std::string buf;
        Scratch scratch(16384);
        http::ResponseHead rh;
        std::string err;
        while (true) {
            auto st = http::parse_response_head(buf, rh, err);
            if (st == http::Parse::done)
                break;
            if (st == http::Parse::error)
                co_return false;
            if (!co_await fill(s, buf, scratch))
                co_return false;
        }
        status = rh.status;
        buf.erase(0, rh.size);
        if (rh.chunked) {
            http::ChunkedDecoder dec(true);
            std::vector<std::string_view> spans;
            std::string_view in = buf;
            while (true) {
                spans.clear();
                std::size_t used = dec.feed(in, spans);
                for (auto sp : spans) body.append(sp);
                if (dec.done())
                    break;
                if (dec.failed() || body.size() > (8u << 20))
                    co_return false;
                (void)used;
                buf.clear();
                if (!co_await fill(s, buf, scratch))
                    co_return false;
                in = buf;
            }
        } else if (rh.content_length) {
            if (*rh.content_length > (8u << 20))
                co_return false;
            while (buf.size() < *rh.content_length)
                if (!co_await fill(s, buf, scratch))
                    co_return false;
            body.assign(buf, 0, static_cast<std::size_t>(*rh.content_length));
        } else {
            while (buf.size() < (8u << 20) && co_await fill(s, buf, scratch)) {
            }
            body = std::move(buf);
        }
        co_return true;
    }

    awaitable<bool> lookup(const std::vector<LookupRequest>& reqs, Lookups& out) {
        for (const auto& r : reqs) {
            int status = 0;
            std::string body;
            if (!co_await upstream_get(lookup_path(r), status, body))
                co_return false;
            if (!record_lookup(r, status, body, out))
                co_return false;
        }
        co_return true;
    }

    static awaitable<void> pump_body(std::shared_ptr<Session> self, http::RequestHead h,
                                     std::shared_ptr<Join> join) {
        bool ok = co_await self->pump(h);
        self->pump_ok = ok;
        if (!ok)
            self->close_all();
        join->finish();
    }

    // Streams a request body to dockerd as it arrives (re-framed).
    awaitable<bool> pump(const http::RequestHead& h) {
        error_code ec;
        if (h.chunked) {
            // Decodes from cbuf first, then straight from each read (no extra copy); bytes
            // after the body's end belong to the next request and go back to cbuf.
            http::ChunkedDecoder dec;
            std::vector<std::string_view> spans;
            std::vector<asio::const_buffer> bufs;
            std::vector<std::string> sizes;
            std::string leftover = std::move(cbuf);
            cbuf.clear();
            std::string_view input = leftover;
            bool crlf_owed = false;  // a spliced chunk's closing CRLF, sent with what follows
            std::string big_size;
            while (true) {
                spans.clear();
                std::size_t used = dec.feed(input, spans);
                bufs.clear();
                sizes.clear();
                if (crlf_owed)
                    bufs.push_back(asio::buffer("\r\n", 2));
                crlf_owed = false;
                for (auto sp : spans)
                    if (!sp.empty())
                        sizes.push_back(fmt::format("{:x}\r\n", sp.size()));
                std::size_t k = 0;
                for (auto sp : spans) {
                    if (sp.empty())
                        continue;
                    bufs.push_back(asio::buffer(sizes[k++]));
                    bufs.push_back(asio::buffer(sp.data(), sp.size()));
                    bufs.push_back(asio::buffer("\r\n", 2));
                }
                if (dec.done())
                    bufs.push_back(asio::buffer("0\r\n\r\n", 5));
                // The rest of a large chunk is spliced: its size line goes out now.
                const std::uint64_t big = dec.failed() ? 0 : dec.data_remaining();
                const bool splice_now = big >= kSpliceMin && splice_ok(to_upstream_pipe);
                if (splice_now) {
                    big_size = fmt::format("{:x}\r\n", big);
                    bufs.push_back(asio::buffer(big_size));
                }
                if (!bufs.empty()) {
                    co_await asio::async_write(upstream, bufs,
                                               asio::redirect_error(use_awaitable, ec));
                    if (ec)
                        co_return false;
                }
                if (dec.done()) {
                    cbuf.append(input.substr(used));
                    co_return true;
                }
                if (dec.failed()) {
                    log::info(kProxyLog, "connection {}: bad chunked body: {}", id, dec.error());
                    co_return false;
                }
                if (splice_now) {
                    if (!co_await splice_bytes(client, upstream, to_upstream_pipe, big))
                        co_return false;
                    dec.skip_data(big);
                    crlf_owed = true;
                }
                // After a spliced chunk, read little: the next size line, and the next
                // large chunk's data mostly spliced rather than copied.
                std::size_t n = co_await client.async_read_some(
                    asio::buffer(cscratch.data(), splice_now ? kAfterSplice : cscratch.size()),
                    asio::redirect_error(use_awaitable, ec));
                if (ec)
                    co_return false;
                input = std::string_view(cscratch.data(), n);
            }
        }
        std::uint64_t rem = h.content_length.value_or(0);
        std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(rem, cbuf.size()));
        if (take) {
            if (!co_await send(upstream, std::string_view(cbuf).substr(0, take)))
                co_return false;
            cbuf.erase(0, take);
            rem -= take;
        }
        if (rem >= kSpliceMin && splice_ok(to_upstream_pipe))
            co_return co_await splice_bytes(client, upstream, to_upstream_pipe, rem);
        while (rem) {
            std::size_t want =
                static_cast<std::size_t>(std::min<std::uint64_t>(rem, cscratch.size()));
            std::size_t n = co_await client.async_read_some(
                asio::buffer(cscratch.data(), want), asio::redirect_error(use_awaitable, ec));
            if (ec)
                co_return false;
            if (!co_await send(upstream, std::string_view(cscratch.data(), n)))
                co_return false;
            rem -= n;
        }
        co_return true;
    }

    static awaitable<void> pipe_half(std::shared_ptr<Session> self, bool to_upstream,
                                     std::shared_ptr<Join> join) {
        co_await self->pipe(to_upstream);
        join->finish();
    }

    // One direction of a tunnel: pending bytes first, then everything until EOF, then a
    // half-close of the other side (so `docker attach` sees stdin end).
    awaitable<void> pipe(bool to_upstream) {
        stream::socket& from = to_upstream ? client : upstream;
        stream::socket& to = to_upstream ? upstream : client;
        std::string& pending = to_upstream ? cbuf : ubuf;
        Scratch& scratch = to_upstream ? cscratch : uscratch;
        error_code ec;
        if (!pending.empty()) {
            bool ok = co_await send(to, pending);
            pending.clear();
            if (!ok)
                co_return;
        }
        while (true) {
            std::size_t n = co_await from.async_read_some(buf_of(scratch),
                                                          asio::redirect_error(use_awaitable, ec));
            if (ec)
                break;
            if (!co_await send(to, std::string_view(scratch.data(), n)))
                break;
        }
        to.shutdown(stream::socket::shutdown_send, ec);
    }

    awaitable<void> tunnel() {
        ++core->stats.tunnels;
        auto join = std::make_shared<Join>(client.get_executor());
        asio::co_spawn(client.get_executor(), pipe_half(shared_from_this(), true, join),
                       asio::detached);
        co_await pipe(false);
        co_await join->wait();
    }

    // While a streamed response (chunked or unframed: logs -f, events, build output) is
    // relayed, the client is watched: when it goes away (EOF or error, e.g. Ctrl-C on
    // `docker events`) the upstream connection is shut down, so the relay ends now rather
    // than at dockerd's next event, and no connection lingers on either side. Bytes the
    // client pipelines meanwhile are kept in cbuf for the main loop.
    struct Watch {
        explicit Watch(asio::any_io_executor ex) : join(ex) {}
        Join join;
        bool stop = false;
    };

    static awaitable<void> watch_client(std::shared_ptr<Session> self, std::shared_ptr<Watch> w) {
        std::array<char, 4096> tmp;
        while (!w->stop) {
            error_code ec;
            std::size_t n = co_await self->client.async_read_some(
                asio::buffer(tmp), asio::redirect_error(use_awaitable, ec));
            if (!ec)
                self->cbuf.append(tmp.data(), n);
            if (w->stop)
                break;
            if (ec) {
                log::debug(kProxyLog, "connection {}: the client left during a stream", self->id);
                error_code ig;
                self->upstream.shutdown(stream::socket::shutdown_both, ig);
                break;
            }
            if (self->cbuf.size() > self->core->opt.max_head)
                break;  // enough pipelined: the main loop reads the rest
        }
        w->join.finish();
    }

    std::shared_ptr<Watch> start_watch(bool allowed) {
        if (!allowed)
            return nullptr;
        auto w = std::make_shared<Watch>(client.get_executor());
        asio::co_spawn(client.get_executor(), watch_client(shared_from_this(), w), asio::detached);
        return w;
    }

    awaitable<void> stop_watch(const std::shared_ptr<Watch>& w) {
        if (!w)
            co_return;
        w->stop = true;
        if (!w->join.done) {
            error_code ig;
            client.cancel(ig);  // only the watch's read is pending on the client now
        }
        co_await w->join.wait();
    }

    awaitable<Outcome> relay_response(const http::RequestHead& req, Relay how) {
        auto w = std::shared_ptr<Watch>();
        Outcome o = co_await relay_response_inner(req, how, w);
        co_await stop_watch(w);
        co_return o;
    }

    awaitable<Outcome> relay_response_inner(const http::RequestHead& req, Relay how,
                                            std::shared_ptr<Watch>& watch) {
        const bool may_watch = how.watch;
        error_code ec;
        bool interim_sent = false;
        while (true) {
            http::ResponseHead rh;
            std::string err;
            while (true) {
                auto st = http::parse_response_head(ubuf, rh, err);
                if (st == http::Parse::done)
                    break;
                if (st == http::Parse::error) {
                    log::warn(kProxyLog, "connection {}: {}", id, err);
                    co_return Outcome::close;
                }
                if (!co_await fill(upstream, ubuf, uscratch)) {
                    // Nothing of the answer arrived: the caller may retry on a new connection.
                    if (ubuf.empty() && !interim_sent)
                        co_return Outcome::upstream_gone;
                    co_return Outcome::close;
                }
            }
            if (rh.status == 101) {
                if (!how.upgrade) {
                    log::warn(
                        kProxyLog,
                        "connection {}: dockerd answered 101 to a request that may not upgrade",
                        id);
                    co_return Outcome::close;
                }
                if (!co_await send(client, std::string_view(ubuf).substr(0, rh.size)))
                    co_return Outcome::close;
                ubuf.erase(0, rh.size);
                co_await tunnel();
                co_return Outcome::tunneled;
            }
            if (how.hijack && http::is_hijack_head(rh)) {
                // dockerd's 200-then-hijack (attach, exec start without Upgrade): from
                // here on raw bytes both ways, as after a 101.
                if (!co_await send(client, std::string_view(ubuf).substr(0, rh.size)))
                    co_return Outcome::close;
                ubuf.erase(0, rh.size);
                ++core->stats.hijacks;
                co_await tunnel();
                co_return Outcome::tunneled;
            }
            if (rh.status >= 100 && rh.status < 200) {
                interim_sent = true;
                if (!co_await send(client, std::string_view(ubuf).substr(0, rh.size)))
                    co_return Outcome::close;
                ubuf.erase(0, rh.size);
                continue;
            }
            Outcome done = rh.close ? Outcome::close : Outcome::next;
            if (req.method == "HEAD" || rh.status == 204 || rh.status == 304) {
                if (!co_await send(client, std::string_view(ubuf).substr(0, rh.size)))
                    co_return Outcome::close;
                ubuf.erase(0, rh.size);
                co_return done;
            }
            if (rh.chunked) {
                watch = start_watch(may_watch);
                http::ChunkedDecoder dec(true);
                std::vector<std::string_view> spans;
                std::size_t used = dec.feed(std::string_view(ubuf).substr(rh.size), spans);
                if (!co_await send(client, std::string_view(ubuf).substr(0, rh.size + used)))
                    co_return Outcome::close;
                ubuf.erase(0, rh.size + used);
                while (!dec.done()) {
                    if (dec.failed())
                        co_return Outcome::close;
                    // The rest of a large chunk goes over unchanged, spliced.
                    bool spliced = false;
                    if (std::uint64_t big = dec.data_remaining();
                        big >= kSpliceMin && splice_ok(to_client_pipe)) {
                        if (!co_await splice_bytes(upstream, client, to_client_pipe, big))
                            co_return Outcome::close;
                        dec.skip_data(big);
                        spliced = true;
                    }
                    std::size_t n = co_await upstream.async_read_some(
                        asio::buffer(uscratch.data(), spliced ? kAfterSplice : uscratch.size()),
                        asio::redirect_error(use_awaitable, ec));
                    if (ec)
                        co_return Outcome::close;
                    spans.clear();
                    std::string_view got(uscratch.data(), n);
                    used = dec.feed(got, spans);
                    if (!co_await send(client, got.substr(0, used)))
                        co_return Outcome::close;
                    if (used < n)
                        ubuf.append(got.substr(used));
                }
                co_return done;
            }
            if (rh.status >= 400 && rh.content_length &&
                *rh.content_length <= kMaxHintedErrorBody) {
                // A short error, read whole: a hint names the setting that fixes it
                // (an unknown CA: extra_ca_certs; see error_hints.hpp).
                const auto body_size = static_cast<std::size_t>(*rh.content_length);
                while (ubuf.size() < rh.size + body_size)
                    if (!co_await fill(upstream, ubuf, uscratch))
                        co_return Outcome::close;
                const auto hinted =
                    add_setting_hint(std::string_view(ubuf).substr(rh.size, body_size));
                bool sent = false;
                if (hinted) {
                    const std::string answer =
                        http::json_response(rh.status, "Error", *hinted, rh.close);
                    sent = co_await send(client, answer);
                } else
                    sent = co_await send(client,
                                         std::string_view(ubuf).substr(0, rh.size + body_size));
                ubuf.erase(0, rh.size + body_size);
                co_return sent ? done : Outcome::close;
            }
            if (rh.content_length) {
                std::uint64_t rem = *rh.content_length;
                std::size_t avail =
                    static_cast<std::size_t>(std::min<std::uint64_t>(rem, ubuf.size() - rh.size));
                if (!co_await send(client, std::string_view(ubuf).substr(0, rh.size + avail)))
                    co_return Outcome::close;
                ubuf.erase(0, rh.size + avail);
                rem -= avail;
                if (rem >= kSpliceMin && splice_ok(to_client_pipe))
                    co_return co_await splice_bytes(upstream, client, to_client_pipe, rem)
                        ? done
                        : Outcome::close;
                while (rem) {
                    std::size_t want =
                        static_cast<std::size_t>(std::min<std::uint64_t>(rem, uscratch.size()));
                    std::size_t n =
                        co_await upstream.async_read_some(asio::buffer(uscratch.data(), want),
                                                          asio::redirect_error(use_awaitable, ec));
                    if (ec)
                        co_return Outcome::close;
                    if (!co_await send(client, std::string_view(uscratch.data(), n)))
                        co_return Outcome::close;
                    rem -= n;
                }
                co_return done;
            }
            // No framing: the body runs until dockerd closes.
            watch = start_watch(may_watch);
            if (!co_await send(client, ubuf))
                co_return Outcome::close;
            ubuf.clear();
            while (true) {
                std::size_t n = co_await upstream.async_read_some(
                    buf_of(uscratch), asio::redirect_error(use_awaitable, ec));
                if (ec)
                    break;
                if (!co_await send(client, std::string_view(uscratch.data(), n)))
                    break;
            }
            co_return Outcome::close;
        }
    }

    // (Re)connects to dockerd; on failure answers 502 and returns false.
    awaitable<bool> connect_upstream() {
        error_code ec;
        upstream.close(ec);
        ubuf.clear();
        upstream_open = false;
        co_await upstream.async_connect(stream::endpoint(core->opt.upstream_path),
                                        asio::redirect_error(use_awaitable, ec));
        if (ec) {
            log::error(kProxyLog, "cannot reach dockerd at {}: {}", core->opt.upstream_path,
                       ec.message());
            nlohmann::json j;
            j["message"] =
                "cordon: cannot reach dockerd (" + ec.message() + "); is the engine running?";
            co_await answer_and_close(
                http::json_response(502, "Bad Gateway", j.dump() + "\n", true), false);
            co_return false;
        }
        upstream_open = true;
        // Larger send buffers let a 256 KiB read go out in one write (streaming).
        upstream.set_option(asio::socket_base::send_buffer_size(1 << 20), ec);
        co_return true;
    }

    static awaitable<void> run(std::shared_ptr<Session> self) {
        try {
            co_await self->loop();
        } catch (const std::exception& e) {
            log::warn(kProxyLog, "connection {}: {}", self->id, e.what());
        }
        self->close_all();
        self->unlist();
    }

    // The connection leaves the proxy's list as it ends (not at the next accept: an
    // expired entry would keep the whole Session allocation, make_shared's block, alive).
    void unlist() {
        if (listed) {
            listed = false;
            core->sessions.erase(self_in_list);
        }
    }
    std::list<std::weak_ptr<Session>>::iterator self_in_list;
    bool listed = false;

    awaitable<void> loop() {
        Policy& pol = core->policy;
        http::Limits limits;
        limits.max_head = core->opt.max_head;
        while (true) {
            http::RequestHead h;
            std::string err;
            while (true) {
                auto st = http::parse_request_head(cbuf, h, err, limits);
                if (st == http::Parse::done)
                    break;
                if (st == http::Parse::error) {
                    co_await bad_request(h.error_status, err, h);
                    co_return;
                }
                if (!co_await fill(client, cbuf, cscratch))
                    co_return;
            }
            cbuf.erase(0, h.size);
            ++core->stats.requests;
            RequestInfo ri{h.method, h.target, h.content_type, role};
            Decision d = pol.check_head(ri);
            // docker cp: the container's mounts, then its volumes (at most three rounds).
            Lookups head_lookups;
            for (int round = 0; d.verdict == Verdict::need_lookup; ++round) {
                if (round == 3 || !co_await lookup(d.lookups, head_lookups)) {
                    d.verdict = Verdict::deny;
                    d.rule = "lookup";
                    d.message = "cannot ask dockerd about " + d.lookups.front().name +
                                " to check the request";
                    break;
                }
                d = pol.check_head(ri, &head_lookups);
            }
            if (d.verdict == Verdict::deny) {
                co_await refuse(h, d, h.has_body());
                co_return;
            }
            std::string body;
            bool buffered = false;
            if (d.verdict == Verdict::allow && d.route.body == BodyMode::discard && h.has_body()) {
                // dockerd never reads it; it must not keep the request open (a pumped
                // body rules out the tunnel that follows, e.g. docker-modem's empty
                // chunked body on /session and attach).
                if (!co_await take_body(h, d, body))
                    co_return;
                body.clear();
                buffered = true;
            }
            if (d.verdict == Verdict::inspect) {
                if (!co_await take_body(h, d, body))
                    co_return;
                Decision head = d;
                d = pol.check_body(ri, head, body, nullptr);
                if (d.verdict == Verdict::need_lookup) {
                    Lookups l;
                    if (co_await lookup(d.lookups, l)) {
                        d = pol.check_body(ri, head, body, &l);
                    } else {
                        d.verdict = Verdict::deny;
                        d.rule = "lookup";
                        d.message = "cannot ask dockerd about " + d.lookups.front().name +
                                    " to check the request";
                    }
                }
                if (d.verdict == Verdict::not_found) {
                    d.rule = "image-not-found";
                    d.message = "No such image: " + d.image;
                    audit(h, d, "deny");
                    nlohmann::json j;
                    j["message"] = "No such image: " + d.image;
                    bool close = !h.keep_alive;
                    if (!co_await send(client, http::json_response(404, "Not Found",
                                                                   j.dump() + "\n", close)) ||
                        close)
                        co_return;
                    continue;
                }
                if (d.verdict != Verdict::allow) {
                    co_await refuse(h, d, false);
                    co_return;
                }
                if (d.rewritten_body)
                    body = std::move(*d.rewritten_body);
                buffered = true;
            }
            audit(h, d, "allow");
            bool reused = upstream_open;
            if (!upstream_open && !co_await connect_upstream())
                co_return;
            bool want_upgrade = d.route.upgrade && h.upgrade;
            http::Framing fr = http::Framing::none;
            std::uint64_t len = 0;
            if (buffered) {
                if (!body.empty() || h.content_length || h.chunked)
                    fr = http::Framing::length;
                len = body.size();
            } else if (h.chunked) {
                fr = http::Framing::chunked;
            } else if (h.content_length) {
                fr = http::Framing::length;
                len = *h.content_length;
            }
            std::string out = http::serialize_request_head(h, fr, len, want_upgrade);
            if (buffered)
                out += body;
            // A request whose body we hold (or that has none) is resent once on a fresh
            // connection when a kept-alive one to dockerd turns out dead (dockerd restarted).
            bool retryable = buffered || !h.has_body();
            std::shared_ptr<Join> pump_join;
            Outcome o = Outcome::close;
            for (int attempt = 0;; ++attempt) {
                bool may_retry = reused && retryable && attempt == 0;
                if (!co_await send(upstream, out)) {
                    if (may_retry && co_await connect_upstream()) {
                        reused = false;
                        continue;
                    }
                    co_return;
                }
                if (!buffered && h.has_body()) {
                    if (h.expect_continue &&
                        !co_await send(client, "HTTP/1.1 100 Continue\r\n\r\n"))
                        co_return;
                    pump_ok = true;
                    pump_join = std::make_shared<Join>(client.get_executor());
                    asio::co_spawn(client.get_executor(),
                                   pump_body(shared_from_this(), h, pump_join), asio::detached);
                }
                // The client is watched during streamed responses unless a body pump
                // reads from it, or the response may become a tunnel.
                Relay how;
                how.upgrade = want_upgrade && !pump_join;
                how.hijack = d.route.hijack && !h.upgrade && !pump_join;
                how.watch = !pump_join && !want_upgrade;
                o = co_await relay_response(h, how);
                if (o == Outcome::upstream_gone && may_retry) {
                    log::info(kProxyLog,
                              "connection {}: dockerd dropped a kept-alive connection; retrying",
                              id);
                    if (!co_await connect_upstream())
                        co_return;
                    reused = false;
                    continue;
                }
                if (o == Outcome::upstream_gone)
                    co_await send(
                        client,
                        http::json_response(502, "Bad Gateway",
                                            R"({"message":"cordon: dockerd closed the connection"})"
                                            "\n",
                                            true));
                break;
            }
            if (pump_join) {
                if (o != Outcome::next)
                    close_all();
                co_await pump_join->wait();
            }
            if (o != Outcome::next || !pump_ok || h.close)
                co_return;
        }
    }
};

awaitable<void> accept_loop(std::shared_ptr<PolicyProxy::Core> core, stream::acceptor* acc,
                            Role role) {
    while (!core->stopped) {
        error_code ec;
        stream::socket s = co_await acc->async_accept(asio::redirect_error(use_awaitable, ec));
        if (ec) {
            if (core->stopped || ec == asio::error::operation_aborted)
                co_return;
            log::warn(kProxyLog, "accept failed: {}", ec.message());
            continue;
        }
        ++core->stats.connections;
        s.set_option(asio::socket_base::send_buffer_size(1 << 20), ec);
        auto session = std::make_shared<Session>(core, std::move(s), role);
        session->self_in_list = core->sessions.insert(core->sessions.end(), session);
        session->listed = true;
        asio::co_spawn(core->io, Session::run(session), asio::detached);
    }
}

std::unique_ptr<stream::acceptor> listen_on(asio::io_context& io, const std::string& path,
                                            mode_t mode) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            throw Error(
                "cannot listen for Docker clients: a file that is not a socket is in the way", path,
                "remove it or choose another --listen path");
        ::unlink(path.c_str());
    }
    auto acc = std::make_unique<stream::acceptor>(io);
    error_code ec;
    acc->open(stream(), ec);
    if (!ec)
        acc->bind(stream::endpoint(path), ec);
    if (ec)
        throw Error("cannot listen for Docker clients: " + ec.message(), path,
                    "check that the folder exists and is writable");
    if (::chmod(path.c_str(), mode) != 0)
        throw_errno("cannot set the socket's permissions", path);
    acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw Error("cannot listen for Docker clients: " + ec.message(), path, "");
    return acc;
}

PolicyConfig with_sockets(PolicyConfig c, const ProxyOptions& o) {
    for (const auto* p : {&o.listen_path, &o.upstream_path, &o.container_listen_path})
        if (!p->empty())
            c.docker_sockets.push_back(*p);
    c.container_socket_path =
        o.container_listen_path.empty() ? o.listen_path : o.container_listen_path;
    return c;
}

// Audit entries of allowed requests are batched; push them out every 200 ms.
awaitable<void> flush_loop(std::shared_ptr<PolicyProxy::Core> core) {
    while (!core->stopped) {
        core->flush_timer->expires_after(std::chrono::milliseconds(200));
        error_code ec;
        co_await core->flush_timer->async_wait(asio::redirect_error(use_awaitable, ec));
        core->audit.flush();
    }
}

}  // namespace

PolicyProxy::PolicyProxy(asio::io_context& io, std::string listen_path, std::string upstream_path,
                         PolicyConfig config, AuditSink& audit)
    : PolicyProxy(
          io,
          ProxyOptions{
              std::move(listen_path), std::move(upstream_path), {}, 0660, 64 * 1024, 256 * 1024},
          std::move(config), audit) {}

PolicyProxy::PolicyProxy(asio::io_context& io, ProxyOptions options, PolicyConfig config,
                         AuditSink& audit) {
    if (options.listen_path.empty() || options.upstream_path.empty())
        throw Error("the policy proxy needs a listen path and an upstream path", "PolicyProxy",
                    "pass --listen and --upstream");
    auto cfg = with_sockets(std::move(config), options);
    core_ = std::make_shared<Core>(io, std::move(options), std::move(cfg), audit);
}

PolicyProxy::~PolicyProxy() {
    stop();
}

void PolicyProxy::start() {
    core_->stopped = false;
    std::vector<std::pair<std::string, Role>> paths = {{core_->opt.listen_path, Role::host}};
    if (!core_->opt.container_listen_path.empty())
        paths.emplace_back(core_->opt.container_listen_path, Role::container);
    for (const auto& [path, role] : paths) {
        core_->acceptors.push_back(listen_on(core_->io, path,
                                             role == Role::container
                                                 ? core_->opt.container_listen_mode
                                                 : core_->opt.listen_mode));
        core_->bound_paths.push_back(path);
        asio::co_spawn(core_->io, accept_loop(core_, core_->acceptors.back().get(), role),
                       asio::detached);
    }
    core_->flush_timer = std::make_unique<asio::steady_timer>(core_->io);
    asio::co_spawn(core_->io, flush_loop(core_), asio::detached);
    log::info(kProxyLog, "serving the Docker API on {} -> {} (isolation {})",
              core_->opt.listen_path, core_->opt.upstream_path,
              core_->policy.config().isolation ? "on" : "off");
}

void PolicyProxy::stop() {
    if (!core_ || core_->stopped)
        return;
    core_->stopped = true;
    error_code ec;
    for (auto& a : core_->acceptors) a->close(ec);
    if (core_->flush_timer)
        core_->flush_timer->cancel();
    core_->audit.flush();
    for (const auto& p : core_->bound_paths) ::unlink(p.c_str());
    core_->bound_paths.clear();
    for (auto& w : core_->sessions)
        if (auto s = w.lock()) {
            s->listed = false;
            s->close_all();
        }
    core_->sessions.clear();
}

const Policy& PolicyProxy::policy() const {
    return core_->policy;
}
void PolicyProxy::set_isolation(bool on) {
    core_->policy.set_isolation(on);
}
ProxyStats PolicyProxy::stats() const {
    return core_->stats;
}

}  // namespace cordon::policy

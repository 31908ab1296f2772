#include "docker_load.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "cordon/proxy/http.hpp"

namespace cordon::load {
namespace {

using Clock = std::chrono::steady_clock;

enum class Kind { ping, list, inspect };

struct Shared {
    std::mutex mu;
    Result result;
    std::vector<double> lat[3];
    void fail(std::string what) {
        std::lock_guard lock(mu);
        ++result.failures;
        if (result.failure_samples.size() < 20)
            result.failure_samples.push_back(std::move(what));
    }
};

class Conn {
  public:
    ~Conn() { close(); }
    void close() {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
        buf_.clear();
    }
    bool open() const { return fd_ >= 0; }

    bool connect(const std::string& path, std::string& err) {
        close();
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            err = "connect " + path + ": " + std::strerror(errno);
            close();
            return false;
        }
        return true;
    }

    bool send(const std::string& data, std::string& err) {
        std::size_t off = 0;
        while (off < data.size()) {
            ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                err = std::string("send: ") + std::strerror(errno);
                return false;
            }
            off += static_cast<std::size_t>(n);
        }
        return true;
    }

    // Appends what arrives before `deadline`. 0: EOF, -1: error or timeout (err set).
    int fill(Clock::time_point deadline, std::string& err) {
        while (true) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) {
                err = "timed out";
                return -1;
            }
            pollfd p{fd_, POLLIN, 0};
            int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                continue;
            char tmp[65536];
            ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                err = std::string("recv: ") + std::strerror(errno);
                return -1;
            }
            if (n == 0)
                return 0;
            buf_.append(tmp, static_cast<std::size_t>(n));
            return 1;
        }
    }

    // Reads one response head; leaves the body's first bytes in buf().
    bool read_head(http::ResponseHead& rh, Clock::time_point deadline, std::string& err) {
        while (true) {
            rh = {};
            auto st = http::parse_response_head(buf_, rh, err);
            if (st == http::Parse::done) {
                buf_.erase(0, rh.size);
                return true;
            }
            if (st == http::Parse::error)
                return false;
            int r = fill(deadline, err);
            if (r == 0)
                err = "connection closed before a response";
            if (r <= 0)
                return false;
        }
    }

    // Reads the whole body by its framing.
    bool read_body(const http::ResponseHead& rh, Clock::time_point deadline, std::string& err) {
        if (rh.chunked) {
            http::ChunkedDecoder dec(true);
            std::vector<std::string_view> spans;
            while (true) {
                spans.clear();
                std::size_t used = dec.feed(buf_, spans);
                buf_.erase(0, used);
                if (dec.done())
                    return true;
                if (dec.failed()) {
                    err = "bad chunked body: " + dec.error();
                    return false;
                }
                int r = fill(deadline, err);
                if (r == 0)
                    err = "connection closed inside a chunked body";
                if (r <= 0)
                    return false;
            }
        }
        if (rh.content_length) {
            while (buf_.size() < *rh.content_length) {
                int r = fill(deadline, err);
                if (r == 0)
                    err = "connection closed inside a body";
                if (r <= 0)
                    return false;
            }
            buf_.erase(0, static_cast<std::size_t>(*rh.content_length));
            return true;
        }
        while (true) {  // no framing: until the server closes
            buf_.clear();
            int r = fill(deadline, err);
            if (r == 0)
                return true;
            if (r < 0)
                return false;
        }
    }

    std::string& buf() { return buf_; }
    int fd() const { return fd_; }

  private:
    int fd_ = -1;
    std::string buf_;
};

std::string request(const std::string& target) {
    return "GET " + target + " HTTP/1.1\r\nHost: docker\r\nUser-Agent: cordon-load/1\r\n\r\n";
}

void requester(const Options& o, Shared& sh, int index, Clock::time_point end) {
    const bool keep_alive = index % 2 == 0;
    const std::string reqs[3] = {request("/v1.41/_ping"), request("/v1.41/containers/json"),
                                 request("/v1.41/containers/" + o.container + "/json")};
    const char* names[3] = {"_ping", "containers/json", "inspect"};
    std::vector<double> mine[3];
    std::uint64_t done = 0, conns = 0;
    Conn c;
    for (int i = index; Clock::now() < end; ++i) {
        const int k = i % 3;
        std::string err;
        auto t0 = Clock::now();
        auto deadline = t0 + o.request_timeout;
        http::ResponseHead rh;
        bool ok = (c.open() || (++conns, c.connect(o.socket, err))) && c.send(reqs[k], err) &&
                  c.read_head(rh, deadline, err) && c.read_body(rh, deadline, err);
        if (ok && rh.status != 200) {
            ok = false;
            err = "status " + std::to_string(rh.status);
        }
        if (!ok) {
            sh.fail(std::string(names[k]) + " (client " + std::to_string(index) +
                    (keep_alive ? ", kept alive" : ", new connection") + "): " + err);
            c.close();
            std::this_thread::sleep_for(std::chrono::milliseconds(100));  // no failure storm
            continue;
        }
        mine[k].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        ++done;
        if (!keep_alive || rh.close)
            c.close();
    }
    std::lock_guard lock(sh.mu);
    sh.result.requests += done;
    sh.result.connections += conns;
    for (int k = 0; k < 3; ++k) sh.lat[k].insert(sh.lat[k].end(), mine[k].begin(), mine[k].end());
}

void follower(const Options& o, Shared& sh, bool logs, Clock::time_point end) {
    const std::string what = logs ? "logs -f" : "events";
    const std::string target =
        logs ? "/v1.41/containers/" + o.container + "/logs?follow=1&stdout=1&stderr=1&tail=1"
             : "/v1.41/events";
    Conn c;
    std::string err;
    http::ResponseHead rh;
    auto t0 = Clock::now();
    if (!c.connect(o.socket, err) || !c.send(request(target), err) ||
        !c.read_head(rh, t0 + o.request_timeout, err)) {
        sh.fail(what + ": " + err);
        return;
    }
    if (rh.status != 200) {
        sh.fail(what + ": status " + std::to_string(rh.status));
        return;
    }
    std::uint64_t bytes = c.buf().size();
    c.buf().clear();
    while (Clock::now() < end) {
        int r = c.fill(end, err);
        if (r < 0 && err == "timed out")
            break;
        if (r <= 0) {
            sh.fail(what + ": the stream ended early: " + (r == 0 ? "EOF" : err));
            return;
        }
        bytes += c.buf().size();
        c.buf().clear();
    }
    std::lock_guard lock(sh.mu);
    (logs ? sh.result.log_streams : sh.result.event_streams) += 1;
    (logs ? sh.result.log_bytes : sh.result.event_bytes) += bytes;
    ++sh.result.connections;
    ++sh.result.requests;  // a stream counts as one request
}

Latency summarise(std::vector<double> v) {
    Latency l;
    l.count = v.size();
    if (v.empty())
        return l;
    std::sort(v.begin(), v.end());
    l.p50_ms = v[v.size() / 2];
    l.p99_ms = v[std::min(v.size() - 1, v.size() * 99 / 100)];
    l.max_ms = v.back();
    return l;
}

}  // namespace

Result run(const Options& o) {
    Shared sh;
    auto t0 = Clock::now();
    auto end = t0 + o.duration;
    std::vector<std::thread> threads;
    threads.reserve(static_cast<std::size_t>(o.clients));
    for (int i = 0; i < o.clients; ++i) {
        if (i % 10 == 0 || i % 10 == 5)
            threads.emplace_back([&, i] { follower(o, sh, i % 10 == 0, end); });
        else
            threads.emplace_back([&, i] { requester(o, sh, i, end); });
    }
    for (auto& t : threads) t.join();
    Result r = std::move(sh.result);
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.requests_per_second = static_cast<double>(r.requests) / r.seconds;
    std::vector<double> all;
    for (auto& v : sh.lat) all.insert(all.end(), v.begin(), v.end());
    r.all = summarise(std::move(all));
    r.ping = summarise(std::move(sh.lat[0]));
    r.list = summarise(std::move(sh.lat[1]));
    r.inspect = summarise(std::move(sh.lat[2]));
    return r;
}

std::string describe(const Result& r) {
    std::ostringstream s;
    s.setf(std::ios::fixed);
    s.precision(1);
    auto lat = [&](const char* name, const Latency& l) {
        s << "  " << name << ": " << l.count << " requests, p50 " << l.p50_ms << " ms, p99 "
          << l.p99_ms << " ms, max " << l.max_ms << " ms\n";
    };
    s << "requests " << r.requests << " in " << r.seconds << " s (" << r.requests_per_second
      << " req/s), failures " << r.failures << ", connections " << r.connections << "\n";
    lat("all", r.all);
    lat("_ping", r.ping);
    lat("containers/json", r.list);
    lat("inspect", r.inspect);
    s << "  logs -f streams open to the end: " << r.log_streams << " (" << r.log_bytes
      << " bytes); events streams: " << r.event_streams << " (" << r.event_bytes << " bytes)\n";
    for (const auto& f : r.failure_samples) s << "  failure: " << f << "\n";
    return s.str();
}

ProcessUsage usage_of(pid_t pid) {
    ProcessUsage u;
    const std::string base = "/proc/" + std::to_string(pid);
    std::ifstream st(base + "/status");
    for (std::string line; std::getline(st, line);)
        if (line.rfind("VmRSS:", 0) == 0)
            u.rss_kib = std::stol(line.substr(6));
    std::error_code ec;
    int n = 0;
    for (auto it = std::filesystem::directory_iterator(base + "/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        ++n;
    u.fds = ec ? -1 : n;
    return u;
}

ProcessUsage parse_usage(const std::string& text) {
    ProcessUsage u;
    std::istringstream in(text);
    in >> u.fds >> u.rss_kib;
    if (!in)
        return {};
    return u;
}

std::string usage_command(const std::string& name) {
    // `vmctl exec` runs the shell as a child of the guest agent: its parent is the agent
    // (checked by name, as the kernel shortens it to 15 characters).
    return "p=$PPID; [ \"$(cat /proc/$p/comm)\" = \"" + name.substr(0, 15) +
           "\" ] || { echo \"parent $p is $(cat /proc/$p/comm), not " + name +
           "\" >&2; exit 1; }; echo $(ls /proc/$p/fd | wc -l) "
           "$(sed -n 's/^VmRSS:[^0-9]*\\([0-9]*\\).*/\\1/p' /proc/$p/status)";
}

}  // namespace cordon::load

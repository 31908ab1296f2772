// bench-proxy: the cost of the Docker socket policy proxy.
//  1. GET /_ping with C concurrent keep-alive clients for S seconds: p50, p99, requests/s.
//  2. A 1 GiB streamed upload (chunked, like `docker load`) and a 1 GiB download
//     (Content-Length, like `docker save`).
// Each straight to a stub dockerd and through PolicyProxy (isolation on, audit to a
// file), in the same run; prints the ratios.
#pragma GCC diagnostic ignored "-Wnull-dereference"  // Boost.Asio false positive, see proxy.cpp
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cordon/log.hpp"
#include "cordon/proxy/proxy.hpp"

namespace {

using Clock = std::chrono::steady_clock;

int connect_to(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        std::perror(("connect " + path).c_str());
        std::exit(1);
    }
    return fd;
}

bool write_all(int fd, const char* p, std::size_t n) {
    while (n) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

// Reads one response with a Content-Length body; returns the body size or -1.
long long read_response(int fd, std::string& buf, bool keep_body = false) {
    std::size_t e;
    char tmp[65536];
    while ((e = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0)
            return -1;
        buf.append(tmp, static_cast<std::size_t>(n));
    }
    auto p = buf.find("Content-Length: ");
    long long len = p != std::string::npos && p < e ? std::stoll(buf.substr(p + 16)) : 0;
    buf.erase(0, e + 4);
    long long have = std::min<long long>(len, static_cast<long long>(buf.size()));
    if (!keep_body)
        buf.erase(0, static_cast<std::size_t>(have));
    long long rem = len - have;
    static thread_local std::vector<char> big(1 << 20);
    while (rem > 0) {
        ssize_t n =
            ::recv(fd, big.data(), std::min<long long>(rem, static_cast<long long>(big.size())), 0);
        if (n <= 0)
            return -1;
        if (keep_body)
            buf.append(big.data(), static_cast<std::size_t>(n));
        rem -= n;
    }
    return len;
}

// ---------------------------------------------------------------- stub dockerd

class Stub {
  public:
    explicit Stub(std::string path) : path_(std::move(path)) {
        ::unlink(path_.c_str());
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(fd_, 128) != 0) {
            std::perror("stub listen");
            std::exit(1);
        }
        std::thread([this] {
            while (true) {
                int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0)
                    return;
                std::thread([c] { serve(c); }).detach();
            }
        }).detach();
    }

  private:
    static void serve(int fd) {
        static const std::string ping =
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: text/plain; "
            "charset=utf-8\r\nContent-Length: 2\r\n\r\nOK";
        std::string buf;
        std::vector<char> tmp(1 << 20);
        // Heads and chunk-size lines are read in 4 KiB pieces (as Go's bufio.Reader in
        // dockerd does); chunk data goes straight to `tmp` and is dropped, so the stub
        // never moves body bytes around in user space, however the sender splits them.
        auto more = [&] {
            ssize_t n = ::recv(fd, tmp.data(), 4096, 0);
            if (n <= 0)
                return false;
            buf.append(tmp.data(), static_cast<std::size_t>(n));
            return true;
        };
        while (true) {
            std::size_t e;
            while ((e = buf.find("\r\n\r\n")) == std::string::npos)
                if (!more())
                    goto out;
            {
                std::string head = buf.substr(0, e);
                buf.erase(0, e + 4);
                if (head.find("/_ping") != std::string::npos) {
                    if (!write_all(fd, ping.data(), ping.size()))
                        goto out;
                } else if (head.find("/images/load") != std::string::npos) {
                    std::uint64_t total = 0;  // chunked body, discarded
                    while (true) {
                        std::size_t le;
                        while ((le = buf.find("\r\n")) == std::string::npos)
                            if (!more())
                                goto out;
                        std::uint64_t n = std::stoull(buf.substr(0, le), nullptr, 16);
                        buf.erase(0, le + 2);
                        if (n == 0) {
                            while (buf.size() < 2)
                                if (!more())
                                    goto out;
                            buf.erase(0, 2);
                            break;
                        }
                        n += 2;  // data + CRLF
                        total += n - 2;
                        while (n) {
                            if (buf.empty()) {
                                ssize_t r = ::recv(fd, tmp.data(),
                                                   std::min<std::uint64_t>(n, tmp.size()), 0);
                                if (r <= 0)
                                    goto out;
                                n -= static_cast<std::uint64_t>(r);
                                continue;
                            }
                            std::size_t k = std::min<std::uint64_t>(n, buf.size());
                            buf.erase(0, k);
                            n -= k;
                        }
                    }
                    std::string body = "{\"bytes\":" + std::to_string(total) + "}";
                    std::string r =
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
                    if (!write_all(fd, r.data(), r.size()))
                        goto out;
                } else if (auto p = head.find("bytes="); p != std::string::npos) {
                    std::uint64_t n = std::stoull(head.substr(p + 6));
                    std::string r =
                        "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: " +
                        std::to_string(n) + "\r\n\r\n";
                    if (!write_all(fd, r.data(), r.size()))
                        goto out;
                    static const std::vector<char> block(1 << 20, 'D');
                    while (n) {
                        std::size_t k = std::min<std::uint64_t>(n, block.size());
                        if (!write_all(fd, block.data(), k))
                            goto out;
                        n -= k;
                    }
                } else {
                    const std::string r = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
                    if (!write_all(fd, r.data(), r.size()))
                        goto out;
                }
            }
        }
    out:
        ::close(fd);
    }
    std::string path_;
    int fd_ = -1;
};

// ---------------------------------------------------------------- measurements

struct PingResult {
    double rps = 0, p50 = 0, p99 = 0;
    long errors = 0;
};

PingResult ping(const std::string& sock, int clients, double seconds) {
    std::vector<std::vector<double>> lat(static_cast<std::size_t>(clients));
    std::atomic<long> errors{0};
    auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    std::vector<std::thread> ts;
    const std::string req =
        "GET /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: bench-proxy\r\n\r\n";
    for (int i = 0; i < clients; ++i)
        ts.emplace_back([&, i] {
            int fd = connect_to(sock);
            std::string buf;
            auto& mine = lat[static_cast<std::size_t>(i)];
            mine.reserve(200000);
            while (Clock::now() < deadline) {
                auto t0 = Clock::now();
                if (!write_all(fd, req.data(), req.size()) || read_response(fd, buf) != 2) {
                    ++errors;
                    ::close(fd);
                    fd = connect_to(sock);
                    buf.clear();
                    continue;
                }
                mine.push_back(
                    std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
            }
            ::close(fd);
        });
    for (auto& t : ts) t.join();
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    PingResult r;
    r.errors = errors;
    if (all.empty())
        return r;
    r.rps = static_cast<double>(all.size()) / seconds;
    r.p50 = all[all.size() / 2];
    r.p99 = all[all.size() * 99 / 100];
    return r;
}

double upload(const std::string& sock, std::uint64_t bytes) {
    int fd = connect_to(sock);
    std::vector<char> chunk(1 << 20, 'U');
    auto t0 = Clock::now();
    std::string head =
        "POST /v1.41/images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\nContent-Type: "
        "application/x-tar\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    write_all(fd, head.data(), head.size());
    char line[32];
    for (std::uint64_t sent = 0; sent < bytes; sent += chunk.size()) {
        std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), bytes - sent));
        int l = std::snprintf(line, sizeof line, "%zx\r\n", n);
        write_all(fd, line, static_cast<std::size_t>(l));
        write_all(fd, chunk.data(), n);
        write_all(fd, "\r\n", 2);
    }
    write_all(fd, "0\r\n\r\n", 5);
    std::string buf;
    read_response(fd, buf, true);
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    ::close(fd);
    if (buf != "{\"bytes\":" + std::to_string(bytes) + "}") {
        std::fprintf(stderr, "upload through %s: dockerd got %s\n", sock.c_str(), buf.c_str());
        std::exit(1);
    }
    return static_cast<double>(bytes) / s / 1e6;
}

double download(const std::string& sock, std::uint64_t bytes) {
    int fd = connect_to(sock);
    auto t0 = Clock::now();
    std::string req = "GET /v1.41/images/get?names=x&bytes=" + std::to_string(bytes) +
                      " HTTP/1.1\r\nHost: docker\r\n\r\n";
    write_all(fd, req.data(), req.size());
    std::string buf;
    long long got = read_response(fd, buf);
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    ::close(fd);
    if (got != static_cast<long long>(bytes)) {
        std::fprintf(stderr, "download through %s failed\n", sock.c_str());
        std::exit(1);
    }
    return static_cast<double>(bytes) / s / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"bench-proxy: the policy proxy against a direct connection"};
    double seconds = 5;
    int clients = 10;
    std::uint64_t bytes = 1ull << 30;
    std::string dir = "/tmp/cordon-bench-proxy";
    std::size_t io_buffer = 256 * 1024;
    app.add_option("--io-buffer", io_buffer, "the proxy's read buffer per direction");
    app.add_option("--seconds", seconds, "seconds per /_ping run");
    app.add_option("--clients", clients, "concurrent keep-alive clients");
    app.add_option("--bytes", bytes, "size of the streamed body");
    bool no_ping = false, no_stream = false;
    app.add_flag("--no-ping", no_ping, "skip the /_ping runs");
    app.add_flag("--no-stream", no_stream, "skip the 1 GiB upload and download");
    app.add_option("--dir", dir, "scratch folder for the sockets and the audit file");
    CLI11_PARSE(app, argc, argv);
    cordon::log::set_level(cordon::log::Level::warn);
    std::filesystem::create_directories(dir);
    std::string stub_sock = dir + "/stub.sock", proxy_sock = dir + "/docker.sock";
    Stub stub(stub_sock);

    std::filesystem::remove(dir + "/audit.jsonl");
    cordon::policy::AuditLog audit(1000, dir + "/audit.jsonl");
    boost::asio::io_context io(1);  // one thread runs it (as in the guest agent)
    cordon::policy::ProxyOptions opt;
    opt.listen_path = proxy_sock;
    opt.upstream_path = stub_sock;
    opt.io_buffer = io_buffer;
    cordon::policy::PolicyProxy proxy(io, opt, cordon::policy::PolicyConfig{}, audit);
    proxy.start();
    // The same proxy with splice(2) off (bodies copied through its buffers), for the ratio.
    auto copy_opt = opt;
    copy_opt.listen_path = dir + "/docker-copy.sock";
    copy_opt.splice_bodies = false;
    cordon::policy::PolicyProxy copy_proxy(io, copy_opt, cordon::policy::PolicyConfig{}, audit);
    copy_proxy.start();
    std::thread io_thread([&] { io.run(); });

    std::printf(
        "bench-proxy: %d clients, %.0fs per run, %llu-byte bodies; isolation on, audit file on\n",
        clients, seconds, static_cast<unsigned long long>(bytes));
    if (!no_ping) {
        ping(stub_sock, clients, 0.5);
        ping(proxy_sock, clients, 0.5);  // warm-up
        auto d = ping(stub_sock, clients, seconds);
        auto p = ping(proxy_sock, clients, seconds);
        std::printf("ping direct: rps=%.0f p50_us=%.1f p99_us=%.1f errors=%ld\n", d.rps, d.p50,
                    d.p99, d.errors);
        std::printf("ping proxy:  rps=%.0f p50_us=%.1f p99_us=%.1f errors=%ld\n", p.rps, p.p50,
                    p.p99, p.errors);
        std::printf("ping: proxy adds %+.1f us at p50 (%.2fx), %+.1f us at p99; rps ratio %.2f\n",
                    p.p50 - d.p50, p.p50 / d.p50, p.p99 - d.p99, p.rps / d.rps);
        auto d1 = ping(stub_sock, 1, seconds);
        auto p1 = ping(proxy_sock, 1, seconds);
        std::printf(
            "ping 1 client: direct p50_us=%.1f p99_us=%.1f, proxy p50_us=%.1f p99_us=%.1f: adds "
            "%+.1f "
            "us at p50\n",
            d1.p50, d1.p99, p1.p50, p1.p99, p1.p50 - d1.p50);
    }
    if (!no_stream) {
        double ud = upload(stub_sock, bytes), up = upload(proxy_sock, bytes),
               uc = upload(copy_opt.listen_path, bytes);
        std::printf(
            "upload (chunked) direct: %.0f MB/s, proxy: %.0f MB/s (ratio %.2f), proxy without "
            "splice: %.0f MB/s (ratio %.2f)\n",
            ud, up, up / ud, uc, uc / ud);
        double dd = download(stub_sock, bytes), dp = download(proxy_sock, bytes),
               dc = download(copy_opt.listen_path, bytes);
        std::printf(
            "download (Content-Length) direct: %.0f MB/s, proxy: %.0f MB/s (ratio %.2f), proxy "
            "without splice: %.0f MB/s (ratio %.2f)\n",
            dd, dp, dp / dd, dc, dc / dd);
    }

    boost::asio::post(io, [&] {
        proxy.stop();
        copy_proxy.stop();
        io.stop();
    });
    io_thread.join();
    std::printf("audit: %llu decisions recorded\n", static_cast<unsigned long long>(audit.total()));
    return 0;
}

// The policy proxy end to end on this machine: real unix sockets, the real PolicyProxy
// on its own io_context thread, a stub dockerd (stub_dockerd.cpp) upstream, and raw
// clients that send exactly the bytes under test. tests/e2e/proxy runs the docker CLI
// workflow and the attacks against the VM's real dockerd.
#pragma GCC diagnostic ignored "-Wnull-dereference"  // Boost.Asio false positive, see proxy.cpp
#include "cordon/proxy/proxy.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "cli_refusals.hpp"
#include "cordon/error.hpp"
#include "stub_dockerd.hpp"

namespace {

using namespace cordon::policy;
using cordon::testing::StubDockerd;
namespace fs = std::filesystem;

struct Response {
    int status = 0;
    std::string head;
    std::string body;
    bool ok = false;
};

class Client {
  public:
    explicit Client(const std::string& path, int timeout_s = 10) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        timeval tv{timeout_s, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~Client() { ::close(fd_); }
    bool connected() const { return connected_; }
    bool send(const std::string& s) {
        std::size_t off = 0;
        while (off < s.size()) {
            ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
            if (n <= 0)
                return false;
            off += static_cast<std::size_t>(n);
        }
        return true;
    }
    void half_close() { ::shutdown(fd_, SHUT_WR); }
    bool more() {
        char tmp[65536];
        ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n <= 0)
            return false;
        buf_.append(tmp, static_cast<std::size_t>(n));
        return true;
    }
    // Reads exactly n raw bytes (for tunnels).
    std::string raw(std::size_t n) {
        while (buf_.size() < n)
            if (!more())
                break;
        std::string out = buf_.substr(0, n);
        buf_.erase(0, out.size());
        return out;
    }
    bool eof() {
        if (!buf_.empty())
            return false;
        return !more() && buf_.empty();
    }
    // Reads one response; `head_only` stops after the head (streaming tests).
    Response read(bool head_only = false) {
        Response r;
        std::size_t e;
        while ((e = buf_.find("\r\n\r\n")) == std::string::npos)
            if (!more())
                return r;
        r.head = buf_.substr(0, e + 4);
        buf_.erase(0, e + 4);
        r.status = std::stoi(r.head.substr(9, 3));
        r.ok = true;
        if (head_only || r.status == 101 || r.status == 100)
            return r;
        std::string lh = r.head;
        for (auto& c : lh) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lh.find("transfer-encoding: chunked") != std::string::npos) {
            r.body = read_chunked();
        } else if (auto p = lh.find("content-length: "); p != std::string::npos) {
            std::size_t n = std::stoul(lh.substr(p + 16));
            while (buf_.size() < n)
                if (!more())
                    break;
            r.body = buf_.substr(0, n);
            buf_.erase(0, r.body.size());
        }
        return r;
    }
    // Reads chunked payload until at least `n` payload bytes (or the end).
    std::string read_chunked(std::size_t n = SIZE_MAX) {
        std::string out;
        while (out.size() < n) {
            std::size_t le;
            while ((le = buf_.find("\r\n")) == std::string::npos)
                if (!more())
                    return out;
            std::size_t size = std::stoul(buf_.substr(0, le), nullptr, 16);
            if (size == 0) {
                while (buf_.size() < le + 4)
                    if (!more())
                        return out;
                buf_.erase(0, le + 4);
                return out;
            }
            while (buf_.size() < le + 2 + size + 2)
                if (!more())
                    return out;
            out += buf_.substr(le + 2, size);
            buf_.erase(0, le + 2 + size + 2);
        }
        return out;
    }

  private:
    int fd_ = -1;
    bool connected_ = false;
    std::string buf_;
};

std::string req(const std::string& method, const std::string& target, const std::string& body = {},
                const std::string& extra = {}) {
    std::string s = method + " " + target + " HTTP/1.1\r\nHost: docker\r\n" + extra;
    if (!body.empty() || method == "POST")
        s += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    return s + "\r\n" + body;
}

const std::string kPrivileged = R"({"Image":"alpine","HostConfig":{"Privileged":true}})";
const std::string kPlain = R"({"Image":"alpine","HostConfig":{"Binds":["/srv/data:/data"]}})";

class ProxyTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("cordon-proxy-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        stub_ = std::make_unique<StubDockerd>(upstream());
    }
    void TearDown() override {
        stop();
        stub_.reset();
        fs::remove_all(dir_);
    }
    std::string listen() const { return dir_ + "/docker.sock"; }
    std::string container_listen() const { return dir_ + "/docker-containers.sock"; }
    std::string upstream() const { return dir_ + "/dockerd.sock"; }
    std::string audit_path() const { return dir_ + "/audit.jsonl"; }

    void start(PolicyConfig cfg = {}) {
        audit_ = std::make_unique<AuditLog>(100, audit_path());
        ProxyOptions o;
        o.listen_path = listen();
        o.upstream_path = upstream();
        o.container_listen_path = container_listen();
        proxy_ = std::make_unique<PolicyProxy>(io_, o, cfg, *audit_);
        proxy_->start();
        thread_ = std::thread([this] { io_.run(); });
    }
    void stop() {
        if (!thread_.joinable())
            return;
        boost::asio::post(io_, [this] {
            proxy_->stop();
            io_.stop();
        });
        thread_.join();
    }
    std::vector<AuditEntry> audit_entries() {
        std::promise<std::vector<AuditEntry>> p;
        boost::asio::post(io_, [&] { p.set_value(audit_->recent()); });
        return p.get_future().get();
    }

    std::uint64_t hijacks() {
        std::promise<std::uint64_t> p;
        boost::asio::post(io_, [&] { p.set_value(proxy_->stats().hijacks); });
        return p.get_future().get();
    }

    std::string dir_;
    std::unique_ptr<StubDockerd> stub_;
    boost::asio::io_context io_;
    std::unique_ptr<AuditLog> audit_;
    std::unique_ptr<PolicyProxy> proxy_;
    std::thread thread_;
};

TEST_F(ProxyTest, PingAndKeepAlive) {
    start();
    Client c(listen());
    ASSERT_TRUE(c.connected());
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(c.send(req("GET", "/_ping")));
        auto r = c.read();
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, "OK");
    }
    EXPECT_EQ(stub_->received().size(), 3u);
}

TEST_F(ProxyTest, PipelinedPrivilegedCreateBehindPingIsRefused) {
    start();
    Client c(listen());
    ASSERT_TRUE(
        c.send(req("GET", "/_ping") + req("POST", "/v1.41/containers/create", kPrivileged)));
    auto r1 = c.read();
    auto r2 = c.read();
    EXPECT_EQ(r1.status, 200);
    EXPECT_EQ(r2.status, 403);
    EXPECT_NE(r2.body.find("privileged"), std::string::npos) << r2.body;
    EXPECT_NE(r2.body.find("enhanced container isolation"), std::string::npos);
    EXPECT_TRUE(c.eof());
    EXPECT_FALSE(stub_->saw("/containers/create"));
    auto log = audit_entries();
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[1].decision, "deny");
    EXPECT_EQ(log[1].rule, "privileged");
}

TEST_F(ProxyTest, PipelinedAllowedRequestsAreAllForwardedInOrder) {
    start();
    Client c(listen());
    ASSERT_TRUE(c.send(req("GET", "/_ping") + req("POST", "/v1.41/containers/create", kPlain) +
                       req("GET", "/_ping")));
    EXPECT_EQ(c.read().status, 200);
    auto r = c.read();
    EXPECT_EQ(r.status, 201);
    EXPECT_EQ(r.body, kPlain);  // forwarded byte for byte
    EXPECT_EQ(c.read().status, 200);
    auto got = stub_->received();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[1].body, kPlain);
}

struct Smuggle {
    const char* name;
    std::string bytes;
    int status;
};

TEST_F(ProxyTest, SmugglingAttemptsAreRefusedBeforeReachingDockerd) {
    start();
    const std::string body = kPrivileged;
    const std::string cl = std::to_string(body.size());
    std::vector<Smuggle> cases = {
        {"cl_and_te",
         "POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 4\r\nTransfer-Encoding: "
         "chunked\r\n\r\n0\r\n\r\n" +
             body,
         400},
        {"duplicate_cl",
         "POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: " + cl +
             "\r\nContent-Length: " + cl + "\r\n\r\n" + body,
         400},
        {"cl_with_sign",
         "POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: +" + cl + "\r\n\r\n" +
             body,
         400},
        {"obs_fold",
         "GET /_ping HTTP/1.1\r\nHost: d\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n", 400},
        {"bare_lf", "GET /_ping HTTP/1.1\nHost: d\n\n", 400},
        {"space_before_colon",
         "POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
        {"te_not_chunked",
         "POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked, "
         "identity\r\n\r\n",
         501},
        {"te_xchunked",
         "POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: xchunked\r\n\r\n", 501},
        {"bad_chunk_size",
         "POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" +
             body + "\r\n0\r\n\r\n",
         400},
        {"chunk_size_overflow",
         "POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: "
         "chunked\r\n\r\n1000000000000000a\r\nx\r\n",
         400},
        {"chunk_missing_crlf",
         "POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: "
         "chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
         400},
        {"chunk_trailer",
         "POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: "
         "chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Privileged: 1\r\n\r\n",
         400},
        {"http09_or_2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
        {"no_host", "GET /_ping HTTP/1.1\r\n\r\n", 400},
        {"two_hosts", "GET /_ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"nul_in_header", std::string("GET /_ping HTTP/1.1\r\nHost: d\r\nX: a\0b\r\n\r\n", 40),
         400},
        {"double_space_request_line", "GET  /_ping HTTP/1.1\r\nHost: d\r\n\r\n", 400},
        {"head_too_large",
         "GET /_ping HTTP/1.1\r\nHost: d\r\nX: " + std::string(70000, 'a') + "\r\n\r\n", 431},
        {"te_in_http10",
         "POST /containers/create HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
    };
    for (const auto& sm : cases) {
        Client c(listen());
        ASSERT_TRUE(c.connected());
        c.send(sm.bytes);
        auto r = c.read();
        EXPECT_EQ(r.status, sm.status) << sm.name << ": " << r.head;
        EXPECT_TRUE(c.eof()) << sm.name;
    }
    for (const auto& got : stub_->received())
        ADD_FAILURE() << "dockerd received " << got.method << " " << got.target;
    auto log = audit_entries();
    EXPECT_EQ(log.size(), cases.size());
    for (const auto& e : log) EXPECT_EQ(e.decision, "error");
}

TEST_F(ProxyTest, ChunkedBodiesAreCheckedAcrossChunkBoundaries) {
    start();
    {
        Client c(listen());
        c.send(
            "POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: "
            "chunked\r\n\r\n"
            "14\r\n{\"HostConfig\":{\"Priv\r\ne\r\nileged\":true}}\r\n0\r\n\r\n");
        auto r = c.read();
        EXPECT_EQ(r.status, 403) << r.body;
    }
    {
        Client c(listen());  // zero-length chunked create: checked as {} and forwarded with
                             // Content-Length: 0
        c.send(
            "POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: "
            "chunked\r\n\r\n0\r\n\r\n");
        auto r = c.read();
        EXPECT_EQ(r.status, 201);
    }
    auto got = stub_->received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].headers["content-length"], "0");
    EXPECT_EQ(got[0].headers.count("transfer-encoding"), 0u);
    EXPECT_EQ(got[0].body, "");
}

TEST_F(ProxyTest, EmptyBodyCannotHideTheNextRequest) {
    start();
    Client c(listen());
    // Content-Length: 0 then JSON: the JSON is the next "request" and is malformed HTTP.
    c.send("POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n" +
           kPrivileged + "\r\n\r\n");
    EXPECT_EQ(c.read().status, 201);
    EXPECT_EQ(c.read().status, 400);
    auto got = stub_->received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].body, "");
}

TEST_F(ProxyTest, BodiesOverTheLimitAreRefusedNotPassedOn) {
    start();
    std::string big = R"({"Image":"a","Env":[")" + std::string(2 << 20, 'x') + R"("]})";
    {
        Client c(listen());
        c.send(req("POST", "/v1.41/containers/create", big));
        auto r = c.read();
        EXPECT_EQ(r.status, 403);
        EXPECT_NE(r.body.find("body-size"), std::string::npos);
    }
    {
        Client c(listen());
        std::string s =
            "POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: "
            "chunked\r\n\r\n";
        for (std::size_t off = 0; off < big.size(); off += 60000) {
            std::string part = big.substr(off, 60000);
            char line[32];
            std::snprintf(line, sizeof line, "%zx\r\n", part.size());
            s += line + part + "\r\n";
        }
        s += "0\r\n\r\n";
        c.send(s);
        auto r = c.read();
        EXPECT_EQ(r.status, 403);
    }
    EXPECT_FALSE(stub_->saw("/containers/create"));
}

TEST_F(ProxyTest, LargeChunkedResponseIsStreamedNotBuffered) {
    start();
    Client c(listen(), 20);
    c.send(req("GET", "/v1.41/containers/c1/logs?follow=1&stdout=1"));
    auto head = c.read(true);
    ASSERT_EQ(head.status, 200);
    // dockerd has sent 4 MiB and now waits: the client must get them before the end.
    std::string first = c.read_chunked(stub_->stream_first);
    EXPECT_EQ(first.size(), stub_->stream_first);
    stub_->release();
    std::string rest = c.read_chunked();
    EXPECT_EQ(rest, "tail");
    c.send(req("GET", "/_ping"));  // the connection is still usable
    EXPECT_EQ(c.read().status, 200);
}

TEST_F(ProxyTest, LargeUploadIsStreamedNotBuffered) {
    start();
    Client c(listen(), 20);
    c.send(
        "POST /v1.41/images/load HTTP/1.1\r\nHost: d\r\nContent-Type: "
        "application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n");
    std::string chunk(1 << 20, 'T');
    for (int i = 0; i < 3; ++i) c.send("100000\r\n" + chunk + "\r\n");
    // dockerd must see the first 3 MiB while the client still holds the rest back.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (stub_->upload_bytes < (3u << 20) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(stub_->upload_bytes.load(), 3u << 20);
    EXPECT_FALSE(stub_->upload_done.load());
    c.send("100000\r\n" + chunk + "\r\n0\r\n\r\n");
    auto r = c.read();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"bytes\":" + std::to_string(4u << 20) + "}");
}

TEST_F(ProxyTest, UpgradeBecomesATunnelOnlyAfter101) {
    start();
    Client c(listen());
    c.send(req("POST", "/v1.41/containers/c1/attach?stream=1&stdin=1&stdout=1", "",
               "Connection: Upgrade\r\nUpgrade: tcp\r\n"));
    auto r = c.read();
    ASSERT_EQ(r.status, 101);
    c.send("hello ");
    EXPECT_EQ(c.raw(6), "HELLO ");
    c.send("GET /_ping HTTP/1.1\r\n\r\n");  // inside a tunnel this is just data
    EXPECT_EQ(c.raw(23), "GET /_PING HTTP/1.1\r\n\r\n");
    c.half_close();
    EXPECT_EQ(c.raw(3), "BYE");
    EXPECT_TRUE(c.eof());
    auto got = stub_->received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].headers["upgrade"], "tcp");
}

TEST_F(ProxyTest, FakeUpgradeWithout101IsNotATunnel) {
    start();
    Client c(listen());
    // dockerd answers 200 (no 101): what follows must still be parsed and checked.
    c.send(req("POST", "/v1.41/containers/no101/attach?stream=1", "",
               "Connection: Upgrade\r\nUpgrade: tcp\r\n") +
           req("POST", "/v1.41/containers/create", kPrivileged));
    EXPECT_EQ(c.read().status, 200);
    auto r = c.read();
    EXPECT_EQ(r.status, 403);
    EXPECT_FALSE(stub_->saw("/containers/create"));
}

TEST_F(ProxyTest, UpgradeHeaderIsDroppedWhereNoUpgradeIsAllowed) {
    start();
    Client c(listen());
    c.send(req("GET", "/_ping", "", "Connection: Upgrade\r\nUpgrade: tcp\r\n"));
    EXPECT_EQ(c.read().status, 200);
    auto got = stub_->received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].headers.count("upgrade"), 0u);
    EXPECT_EQ(got[0].headers.count("connection"), 0u);
}

// dockerd's 200-then-hijack (moby 20.10 postContainersAttach/postContainerExecStart for a
// request without Upgrade): raw bytes both ways after the head, for clients such as
// docker-py or dockerode that do not ask for an upgrade.
void expect_echo_tunnel(Client& c) {
    c.send("hello ");
    EXPECT_EQ(c.raw(6), "HELLO ");
    c.send("GET /_ping HTTP/1.1\r\n\r\n");  // inside a tunnel this is just data
    EXPECT_EQ(c.raw(23), "GET /_PING HTTP/1.1\r\n\r\n");
    c.half_close();
    EXPECT_EQ(c.raw(3), "BYE");
    EXPECT_TRUE(c.eof());
}

TEST_F(ProxyTest, AttachWithoutUpgradeIsATunnelAfterDockerdsHijack) {
    start();
    Client c(listen());
    c.send(req("POST", "/v1.41/containers/c1/attach?stream=1&stdin=1&stdout=1"));
    auto r = c.read(true);
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.head.find("application/vnd.docker.raw-stream"), std::string::npos);
    expect_echo_tunnel(c);
    auto got = stub_->received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].headers.count("upgrade"), 0u);
    EXPECT_EQ(hijacks(), 1u);
}

TEST_F(ProxyTest, ExecStartWithoutUpgradeIsATunnelAfterDockerdsHijack) {
    start();
    Client c(listen());
    // dockerode's body: "hijack" is not an ExecStartCheck field (removed, not refused).
    c.send(req("POST", "/v1.41/exec/e1/start", R"({"Detach":false,"Tty":false,"hijack":true})",
               "Content-Type: application/json\r\n"));
    auto r = c.read(true);
    ASSERT_EQ(r.status, 200);
    expect_echo_tunnel(c);
    auto got = stub_->received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].body, R"({"Detach":false,"Tty":false})");
}

TEST_F(ProxyTest, DetachedExecStartStaysHttp) {
    start();
    Client c(listen());
    c.send(req("POST", "/v1.41/exec/e1/start", R"({"Detach":true})",
               "Content-Type: application/json\r\n") +
           req("POST", "/v1.41/containers/create", kPrivileged));
    EXPECT_EQ(c.read().status, 200);
    EXPECT_EQ(c.read().status, 403);
    EXPECT_FALSE(stub_->saw("/containers/create"));
}

TEST_F(ProxyTest, RawStream200WithFramingIsNotAHijack) {
    start();
    Client c(listen());
    c.send(req("POST", "/v1.41/exec/framed/start", "{}", "Content-Type: application/json\r\n") +
           req("POST", "/v1.41/containers/create", kPrivileged));
    auto r = c.read();
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.head.find("raw-stream"), std::string::npos);
    auto r2 = c.read();
    EXPECT_EQ(r2.status, 403);
    EXPECT_NE(r2.body.find("privileged"), std::string::npos) << r2.body;
    EXPECT_FALSE(stub_->saw("/containers/create"));
    EXPECT_EQ(hijacks(), 0u);
}

TEST_F(ProxyTest, RawStream200OnARouteThatNeverHijacksIsNotATunnel) {
    start();
    Client c(listen());
    c.send(req("POST", "/v1.41/containers/fakehijack/wait"));
    auto r = c.read(true);
    ASSERT_EQ(r.status, 200);
    // Not a tunnel: a body until dockerd closes; what the client sends meanwhile is
    // neither forwarded as data nor as a request.
    c.send(req("POST", "/v1.41/containers/create", kPrivileged));
    std::string body;
    while (c.more()) {
    }
    body = c.raw(1000);
    EXPECT_EQ(body, "hello");
    EXPECT_EQ(stub_->stray_bytes(), "");
    EXPECT_FALSE(stub_->saw("/containers/create"));
    EXPECT_EQ(hijacks(), 0u);
    for (const auto& e : audit_entries()) EXPECT_EQ(e.operation, "container.wait");
}

TEST_F(ProxyTest, HijackHeadAfterAnUpgradeRequestIsNotATunnel) {
    start();
    Client c(listen(), 1);
    // The request carried Upgrade: dockerd answers 101, never the 200 hijack head.
    c.send(req("POST", "/v1.41/containers/raw200/attach?stream=1", "",
               "Connection: Upgrade\r\nUpgrade: tcp\r\n"));
    auto r = c.read(true);
    ASSERT_EQ(r.status, 200);
    c.send("abc");
    EXPECT_EQ(c.raw(3), "");  // not forwarded, so nothing echoed
    EXPECT_EQ(hijacks(), 0u);
}

TEST_F(ProxyTest, DockerodeSessionWithAnEmptyChunkedBodyBecomesATunnel) {
    start();
    Client c(listen());
    // docker-modem's hijack request: Transfer-Encoding chunked, an empty body, then h2c.
    c.send(
        "POST /session HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        "X-Docker-Expose-Session-Uuid: 3f1c\r\nX-Docker-Expose-Session-Name: testcontainers\r\n"
        "X-Docker-Expose-Session-Grpc-Method: /moby.filesync.v1.Auth/Credentials\r\n"
        "X-Docker-Expose-Session-Grpc-Method: /moby.buildkit.secrets.v1.Secrets/GetSecret\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    auto r = c.read();
    ASSERT_EQ(r.status, 101);
    expect_echo_tunnel(c);
    auto got = stub_->received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].headers["upgrade"], "h2c");
    EXPECT_EQ(got[0].headers["content-length"], "0");
    EXPECT_EQ(got[0].headers.count("transfer-encoding"), 0u);
    EXPECT_EQ(got[0].headers["x-docker-expose-session-uuid"], "3f1c");
}

TEST_F(ProxyTest, AttachBodyIsDroppedAndTheUpgradeStillHappens) {
    start();
    Client c(listen());
    // dockerode sends the query options again as a JSON body; dockerd never reads it.
    c.send(req("POST", "/v1.41/containers/c1/attach?stream=1&stdin=1",
               R"({"stream":true,"stdin":true})",
               "Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"));
    ASSERT_EQ(c.read().status, 101);
    expect_echo_tunnel(c);
    auto got = stub_->received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].body, "");
}

TEST_F(ProxyTest, AttachBodyOverTheLimitIsRefused) {
    PolicyConfig cfg;
    cfg.max_inspect_body = 4096;
    start(cfg);
    Client c(listen());
    c.send(req("POST", "/v1.41/containers/c1/attach?stream=1", std::string(5000, 'x'),
               "Connection: Upgrade\r\nUpgrade: tcp\r\n"));
    auto r = c.read();
    EXPECT_EQ(r.status, 403);
    EXPECT_NE(r.body.find("body-size"), std::string::npos) << r.body;
    EXPECT_FALSE(stub_->saw("/attach"));
    auto log = audit_entries();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0].decision, "deny");
    EXPECT_EQ(log[0].rule, "body-size");
    EXPECT_NE(log[0].message.find("4096-byte limit"), std::string::npos) << log[0].message;
}

TEST_F(ProxyTest, SocketMountAllowlistIsMatchedByDigestAndRewritten) {
    PolicyConfig cfg;
    cfg.socket_image_allowlist = {"sha256:" + std::string(64, 'a')};
    start(cfg);
    auto body = [&](const std::string& image) {
        return R"({"Image":")" + image + R"(","HostConfig":{"Binds":[")" + upstream() +
               R"(:/var/run/docker.sock"]}})";
    };
    {
        Client c(listen());
        c.send(req("POST", "/v1.41/containers/create", body("allowed:1")));
        auto r = c.read();
        EXPECT_EQ(r.status, 201) << r.body;
        // dockerd got the container-facing socket, never its own, and the pinned image
        EXPECT_NE(r.body.find(container_listen() + ":/var/run/docker.sock"), std::string::npos)
            << r.body;
        EXPECT_NE(r.body.find("sha256:" + std::string(64, 'a')), std::string::npos) << r.body;
    }
    {
        Client c(listen());
        c.send(req("POST", "/v1.41/containers/create", body("evil:1")));
        auto r = c.read();
        EXPECT_EQ(r.status, 403);
        EXPECT_NE(r.body.find("bind-mount.docker-socket"), std::string::npos) << r.body;
    }
    {
        Client c(listen());
        c.send(req("POST", "/v1.41/containers/create", body("missing:1")));
        auto r = c.read();
        EXPECT_EQ(r.status, 404);
        EXPECT_NE(r.body.find("No such image: missing:1"), std::string::npos) << r.body;
    }
    EXPECT_TRUE(stub_->saw("/images/allowed:1/json"));
    int creates = 0;
    for (const auto& g : stub_->received())
        creates += g.target.find("/containers/create") != std::string::npos;
    EXPECT_EQ(creates, 1);
}

TEST_F(ProxyTest, ContainerSocketAppliesCommandList) {
    PolicyConfig cfg;
    cfg.command_list = {CommandList::Type::deny, {"image.push"}};
    start(cfg);
    Client c(container_listen());
    c.send(req("POST", "/v1.41/images/app/push"));
    auto r = c.read();
    EXPECT_EQ(r.status, 403);
    EXPECT_NE(r.body.find("command-list"), std::string::npos);
    Client h(listen());
    h.send(req("POST", "/v1.41/images/app/push"));
    EXPECT_EQ(h.read().status, 200);  // the host user is not limited by commandList
}

TEST_F(ProxyTest, IsolationOffForwardsButStillParsesStrictly) {
    PolicyConfig cfg;
    cfg.isolation = false;
    start(cfg);
    Client c(listen());
    c.send(req("POST", "/v1.41/containers/create", kPrivileged));
    EXPECT_EQ(c.read().status, 201);
    Client d(listen());
    d.send(
        "POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\nTransfer-Encoding: "
        "chunked\r\n\r\n{}");
    EXPECT_EQ(d.read().status, 400);
}

TEST_F(ProxyTest, ExpectContinueHttp10AndUpstreamDown) {
    start();
    {
        Client c(listen());
        c.send(
            "POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nExpect: "
            "100-continue\r\nContent-Length: " +
            std::to_string(kPlain.size()) + "\r\n\r\n");
        EXPECT_EQ(c.read().status, 100);
        c.send(kPlain);
        EXPECT_EQ(c.read().status, 201);
    }
    {
        Client c(listen());
        c.send("GET /_ping HTTP/1.0\r\n\r\n");
        EXPECT_EQ(c.read().status, 200);
        EXPECT_TRUE(c.eof());
    }
    stub_.reset();  // dockerd is gone
    Client c(listen());
    c.send(req("GET", "/_ping"));
    auto r = c.read();
    EXPECT_EQ(r.status, 502);
    EXPECT_NE(r.body.find("cannot reach dockerd"), std::string::npos);
}

TEST_F(ProxyTest, AuditFileGetsOneJsonLinePerDecision) {
    start();
    {
        Client c(listen());
        c.send(req("GET", "/_ping") + req("POST", "/v1.41/plugins/pull?remote=x"));
        EXPECT_EQ(c.read().status, 200);
        EXPECT_EQ(c.read().status, 403);
    }
    auto entries = audit_entries();
    stop();
    std::ifstream in(audit_path());
    std::vector<nlohmann::json> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(nlohmann::json::parse(l));
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0]["decision"], "allow");
    EXPECT_EQ(lines[0]["operation"], "system.ping");
    EXPECT_EQ(lines[1]["decision"], "deny");
    EXPECT_EQ(lines[1]["rule"], "plugin");
    EXPECT_EQ(entries.size(), 2u);
}

TEST_F(ProxyTest, StaleSocketIsReplacedAndAFileInTheWayIsAnError) {
    { std::ofstream(listen()) << "not a socket"; }
    AuditLog a;
    boost::asio::io_context io;
    PolicyProxy p(io, listen(), upstream(), PolicyConfig{}, a);
    try {
        p.start();
        FAIL() << "start() should refuse a regular file in the way";
    } catch (const cordon::Error& e) {
        EXPECT_EQ(e.subject(), listen());
    }
    fs::remove(listen());
    start();  // a normal start works, and stop() removes the socket
    stop();
    EXPECT_FALSE(fs::exists(listen()));
}

}  // namespace

namespace {

// The real docker CLI against the proxy: refusals must come back as messages the CLI
// prints. The same table (cli_refusals.hpp) runs against the VM's real dockerd in
// tests/e2e/proxy (e2e_shared_vm_test).
std::string find_docker() {
    for (const char* p : {"/usr/local/bin/docker", "/usr/bin/docker"})
        if (::access(p, X_OK) == 0)
            return p;
    return {};
}

std::string run_cli(const std::string& docker, const std::string& host, const std::string& args) {
    std::string cmd = "DOCKER_HOST='" + host +
                      "' DOCKER_CONFIG=/nonexistent-cordon-docker-config timeout 30 " + docker +
                      " " + args + " 2>&1";
    std::string out;
    if (FILE* f = ::popen(cmd.c_str(), "r")) {
        char buf[4096];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
        ::pclose(f);
    }
    return out;
}

TEST_F(ProxyTest, RealDockerCliPrintsTheRefusals) {
    std::string docker = find_docker();
    if (docker.empty())
        GTEST_SKIP() << "no docker CLI on this machine";
    std::string host = "unix://" + listen();
    start();
    for (const auto& c : cordon::testing::kCliRefusals) {
        if (c.needs_engine)
            continue;  // e2e_shared_vm_test runs these against the VM's dockerd
        std::string out = run_cli(docker, host, cordon::testing::with_image(c.args, "busybox"));
        EXPECT_NE(out.find(std::string("[rule ") + c.rule), std::string::npos)
            << "docker " << c.args << "\n"
            << out;
        EXPECT_NE(out.find("enhanced container isolation is on"), std::string::npos)
            << "docker " << c.args;
    }
    EXPECT_FALSE(stub_->saw("/containers/create"));
    EXPECT_FALSE(stub_->saw("/volumes/create"));
}

}  // namespace

namespace {

TEST_F(ProxyTest, DockerdRestartIsTransparentToAKeptAliveClient) {
    start();
    Client c(listen());
    c.send(req("GET", "/_ping"));
    EXPECT_EQ(c.read().status, 200);
    stub_.reset();  // dockerd restarts: the proxy's kept-alive upstream connection dies
    stub_ = std::make_unique<StubDockerd>(upstream());
    c.send(req("POST", "/v1.41/containers/create", kPlain));
    auto r = c.read();
    EXPECT_EQ(r.status, 201);
    EXPECT_EQ(r.body, kPlain);
    c.send(req("GET", "/_ping"));
    EXPECT_EQ(c.read().status, 200);
    EXPECT_EQ(stub_->received().size(), 2u);
}

}  // namespace

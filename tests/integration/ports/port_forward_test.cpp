// Published ports end to end without a VM: a stub dockerd (HTTP/1.0 over a unix socket:
// /events, /containers/json, /containers/{id}/json), the guest agent's real PortService
// and EngineWatcher, a real channel session over a socketpair, and the host agent's real
// PortForwarder listening on 127.0.0.1/[::1]. The "docker-proxy" is a TCP echo server on
// 127.0.0.2 (the binding's HostIp), so it does not collide with the host listener.
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "cordon/atomic_file.hpp"
#include "cordon/channel/session.hpp"
#include "cordon/ports/port_service.hpp"
#include "cordon/rpc/rpc.hpp"
#include "port_forwarder.hpp"
#include "ports_fixture.hpp"

namespace asio = boost::asio;
using boost::system::error_code;
using nlohmann::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

using namespace cordon::test_ports;

json inspect_doc(const std::string& name, const std::string& ip, std::uint16_t host_port,
                 bool running = true) {
    return {
        {"Name", "/" + name},
        {"State", {{"Running", running}}},
        {"NetworkSettings",
         {{"Ports", {{"80/tcp", {{{"HostIp", ip}, {"HostPort", std::to_string(host_port)}}}}}}}}};
}

// A blocking TCP client: connects, sends, reads until EOF. Empty optional when refused.
std::optional<std::string> talk(const std::string& ip, std::uint16_t port, const std::string& msg) {
    const bool v6 = ip.find(':') != std::string::npos;
    int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return std::nullopt;
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rc;
    if (v6) {
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        ::inet_pton(AF_INET6, ip.c_str(), &a.sin6_addr);
        rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
        rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    if (rc != 0) {
        ::close(fd);
        return std::nullopt;
    }
    (void)!::write(fd, msg.data(), msg.size());
    ::shutdown(fd, SHUT_WR);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

class PortForwardTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ =
            std::filesystem::temp_directory_path() / ("cordon-ports-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        state_file_ = dir_ / "ports.json";
        // The "docker-proxy": echoes with a prefix, on 127.0.0.2:<free port>.
        echo_ = std::make_unique<tcp::acceptor>(
            io_, tcp::endpoint(asio::ip::make_address("127.0.0.2"), 0));
        port_ = echo_->local_endpoint().port();
        serve_echo();
        dockerd_ = std::make_unique<StubDockerd>(io_, (dir_ / "dockerd.sock").string());
        dockerd_->containers["web1"] = inspect_doc("web", "127.0.0.2", port_);

        ports_ =
            std::make_unique<cordon::ports::PortService>(io_, (dir_ / "dockerd.sock").string());
        ports_->register_methods(rpc_);
        cordon::hostagent::ForwardOptions fo;
        fo.state_file = state_file_;
        fo.retry_interval = 300ms;
        fo.grace = 500ms;
        fwd_ = std::make_unique<cordon::hostagent::PortForwarder>(io_, fo);
        connect_sessions();
        ports_->start();
        thread_ = std::thread([this] { io_.run(); });
    }
    void TearDown() override {
        on_io([this] {
            fwd_->stop();
            ports_->stop();
            if (host_)
                host_->close("test ends");
            if (guest_)
                guest_->close("test ends");
            dockerd_->drop_event_streams();
            io_.stop();
        });
        thread_.join();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    void connect_sessions() {
        cordon::test_ports::connect_port_sessions(io_, rpc_, *ports_, *fwd_, guest_, host_);
    }

    void serve_echo() {
        echo_->async_accept([this](error_code ec, tcp::socket s) {
            if (ec)
                return;
            auto sock = std::make_shared<tcp::socket>(std::move(s));
            auto buf = std::make_shared<std::string>();
            auto chunk = std::make_shared<std::array<char, 4096>>();
            auto read = std::make_shared<std::function<void()>>();
            *read = [sock, buf, chunk, weak = std::weak_ptr(read)] {  // weak: no cycle
                auto self = weak.lock();
                sock->async_read_some(
                    asio::buffer(*chunk), [sock, buf, chunk, self](error_code rec, std::size_t n) {
                        if (!rec) {
                            buf->append(chunk->data(), n);
                            return (*self)();
                        }
                        auto out = std::make_shared<std::string>("echo:" + *buf);
                        asio::async_write(*sock, asio::buffer(*out),
                                          [sock, out](error_code, std::size_t) {
                                              error_code ignored;
                                              sock->shutdown(tcp::socket::shutdown_send, ignored);
                                          });
                    });
            };
            (*read)();
            serve_echo();
        });
    }

    template <typename F>
    void on_io(F f) {
        std::promise<void> done;
        asio::post(io_, [&] {
            f();
            done.set_value();
        });
        done.get_future().wait();
    }

    std::string port_state(std::uint16_t port) {
        auto p = find_port(read_state(state_file_), port);
        return p.is_object() ? p.value("state", "") : "";
    }

    asio::io_context io_;
    std::filesystem::path dir_, state_file_;
    std::unique_ptr<tcp::acceptor> echo_;
    std::uint16_t port_ = 0;
    std::unique_ptr<StubDockerd> dockerd_;
    cordon::rpc::Server rpc_{io_, "rpc"};
    std::unique_ptr<cordon::ports::PortService> ports_;
    std::unique_ptr<cordon::hostagent::PortForwarder> fwd_;
    std::shared_ptr<cordon::channel::Session> guest_, host_;
    std::thread thread_;
};

}  // namespace

TEST_F(PortForwardTest, ForwardsARunningContainersPortAndClosesItWhenItDies) {
    ASSERT_TRUE(wait_for([&] { return port_state(port_) == "listening"; }))
        << read_state(state_file_).dump(2);
    auto st = read_state(state_file_);
    EXPECT_EQ(st["guest"], "connected");
    EXPECT_EQ(find_port(st, port_)["container_name"], "web");

    auto r = talk("127.0.0.1", port_, "hello");
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, "echo:hello");
    if (have_ipv6_loopback()) {
        auto r6 = talk("::1", port_, "six");
        ASSERT_TRUE(r6);
        EXPECT_EQ(*r6, "echo:six");
    }
    // Many connections at once, each its own stream.
    std::vector<std::future<std::optional<std::string>>> fs;
    for (int i = 0; i < 8; ++i)
        fs.push_back(std::async(std::launch::async, [&, i] {
            return talk("127.0.0.1", port_, std::string(100'000 + i, 'x'));
        }));
    for (int i = 0; i < 8; ++i) {
        auto v = fs[static_cast<std::size_t>(i)].get();
        ASSERT_TRUE(v);
        EXPECT_EQ(v->size(), 5u + 100'000u + static_cast<unsigned>(i));
    }

    // The container dies: the listener goes away.
    on_io([&] {
        dockerd_->containers["web1"]["State"]["Running"] = false;
        dockerd_->event("die", "web1");
    });
    ASSERT_TRUE(wait_for([&] { return port_state(port_).empty(); }))
        << read_state(state_file_).dump(2);
    EXPECT_FALSE(talk("127.0.0.1", port_, "gone"));

    // It starts again: start event -> inspect -> listening again.
    on_io([&] {
        dockerd_->containers["web1"]["State"]["Running"] = true;
        dockerd_->event("start", "web1");
    });
    ASSERT_TRUE(wait_for([&] { return port_state(port_) == "listening"; }));
    EXPECT_EQ(talk("127.0.0.1", port_, "again").value_or(""), "echo:again");
}

TEST_F(PortForwardTest, ATakenHostPortIsReportedAndRetried) {
    ASSERT_TRUE(wait_for([&] { return port_state(port_) == "listening"; }));
    // Another program holds 127.0.0.1:<q>.
    tcp::acceptor other(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const std::uint16_t q = other.local_endpoint().port();
    on_io([&] {
        dockerd_->containers["busy2"] = inspect_doc("busy", "127.0.0.2", q);
        dockerd_->event("start", "busy2");
    });
    ASSERT_TRUE(wait_for([&] {
        const auto s = port_state(q);
        return s == "failed" || s == "partial";
    })) << read_state(state_file_).dump(2);
    auto p = find_port(read_state(state_file_), q);
    EXPECT_NE(p.value("error", "").find("already in use on 127.0.0.1"), std::string::npos)
        << p.dump(2);
    EXPECT_FALSE(p.value("hint", "").empty());
    // The other program goes away: the retry picks the port up.
    other.close();
    ASSERT_TRUE(wait_for([&] { return port_state(q) == "listening"; }))
        << read_state(state_file_).dump(2);
}

TEST_F(PortForwardTest, ResyncsAfterDockerdRestartsAndAfterTheChannelReconnects) {
    ASSERT_TRUE(wait_for([&] { return port_state(port_) == "listening"; }));
    // dockerd restarts (an isolation switch): the event stream ends, the set empties, the
    // watcher reconnects and lists again.
    on_io([&] { dockerd_->drop_event_streams(); });
    ASSERT_TRUE(wait_for([&] {
        std::promise<std::size_t> n;
        on_io([&] { n.set_value(dockerd_->event_streams()); });
        return n.get_future().get() == 1;
    }));
    ASSERT_TRUE(wait_for([&] { return port_state(port_) == "listening"; }));

    // The channel goes down and comes back (a new host session): listeners survive the
    // grace period only if the guest comes back; it does, with the same set.
    on_io([&] {
        fwd_->detach("test: channel down");
        host_->close("test");
        guest_->close("test");
    });
    EXPECT_EQ(read_state(state_file_)["guest"], "disconnected");
    on_io([&] { connect_sessions(); });
    ASSERT_TRUE(wait_for([&] {
        auto s = read_state(state_file_);
        return s.is_object() && s["guest"] == "connected" && port_state(port_) == "listening";
    })) << read_state(state_file_).dump(2);
    EXPECT_EQ(talk("127.0.0.1", port_, "back").value_or(""), "echo:back");
}

// A host agent that is not root may not listen below 1024: the port is reported with the
// reason and what to do, not skipped. Run in a child process that drops to nobody.
TEST(PortForwardPrivileged, APortBelow1024IsReportedWhenNotRoot) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to drop to nobody";
    {
        std::ifstream in("/proc/sys/net/ipv4/ip_unprivileged_port_start");
        int start = 1024;
        in >> start;
        if (start <= 80)
            GTEST_SKIP() << "net.ipv4.ip_unprivileged_port_start is " << start;
    }
    const auto dir = std::filesystem::temp_directory_path() /
                     ("cordon-ports-priv-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::filesystem::permissions(dir, std::filesystem::perms::all);
    const auto state_file = dir / "ports.json";
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0)
            ::_exit(3);
        asio::io_context io;
        StubDockerd dockerd(io, (dir / "dockerd.sock").string());
        dockerd.containers["priv1"] = inspect_doc("priv", "127.0.0.2", 80);
        cordon::rpc::Server rpc(io, "rpc");
        cordon::ports::PortService ports(io, (dir / "dockerd.sock").string());
        ports.register_methods(rpc);
        cordon::hostagent::ForwardOptions fo;
        fo.state_file = state_file;
        cordon::hostagent::PortForwarder fwd(io, fo);
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            ::_exit(4);
        cordon::channel::SessionOptions go;
        go.role = cordon::channel::Role::guest;
        auto guest = cordon::channel::Session::create(io, cordon::UniqueFd(sv[0]), go);
        guest->set_stream_handler(
            [&](std::shared_ptr<cordon::channel::Stream> st, const std::string& svc) {
                if (svc == "rpc")
                    rpc.serve(std::move(st));
            });
        guest->start([](error_code, const cordon::channel::PeerInfo&) {});
        cordon::channel::SessionOptions ho;
        ho.role = cordon::channel::Role::host;
        auto host = cordon::channel::Session::create(io, cordon::UniqueFd(sv[1]), ho);
        host->start([&](error_code ec, const cordon::channel::PeerInfo&) {
            if (!ec)
                fwd.attach(host);
        });
        ports.start();
        const auto end = std::chrono::steady_clock::now() + 15s;
        while (std::chrono::steady_clock::now() < end) {
            io.run_for(50ms);
            auto p = find_port(read_state(state_file), 80);
            if (p.is_object() && p.value("state", "") == "failed")
                ::_exit(0);
        }
        ::_exit(1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    const json st = read_state(state_file);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status << "\n"
                                                               << st.dump(2);
    const json p = find_port(st, 80);
    EXPECT_NE(p.value("error", "").find("below 1024"), std::string::npos) << p.dump(2);
    EXPECT_NE(p.value("hint", "").find("cap_net_bind_service"), std::string::npos) << p.dump(2);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

// Published UDP ports end to end without a VM: the stub dockerd reports a container
// publishing <P>/udp on 127.0.0.2; the guest agent's real PortService relays each
// "port:udp:<P>" stream through a UDP socket connected to a real UDP echo server on
// 127.0.0.2:<P> (the "docker-proxy"); the host agent's real PortForwarder binds
// 127.0.0.1:<P> and [::1]:<P>; a real channel session over a socketpair joins them.
// Clients are plain blocking UDP sockets.
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <optional>
#include <thread>

#include "cordon/channel/session.hpp"
#include "cordon/ports/port_service.hpp"
#include "cordon/ports/udp_framing.hpp"
#include "cordon/rpc/rpc.hpp"
#include "port_forwarder.hpp"
#include "ports_fixture.hpp"

using namespace cordon::test_ports;
using udp = boost::asio::ip::udp;

namespace {

json udp_container(const std::string& name, std::uint16_t port) {
    return {{"Name", "/" + name},
            {"State", {{"Running", true}}},
            {"NetworkSettings",
             {{"Ports",
               {{std::to_string(port) + "/udp",
                 {{{"HostIp", "127.0.0.2"}, {"HostPort", std::to_string(port)}}}}}}}}};
}

// A blocking UDP client connected to ip:port (its own source port: its own flow).
class Client {
  public:
    Client(const std::string& ip, std::uint16_t port) {
        const bool v6 = ip.find(':') != std::string::npos;
        fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (v6) {
            sockaddr_in6 a{};
            a.sin6_family = AF_INET6;
            a.sin6_port = htons(port);
            ::inet_pton(AF_INET6, ip.c_str(), &a.sin6_addr);
            ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        } else {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
            ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        }
        int big = 1 << 20;
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    }
    ~Client() { ::close(fd_); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    bool send(const std::string& d) {
        return ok_ && ::send(fd_, d.data(), d.size(), 0) == static_cast<ssize_t>(d.size());
    }
    // The next datagram, or nullopt after `wait`.
    std::optional<std::string> recv(std::chrono::milliseconds wait = 5000ms) {
        timeval tv{static_cast<time_t>(wait.count() / 1000),
                   static_cast<suseconds_t>((wait.count() % 1000) * 1000)};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::string buf(70'000, '\0');
        for (;;) {
            const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
            if (n >= 0)
                return buf.substr(0, static_cast<std::size_t>(n));
            if (errno != ECONNREFUSED)  // an earlier ICMP error: try again
                return std::nullopt;
        }
    }
    // Sends and waits for the reply; resends a few times (UDP may drop under load).
    std::optional<std::string> ask(const std::string& d, int tries = 3) {
        for (int i = 0; i < tries; ++i) {
            if (!send(d))
                return std::nullopt;
            if (auto r = recv(3000ms))
                return r;
        }
        return std::nullopt;
    }

  private:
    int fd_ = -1;
    bool ok_ = false;
};

class UdpForwardTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("cordon-udp-ports-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        state_file_ = dir_ / "ports.json";
        // The "docker-proxy": a UDP echo server on 127.0.0.2:<free port>.
        echo_ = std::make_unique<udp::socket>(
            io_, udp::endpoint(asio::ip::make_address("127.0.0.2"), 0));
        port_ = echo_->local_endpoint().port();
        serve_echo();
        dockerd_ = std::make_unique<StubDockerd>(io_, (dir_ / "dockerd.sock").string());
        dockerd_->containers["dns1"] = udp_container("dns", port_);

        ports_ =
            std::make_unique<cordon::ports::PortService>(io_, (dir_ / "dockerd.sock").string());
        ports_->register_methods(rpc_);
        cordon::hostagent::ForwardOptions fo;
        fo.state_file = state_file_;
        fo.retry_interval = 300ms;
        fo.grace = 500ms;
        fo.udp_idle = 3000ms;
        fo.udp_max_flows = 3;
        fwd_ = std::make_unique<cordon::hostagent::PortForwarder>(io_, fo);
        connect_sessions();
        ports_->start();
        thread_ = std::thread([this] { io_.run(); });
        ASSERT_TRUE(wait_for([&] { return host_state()["state"] == "listening"; }))
            << read_state(state_file_).dump(2);
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
            if (echo_)
                echo_->close();
            io_.stop();
        });
        thread_.join();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    void connect_sessions() {
        cordon::test_ports::connect_port_sessions(io_, rpc_, *ports_, *fwd_, guest_, host_);
    }

    // Echoes "echo:" + payload to the sender; counts what it saw.
    void serve_echo() {
        echo_->async_receive_from(
            asio::buffer(echo_buf_), echo_from_, [this](error_code ec, std::size_t n) {
                if (ec == asio::error::operation_aborted || !echo_->is_open())
                    return;
                if (!ec) {
                    ++echoed_;
                    auto out =
                        std::make_shared<std::string>("echo:" + std::string(echo_buf_.data(), n));
                    error_code ignored;
                    echo_->send_to(asio::buffer(*out), echo_from_, 0, ignored);
                }
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

    // The forwarder's live entry for our port (state() read on the io thread).
    json host_state() {
        json st;
        on_io([&] { st = fwd_->state(); });
        return find_port(st, port_);
    }
    json guest_udp() {
        json st;
        on_io([&] { st = ports_->status()["udp"]; });
        return st;
    }

    asio::io_context io_;
    std::filesystem::path dir_, state_file_;
    std::unique_ptr<udp::socket> echo_;
    std::array<char, 70'000> echo_buf_{};
    udp::endpoint echo_from_;
    std::uint64_t echoed_ = 0;
    std::uint16_t port_ = 0;
    std::unique_ptr<StubDockerd> dockerd_;
    cordon::rpc::Server rpc_{io_, "rpc"};
    std::unique_ptr<cordon::ports::PortService> ports_;
    std::unique_ptr<cordon::hostagent::PortForwarder> fwd_;
    std::shared_ptr<cordon::channel::Session> guest_, host_;
    std::thread thread_;
};

}  // namespace

TEST_F(UdpForwardTest, ManyDatagramsAndEachClientGetsItsOwnReplies) {
    const json p = host_state();
    EXPECT_EQ(p["proto"], "udp");
    EXPECT_EQ(p["container_name"], "dns");
    EXPECT_EQ(read_state(state_file_).value("ports", json::array()).size(), 1u);
    EXPECT_EQ(find_port(read_state(state_file_), port_)["state"], "listening");

    // Two clients at once, each in lockstep: every reply is the client's own.
    auto run = [&](const std::string& who, int n) {
        Client c("127.0.0.1", port_);
        int ok = 0;
        for (int i = 0; i < n; ++i) {
            const std::string msg = who + "-" + std::to_string(i);
            auto r = c.ask(msg);
            if (!r)
                return testing::AssertionFailure() << who << ": no reply to " << msg;
            // A late echo of a resent datagram may come first: skip anything older.
            while (r && *r != "echo:" + msg) r = c.recv(3000ms);
            if (!r)
                return testing::AssertionFailure() << who << ": wrong reply to " << msg;
            ++ok;
        }
        return ok == n ? testing::AssertionSuccess() : testing::AssertionFailure();
    };
    auto a = std::async(std::launch::async, run, "alpha", 300);
    auto b = std::async(std::launch::async, run, "beta", 300);
    EXPECT_TRUE(a.get());
    EXPECT_TRUE(b.get());

    // Sizes: empty, the largest IPv4 UDP payload the echo can still answer, in one flow.
    Client c("127.0.0.1", port_);
    EXPECT_EQ(c.ask("").value_or("?"), "echo:");
    const std::string big(cordon::ports::kMaxUdpPayload - 5, 'b');
    EXPECT_EQ(c.ask(big).value_or("?"), "echo:" + big);
    // A burst without waiting: the flow's queue carries it (loopback drops nothing here).
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(c.send("burst" + std::to_string(i)));
    int got = 0;
    while (c.recv(2000ms)) ++got;
    EXPECT_GE(got, 95);

    if (have_ipv6_loopback()) {
        Client c6("::1", port_);
        EXPECT_EQ(c6.ask("six").value_or("?"), "echo:six");
    }
    const json u = guest_udp();
    EXPECT_EQ(u["flows"], have_ipv6_loopback() ? 4 : 3) << u.dump();
    EXPECT_GE(u["datagrams_in"].get<std::uint64_t>(), 600u + 2u + 100u);
    const json h = host_state();
    EXPECT_EQ(h["connections"], u["flows"]) << h.dump(2);
    EXPECT_GE(h["udp"]["datagrams_out"].get<std::uint64_t>(), 600u);
}

TEST_F(UdpForwardTest, AnIdleFlowIsClosedAndTheCapRefusesNewClients) {
    Client a("127.0.0.1", port_), b("127.0.0.1", port_), c("127.0.0.1", port_);
    EXPECT_EQ(a.ask("a").value_or("?"), "echo:a");
    EXPECT_EQ(b.ask("b").value_or("?"), "echo:b");
    EXPECT_EQ(c.ask("c").value_or("?"), "echo:c");
    ASSERT_EQ(host_state()["udp"]["active_flows"], 3);
    // A fourth client is over the cap (3): its datagram is dropped, counted.
    Client d("127.0.0.1", port_);
    ASSERT_TRUE(d.send("d"));
    EXPECT_FALSE(d.recv(500ms));
    EXPECT_EQ(host_state()["udp"]["capped"], 1);
    EXPECT_EQ(host_state()["udp"]["active_flows"], 3);

    // Everyone is quiet for the idle time (3 s): every flow and its stream closes on
    // both sides.
    ASSERT_TRUE(wait_for([&] { return host_state()["udp"]["active_flows"] == 0; }, 10s))
        << host_state().dump(2);
    ASSERT_TRUE(wait_for([&] { return guest_udp()["active_flows"] == 0; }, 10s))
        << guest_udp().dump(2);
    EXPECT_GE(host_state()["udp"]["expired_flows"].get<int>(), 3);
    // Now the fourth client gets a flow; an old client gets a new one.
    EXPECT_EQ(d.ask("d2").value_or("?"), "echo:d2");
    EXPECT_EQ(a.ask("a2").value_or("?"), "echo:a2");
    EXPECT_EQ(guest_udp()["flows"], 5);
}

TEST_F(UdpForwardTest, TheGuestRefusesPortsNoContainerPublishesAndBadFraming) {
    // Opened straight on the host session, as a rogue host would.
    auto open = [&](const std::string& service) {
        std::promise<std::pair<error_code, std::string>> res;
        on_io([&] {
            host_->open(service, [&](error_code ec, std::shared_ptr<cordon::channel::Stream> s) {
                res.set_value({ec, s ? s->reset_reason() : ""});
            });
        });
        return res.get_future().get();
    };
    const std::uint16_t other = port_ == 65535 ? 1 : port_ + 1;
    auto [ec, why] = open("port:udp:" + std::to_string(other));
    EXPECT_TRUE(ec);
    EXPECT_NE(why.find("no running container publishes udp port " + std::to_string(other)),
              std::string::npos)
        << why;
    // Published as UDP only: no TCP service for it.
    auto [ec2, why2] = open("port:tcp:" + std::to_string(port_));
    EXPECT_TRUE(ec2);
    EXPECT_NE(why2.find("tcp port"), std::string::npos) << why2;
    auto [ec3, why3] = open("port:sctp:" + std::to_string(port_));
    EXPECT_TRUE(ec3);
    EXPECT_NE(why3.find("only TCP and UDP"), std::string::npos) << why3;

    // A length over 65507 is a protocol error: the guest resets with the reason.
    std::promise<std::string> reset;
    std::shared_ptr<cordon::channel::Stream> stream;
    auto buf = std::make_shared<std::array<char, 64>>();
    auto bad = std::make_shared<std::string>(std::string("\xff\xf0", 2) + "xx");
    on_io([&] {
        host_->open("port:udp:" + std::to_string(port_),
                    [&, buf, bad](error_code oec, std::shared_ptr<cordon::channel::Stream> s) {
                        if (oec) {
                            reset.set_value("open failed: " + oec.message());
                            return;
                        }
                        stream = s;
                        s->async_write(asio::buffer(*bad), [](error_code, std::size_t) {});
                        s->async_read_some(asio::buffer(*buf), [&, s](error_code rec, std::size_t) {
                            reset.set_value(rec ? s->reset_reason() : "read data");
                        });
                    });
    });
    auto f = reset.get_future();
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    const std::string r = f.get();
    EXPECT_NE(r.find("protocol error"), std::string::npos) << r;
    EXPECT_NE(r.find("65520"), std::string::npos) << r;
    on_io([&] { stream.reset(); });
    // The forwarder still works.
    Client c("127.0.0.1", port_);
    EXPECT_EQ(c.ask("still").value_or("?"), "echo:still");
}

TEST_F(UdpForwardTest, NothingListeningInTheVmKeepsTheFlow) {
    Client c("127.0.0.1", port_);
    EXPECT_EQ(c.ask("one").value_or("?"), "echo:one");
    // The "docker-proxy" goes away: the guest's connected socket gets ICMP port
    // unreachable (ECONNREFUSED). No reply, no crash, the flow stays.
    on_io([&] { echo_->close(); });
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(c.send("void" + std::to_string(i)));
        EXPECT_FALSE(c.recv(200ms));
    }
    ASSERT_TRUE(wait_for([&] { return guest_udp()["refused"].get<int>() >= 1; }))
        << guest_udp().dump();
    EXPECT_EQ(guest_udp()["active_flows"], 1);
    // It comes back on the same address: the same flow carries on.
    on_io([&] {
        echo_ = std::make_unique<udp::socket>(
            io_, udp::endpoint(asio::ip::make_address("127.0.0.2"), port_));
        serve_echo();
    });
    EXPECT_EQ(c.ask("two").value_or("?"), "echo:two");
    EXPECT_EQ(guest_udp()["flows"], 1);
}

TEST_F(UdpForwardTest, TheContainerStopsAndTheSocketsClose) {
    Client c("127.0.0.1", port_);
    EXPECT_EQ(c.ask("up").value_or("?"), "echo:up");
    on_io([&] {
        dockerd_->containers["dns1"]["State"]["Running"] = false;
        dockerd_->event("die", "dns1");
    });
    ASSERT_TRUE(wait_for([&] { return host_state().is_null(); }));
    ASSERT_TRUE(wait_for([&] { return guest_udp()["active_flows"] == 0; }, 10s))
        << guest_udp().dump();
    // The host port is free again: we can bind it ourselves.
    udp::socket s(io_);
    error_code ec;
    s.open(udp::v4(), ec);
    s.bind(udp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    EXPECT_FALSE(ec) << ec.message();
}

TEST_F(UdpForwardTest, ATakenHostUdpPortIsReportedAndRetried) {
    // Another program holds udp 127.0.0.1:<q> (a TCP listener there would not matter).
    udp::socket other(io_, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const std::uint16_t q = other.local_endpoint().port();
    on_io([&] {
        dockerd_->containers["busy2"] = udp_container("busy", q);
        dockerd_->event("start", "busy2");
    });
    ASSERT_TRUE(wait_for([&] {
        const auto p = find_port(read_state(state_file_), q);
        return p.is_object() && (p["state"] == "failed" || p["state"] == "partial");
    })) << read_state(state_file_).dump(2);
    const auto p = find_port(read_state(state_file_), q);
    EXPECT_EQ(p["proto"], "udp");
    EXPECT_NE(p.value("error", "").find("already in use on 127.0.0.1"), std::string::npos)
        << p.dump(2);
    EXPECT_FALSE(p.value("hint", "").empty());
    // The other program goes away: the retry binds it and datagrams flow.
    other.close();
    ASSERT_TRUE(wait_for([&] {
        return find_port(read_state(state_file_), q).value("state", "") == "listening";
    })) << read_state(state_file_).dump(2);
    Client c("127.0.0.1", q);
    // No echo listens on 127.0.0.2:<q>: the guest's socket gets ECONNREFUSED, the flow
    // opens (the container publishes the port) and stays; nothing comes back.
    ASSERT_TRUE(c.send("x"));
    EXPECT_FALSE(c.recv(300ms));
    ASSERT_TRUE(wait_for([&] { return guest_udp()["flows"] == 1; })) << guest_udp().dump();
}

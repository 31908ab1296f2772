// splice(): host unix socket <-> channel stream <-> guest unix socket, with real sockets,
// the way the host agent and the guest agent bridge docker connections.
#include "test_util.hpp"  // first: silences a GCC false positive in Asio
// (keep the line above first)
#include <netinet/in.h>
#include <sys/un.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <thread>

using namespace cordon;
using namespace cordon::channel;
using namespace cordon::channel::test;
using boost::system::error_code;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

namespace {

void echo_conn(std::shared_ptr<Local::socket> s) {
    auto buf = std::make_shared<std::array<char, 32768>>();
    s->async_read_some(asio::buffer(*buf), [s, buf](error_code ec, std::size_t n) {
        if (ec) {
            error_code ignored;
            s->shutdown(Local::socket::shutdown_send, ignored);
            return;
        }
        asio::async_write(*s, asio::buffer(buf->data(), n), [s, buf](error_code wec, std::size_t) {
            if (!wec)
                echo_conn(s);
        });
    });
}

int connect_path(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

struct Bridge {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::string dir;
    std::shared_ptr<Session> host, guest;
    std::unique_ptr<Local::acceptor> service, docker, broken;
    std::thread thread;
    std::atomic<int> splices_done{0};
    std::atomic<int> ready{0};

    Bridge() {
        char tmpl[] = "/tmp/cordon-splice-XXXXXX";
        dir = ::mkdtemp(tmpl);
        auto [a, b] = socket_pair();
        host = Session::create(io, std::move(a), host_options());
        guest = Session::create(io, std::move(b), guest_options());
        // Guest: the "policy proxy" is an echo server on a unix socket.
        service = std::make_unique<Local::acceptor>(io, Local::endpoint(dir + "/proxy.sock"));
        accept_loop(*service, [](Local::socket s) {
            echo_conn(std::make_shared<Local::socket>(std::move(s)));
        });
        guest->set_stream_handler([this](std::shared_ptr<Stream> st, const std::string& svc) {
            const std::string path = dir + (svc == "docker" ? "/proxy.sock" : "/missing.sock");
            auto sock = std::make_shared<Local::socket>(io);
            sock->async_connect(Local::endpoint(path), [this, st, sock](error_code ec) {
                if (ec) {
                    st->reset("the docker proxy is not available: " + ec.message());
                    return;
                }
                splice(st, std::move(*sock), [this](error_code) { ++splices_done; });
            });
        });
        // Host: each connection on docker.sock / broken.sock becomes a stream.
        docker = std::make_unique<Local::acceptor>(io, Local::endpoint(dir + "/docker.sock"));
        broken = std::make_unique<Local::acceptor>(io, Local::endpoint(dir + "/broken.sock"));
        auto bridge_to = [this](std::string svc) {
            return [this, svc](Local::socket s) {
                auto sock = std::make_shared<Local::socket>(std::move(s));
                host->open(svc, [this, sock](error_code ec, std::shared_ptr<Stream> st) {
                    if (ec) {
                        error_code ignored;
                        sock->close(ignored);
                        return;
                    }
                    splice(st, std::move(*sock), [this](error_code) { ++splices_done; });
                });
            };
        };
        accept_loop(*docker, bridge_to("docker"));
        accept_loop(*broken, bridge_to("broken"));
        host->start([this](error_code ec, const PeerInfo&) { ready += !ec; });
        guest->start([this](error_code ec, const PeerInfo&) { ready += !ec; });
        thread = std::thread([this] { io.run(); });
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (ready < 2 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(1ms);
        EXPECT_EQ(ready.load(), 2);
    }
    ~Bridge() {
        asio::post(io, [this] {
            host->close("done");
            guest->close("done");
            service->close();
            docker->close();
            broken->close();
            work.reset();
        });
        thread.join();
        for (const char* f : {"/proxy.sock", "/docker.sock", "/broken.sock"})
            ::unlink((dir + f).c_str());
        ::rmdir(dir.c_str());
    }
    template <typename F>
    void accept_loop(Local::acceptor& acc, F on_conn) {
        acc.async_accept([this, &acc, on_conn](error_code ec, Local::socket s) {
            if (ec)
                return;
            on_conn(std::move(s));
            accept_loop(acc, on_conn);
        });
    }
};

// Sends `n` bytes, half-closes, reads everything back; returns what came back.
std::vector<std::uint8_t> round_trip(const std::string& path, std::uint64_t seed, std::size_t n,
                                     std::vector<std::uint8_t>& sent) {
    int fd = -1;
    for (int i = 0; i < 100 && fd < 0; ++i) {
        fd = connect_path(path);
        if (fd < 0)
            std::this_thread::sleep_for(10ms);
    }
    EXPECT_GE(fd, 0);
    sent.resize(n);
    ByteGen(seed).fill(sent.data(), n);
    std::thread writer([&] {
        std::size_t off = 0;
        while (off < n) {
            ssize_t w =
                ::send(fd, sent.data() + off, std::min<std::size_t>(n - off, 100000), MSG_NOSIGNAL);
            if (w <= 0)
                break;
            off += static_cast<std::size_t>(w);
        }
        ::shutdown(fd, SHUT_WR);
    });
    std::vector<std::uint8_t> got;
    std::uint8_t buf[65536];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20000) <= 0)
            break;  // no hang: fail after 20 s
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r <= 0)
            break;
        got.insert(got.end(), buf, buf + r);
    }
    writer.join();
    ::close(fd);
    return got;
}

}  // namespace

TEST(ChannelSplice, ConcurrentClientsRoundTripThroughRealSockets) {
    Bridge b;
    constexpr int kClients = 6;
    constexpr std::size_t kBytes = 3u << 20;
    std::vector<std::thread> clients;
    std::vector<int> ok(kClients, 0);
    for (int i = 0; i < kClients; ++i) {
        clients.emplace_back([&, i] {
            std::vector<std::uint8_t> sent;
            auto got =
                round_trip(b.dir + "/docker.sock", static_cast<std::uint64_t>(i) + 1, kBytes, sent);
            ok[static_cast<std::size_t>(i)] = got == sent;
        });
    }
    for (auto& t : clients) t.join();
    for (int i = 0; i < kClients; ++i)
        EXPECT_TRUE(ok[static_cast<std::size_t>(i)]) << "client " << i;
    // Both ends of every bridge finished (host side and guest side).
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (b.splices_done < 2 * kClients && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    EXPECT_EQ(b.splices_done.load(), 2 * kClients);
}

TEST(ChannelSplice, UnavailableServiceClosesTheClientConnection) {
    Bridge b;
    std::vector<std::uint8_t> sent;
    auto got = round_trip(b.dir + "/broken.sock", 9, 1000, sent);
    EXPECT_TRUE(got.empty());  // closed, no hang, no data
    // And the working service is unaffected.
    auto good = round_trip(b.dir + "/docker.sock", 10, 5000, sent);
    EXPECT_EQ(good, sent);
}

TEST(ChannelSplice, ClientCloseEndsBothBridges) {
    Bridge b;
    int fd = connect_path(b.dir + "/docker.sock");
    ASSERT_GE(fd, 0);
    const char msg[] = "ping";
    ASSERT_EQ(::write(fd, msg, 4), 4);
    char buf[8];
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    ASSERT_EQ(::read(fd, buf, sizeof buf), 4);
    // The client goes away: both bridges (host and guest side) must finish.
    ::close(fd);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (b.splices_done < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    EXPECT_EQ(b.splices_done.load(), 2);
}

namespace {

// A TCP client on a forwarded port (the host agent's PortForwarder path): the guest side
// either ends its half cleanly (FIN) or breaks (the stream is reset: the container died,
// the channel went down). Returns what the client read and how the read ended.
struct TcpEnding {
    std::string data;
    int error = 0;  // errno of the read that ended it; 0 for a clean end of stream
};

TcpEnding tcp_client_when_guest(bool breaks) {
    asio::io_context io;
    auto [a, b] = socket_pair();
    auto host = Session::create(io, std::move(a), host_options());
    auto guest = Session::create(io, std::move(b), guest_options());
    guest->set_stream_handler([&](std::shared_ptr<Stream> st, const std::string&) {
        auto part = std::make_shared<std::string>("partial answer");
        auto later = std::make_shared<asio::steady_timer>(io);
        st->async_write(asio::buffer(*part), [st, part, later, breaks](error_code, std::size_t) {
            if (!breaks)
                return st->shutdown_send();
            // Once the bytes are surely on their way (a reset drops queued ones).
            later->expires_after(100ms);
            later->async_wait(
                [st, later](error_code) { st->reset("the container's server died"); });
        });
    });
    asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
    acc.async_accept([&](error_code ec, asio::ip::tcp::socket s) {
        ASSERT_FALSE(ec);
        auto sock = std::make_shared<asio::ip::tcp::socket>(std::move(s));
        host->open("port:tcp:1", [sock](error_code oec, std::shared_ptr<Stream> st) {
            ASSERT_FALSE(oec);
            splice(st, std::move(*sock), [](error_code) {});
        });
    });
    std::atomic<int> ready{0};
    host->start([&](error_code ec, const PeerInfo&) { ready += !ec; });
    guest->start([&](error_code ec, const PeerInfo&) { ready += !ec; });
    const auto port = acc.local_endpoint().port();
    std::thread t([&] { io.run_for(10s); });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (ready < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    EXPECT_EQ(ready.load(), 2) << "no handshake";

    TcpEnding out;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    char buf[256];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) {
            out.error = ETIMEDOUT;
            break;
        }
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0) {
            out.error = errno;
            break;
        }
        if (r == 0)
            break;
        out.data.append(buf, static_cast<std::size_t>(r));
    }
    ::close(fd);
    asio::post(io, [&] {
        host->close("done");
        guest->close("done");
        acc.close();
    });
    t.join();
    return out;
}

}  // namespace

TEST(ChannelSplice, ACleanEndOnTheGuestSideIsAFinForTheTcpClient) {
    const TcpEnding e = tcp_client_when_guest(false);
    EXPECT_EQ(e.data, "partial answer");
    EXPECT_EQ(e.error, 0) << std::strerror(e.error);
}

TEST(ChannelSplice, ABrokenStreamIsAResetForTheTcpClientNotAnEndOfData) {
    // A protocol that ends its data by closing (HTTP/1.0, a file transfer) must not take a
    // cut-off transfer for a complete one.
    const TcpEnding e = tcp_client_when_guest(true);
    EXPECT_EQ(e.error, ECONNRESET)
        << "read ended with " << (e.error ? std::strerror(e.error) : "a clean end of stream")
        << " after '" << e.data << "'";
}

// bench-ports: what port forwarding costs, without a VM. The guest side (the agent's real
// PortService following a stub dockerd, a guest channel Session) and the host side (a
// host Session and the host agent's real PortForwarder) each run on their own io_context
// thread, joined by a socketpair as the virtio-serial port would join them. The
// "docker-proxy" is a blocking TCP server on 127.0.0.2:P; the forwarder listens on
// 127.0.0.1:P. Every number is printed for the direct path (127.0.0.2:P) and the
// forwarded path (127.0.0.1:P):
//   - connection setup: connect() until the first echoed byte is back (median, p99);
//   - round trip of one byte on an open connection (median);
//   - throughput of a one-way stream of --mib MiB to a sink.
// The container also publishes P/udp (a UDP echo on 127.0.0.2:P), and for UDP it prints:
//   - round trip of one 32-byte datagram (median, p99), --udp-rtts times;
//   - datagrams/s: --udp-count 64-byte datagrams echoed with at most 32 in flight (and
//     how many were lost).
// Not a test: it prints numbers. Under QEMU the virtio-serial port adds its own cost.
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "cordon/channel/session.hpp"
#include "cordon/log.hpp"
#include "cordon/ports/port_service.hpp"
#include "cordon/rpc/rpc.hpp"
#include "port_forwarder.hpp"

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

int tcp_listen(const char* ip, std::uint16_t port, std::uint16_t* bound) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, ip, &a.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 512) != 0) {
        std::perror("bind/listen");
        std::exit(1);
    }
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    *bound = ntohs(a.sin_port);
    return fd;
}

int tcp_connect(const char* ip, std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, ip, &a.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool read_exact(int fd, char* p, std::size_t n) {
    while (n) {
        const ssize_t r = ::read(fd, p, n);
        if (r <= 0)
            return false;
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

// The "docker-proxy" + service: first byte 'E' = echo, 'S' = sink (answers the byte count
// after EOF).
void serve(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char mode = 0;
    if (!read_exact(fd, &mode, 1)) {
        ::close(fd);
        return;
    }
    std::vector<char> buf(256 * 1024);
    if (mode == 'E') {
        ssize_t n;
        while ((n = ::read(fd, buf.data(), buf.size())) > 0)
            if (::write(fd, buf.data(), static_cast<std::size_t>(n)) != n)
                break;
    } else {
        unsigned long long total = 0;
        ssize_t n;
        while ((n = ::read(fd, buf.data(), buf.size())) > 0)
            total += static_cast<unsigned long long>(n);
        const std::string reply = std::to_string(total) + "\n";
        (void)!::write(fd, reply.data(), reply.size());
    }
    ::close(fd);
}

// dockerd as far as the watcher needs: an open event stream and one running container.
void stub_dockerd(int lfd, std::uint16_t port, std::vector<int>* keep) {
    for (;;) {
        int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0)
            return;
        std::string head;
        char c;
        while (head.find("\r\n\r\n") == std::string::npos && ::read(fd, &c, 1) == 1) head += c;
        std::string out;
        if (head.rfind("GET /events", 0) == 0) {
            out = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n";
            (void)!::write(fd, out.data(), out.size());
            keep->push_back(fd);
            continue;
        }
        if (head.rfind("GET /containers/json", 0) == 0) {
            out =
                "HTTP/1.0 200 "
                "OK\r\n\r\n[{\"Id\":\"bench\",\"Names\":[\"/bench\"],\"State\":\"running\","
                "\"Ports\":[{\"IP\":\"127.0.0.2\",\"PrivatePort\":80,\"PublicPort\":" +
                std::to_string(port) +
                ",\"Type\":\"tcp\"},{\"IP\":\"127.0.0.2\",\"PrivatePort\":53,"
                "\"PublicPort\":" +
                std::to_string(port) + ",\"Type\":\"udp\"}]}]";
        } else {
            out = "HTTP/1.0 404 Not Found\r\n\r\n{}";
        }
        (void)!::write(fd, out.data(), out.size());
        ::close(fd);
    }
}

double ms(Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

struct Stats {
    double median, p99;
};
Stats stats(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

void measure(const char* label, const char* ip, std::uint16_t port, int setups, int rtts,
             std::size_t mib) {
    // Connection setup.
    std::vector<double> setup;
    for (int i = 0; i < setups; ++i) {
        const auto t0 = Clock::now();
        int fd = tcp_connect(ip, port);
        if (fd < 0) {
            std::fprintf(stderr, "%s: connect failed\n", label);
            std::exit(1);
        }
        char b[2] = {'E', 'x'};
        (void)!::write(fd, b, 2);
        char r;
        if (!read_exact(fd, &r, 1)) {
            std::fprintf(stderr, "%s: no echo\n", label);
            std::exit(1);
        }
        setup.push_back(ms(Clock::now() - t0));
        ::close(fd);
    }
    // Round trips on one connection.
    std::vector<double> rtt;
    {
        int fd = tcp_connect(ip, port);
        (void)!::write(fd, "E", 1);
        for (int i = 0; i < rtts; ++i) {
            const auto t0 = Clock::now();
            char b = 'p';
            (void)!::write(fd, &b, 1);
            if (!read_exact(fd, &b, 1))
                std::exit(1);
            rtt.push_back(ms(Clock::now() - t0) * 1000.0);
        }
        ::close(fd);
    }
    // Throughput.
    double mibs = 0;
    {
        int fd = tcp_connect(ip, port);
        std::vector<char> buf(256 * 1024, 'z');
        const auto t0 = Clock::now();
        (void)!::write(fd, "S", 1);
        std::size_t left = mib << 20;
        while (left) {
            const std::size_t n = std::min(left, buf.size());
            const ssize_t w = ::write(fd, buf.data(), n);
            if (w <= 0)
                std::exit(1);
            left -= static_cast<std::size_t>(w);
        }
        ::shutdown(fd, SHUT_WR);
        char reply[64] = {};
        (void)!::read(fd, reply, sizeof reply - 1);
        const double secs = ms(Clock::now() - t0) / 1000.0;
        if (std::stoull(reply) != (mib << 20)) {
            std::fprintf(stderr, "%s: sink got %s bytes\n", label, reply);
            std::exit(1);
        }
        mibs = static_cast<double>(mib) / secs;
        ::close(fd);
    }
    const auto s = stats(setup);
    const auto r = stats(rtt);
    std::printf(
        "%-10s setup median %.3f ms p99 %.3f ms | 1-byte rtt median %.1f us p99 %.1f us | "
        "%zu MiB at %.0f MiB/s\n",
        label, s.median, s.p99, r.median, r.p99, mib, mibs);
}

// The UDP "docker-proxy": echoes every datagram to its sender.
void udp_echo(int fd) {
    std::vector<char> buf(65536);
    for (;;) {
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        const ssize_t n =
            ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 0)
            return;
        (void)!::sendto(fd, buf.data(), static_cast<std::size_t>(n), 0,
                        reinterpret_cast<sockaddr*>(&from), len);
    }
}

int udp_client(const char* ip, std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, ip, &a.sin_addr);
    int big = 4 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        std::perror("udp connect");
        std::exit(1);
    }
    return fd;
}

void measure_udp(const char* label, const char* ip, std::uint16_t port, int rtts, int count) {
    int fd = udp_client(ip, port);
    char buf[2048];
    // Warm up (opens the flow when forwarded).
    for (int i = 0; i < 20; ++i) {
        (void)!::send(fd, "warm", 4, 0);
        (void)!::recv(fd, buf, sizeof buf, 0);
    }
    std::vector<double> rtt;
    int lost = 0;
    const std::string dgram(32, 'u');
    for (int i = 0; i < rtts; ++i) {
        const auto t0 = Clock::now();
        (void)!::send(fd, dgram.data(), dgram.size(), 0);
        if (::recv(fd, buf, sizeof buf, 0) != static_cast<ssize_t>(dgram.size())) {
            ++lost;
            continue;
        }
        rtt.push_back(ms(Clock::now() - t0) * 1000.0);
    }
    // Pipelined: keep up to 32 datagrams in flight.
    const std::string small(64, 'p');
    int sent = 0, got = 0, window_lost = 0;
    const auto t0 = Clock::now();
    while (got + window_lost < count) {
        while (sent < count && sent - got - window_lost < 32) {
            (void)!::send(fd, small.data(), small.size(), 0);
            ++sent;
        }
        if (::recv(fd, buf, sizeof buf, 0) > 0)
            ++got;
        else
            window_lost = sent - got;  // a 1 s silence: what is in flight is lost
    }
    const double secs = ms(Clock::now() - t0) / 1000.0;
    ::close(fd);
    if (rtt.empty()) {
        std::fprintf(stderr, "%s: no UDP echo\n", label);
        std::exit(1);
    }
    const auto r = stats(rtt);
    std::printf(
        "%-10s udp 32-byte rtt median %.1f us p99 %.1f us (%d lost) | %d x 64 B at %.0f "
        "datagrams/s (%d lost)\n",
        label, r.median, r.p99, lost, count, got / secs, window_lost);
}

}  // namespace

int main(int argc, char** argv) {
    int setups = 300, rtts = 3000, udp_rtts = 3000, udp_count = 100'000;
    std::size_t mib = 512;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--setups"))
            setups = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--rtts"))
            rtts = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--udp-rtts"))
            udp_rtts = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--udp-count"))
            udp_count = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--mib"))
            mib = static_cast<std::size_t>(std::atoll(argv[i + 1]));
    }
    cordon::log::set_level(cordon::log::Level::warn);
    const auto dir =
        std::filesystem::temp_directory_path() / ("bench-ports-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);

    std::uint16_t port = 0;
    int lfd = tcp_listen("127.0.0.2", 0, &port);
    std::thread([lfd] {
        for (;;) {
            int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0)
                return;
            std::thread(serve, fd).detach();
        }
    }).detach();

    {
        int ufd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        ::inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
        if (::bind(ufd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            std::perror("udp echo bind");
            return 1;
        }
        std::thread(udp_echo, ufd).detach();
    }

    const std::string dockerd = (dir / "dockerd.sock").string();
    int dfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un ua{};
    ua.sun_family = AF_UNIX;
    std::strncpy(ua.sun_path, dockerd.c_str(), sizeof ua.sun_path - 1);
    if (::bind(dfd, reinterpret_cast<sockaddr*>(&ua), sizeof ua) != 0 || ::listen(dfd, 16) != 0) {
        std::perror("dockerd stub");
        return 1;
    }
    std::vector<int> keep;
    std::thread(stub_dockerd, dfd, port, &keep).detach();

    int sv[2];
    ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);

    // Guest side.
    asio::io_context gio;
    cordon::rpc::Server rpc(gio, "rpc");
    cordon::ports::PortService ports(gio, dockerd);
    ports.register_methods(rpc);
    cordon::channel::SessionOptions go;
    go.role = cordon::channel::Role::guest;
    go.agent_version = "bench-guest";
    auto guest = cordon::channel::Session::create(gio, cordon::UniqueFd(sv[0]), go);
    guest->set_stream_handler(
        [&](std::shared_ptr<cordon::channel::Stream> s, const std::string& svc) {
            if (svc == "rpc")
                rpc.serve(std::move(s));
            else if (cordon::ports::PortService::is_port_service(svc))
                ports.on_stream(std::move(s), svc);
        });
    guest->start([](boost::system::error_code, const cordon::channel::PeerInfo&) {});
    ports.start();

    // Host side.
    asio::io_context hio;
    cordon::hostagent::ForwardOptions fo;
    fo.state_file = dir / "ports.json";
    fo.listen_addresses = {"127.0.0.1"};
    cordon::hostagent::PortForwarder fwd(hio, fo);
    cordon::channel::SessionOptions ho;
    ho.role = cordon::channel::Role::host;
    ho.agent_version = "bench-host";
    auto host = cordon::channel::Session::create(hio, cordon::UniqueFd(sv[1]), ho);
    host->start([&](boost::system::error_code ec, const cordon::channel::PeerInfo&) {
        if (!ec)
            fwd.attach(host);
    });
    auto gwork = asio::make_work_guard(gio);
    auto hwork = asio::make_work_guard(hio);
    std::thread gt([&] { gio.run(); });
    std::thread ht([&] { hio.run(); });

    // Wait for the listener.
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    for (;;) {
        std::promise<bool> up;
        asio::post(hio, [&] { up.set_value(fwd.listening_ports().size() >= 2); });  // tcp, udp
        if (up.get_future().get())
            break;
        if (Clock::now() > deadline) {
            std::fprintf(stderr, "the forwarder did not listen within 20 s\n");
            return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::printf("bench-ports: port %u, %d setups, %d round trips, %zu MiB; %u cores\n", port,
                setups, rtts, mib, std::thread::hardware_concurrency());
    measure("direct", "127.0.0.2", port, setups, rtts, mib);
    measure("forwarded", "127.0.0.1", port, setups, rtts, mib);
    measure_udp("direct", "127.0.0.2", port, udp_rtts, udp_count);
    measure_udp("forwarded", "127.0.0.1", port, udp_rtts, udp_count);

    asio::post(hio, [&] {
        fwd.stop();
        host->close("bench done");
    });
    asio::post(gio, [&] {
        ports.stop();
        guest->close("bench done");
    });
    gwork.reset();
    hwork.reset();
    gio.stop();
    hio.stop();
    gt.join();
    ht.join();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return 0;
}

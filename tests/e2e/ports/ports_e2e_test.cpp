// Published ports through the whole chain: `docker run -p HOSTPORT:80` in the real VM
// (dockerd's docker-proxy in the guest), the guest agent following dockerd's events, the
// host agent listening on 127.0.0.1/[::1] and forwarding each connection over the
// channel; fetched from the host with curl and with a plain socket.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cordon_e2e.hpp"
#include "host_port.hpp"

using cordon::e2e::describe;
using cordon::e2e::free_host_port;
using cordon::e2e::VmEnvironment;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// An HTTP/1.0 GET over a plain socket; nullopt when the connection is refused.
std::optional<std::string> http_get(const std::string& ip, std::uint16_t port) {
    const bool v6 = ip.find(':') != std::string::npos;
    int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{30, 0};
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
    const std::string req = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
    (void)!::write(fd, req.data(), req.size());
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

bool have_ipv6_loopback() {
    int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

json ports_json(const VmEnvironment& vm) {
    auto r = vm.vmctl({"--json", "ports"}, 60s);
    EXPECT_TRUE(r.ok()) << describe(r);
    auto j = json::parse(r.out, nullptr, false);
    return j.is_object() ? j : json::object();
}

json find_port(const json& report, std::uint16_t port) {
    if (report.contains("ports") && report["ports"].is_array()) {
        for (const auto& p : report["ports"])
            if (p.value("host_port", 0) == port)
                return p;
    }
    return nullptr;
}

// Polls `vmctl ports --json` until pred(entry for port) holds.
template <typename Pred>
json wait_port(const VmEnvironment& vm, std::uint16_t port, Pred pred,
               std::chrono::seconds limit = 90s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    json last;
    do {
        last = ports_json(vm);
        if (pred(find_port(last, port)))
            return last;
        std::this_thread::sleep_for(500ms);
    } while (std::chrono::steady_clock::now() < end);
    ADD_FAILURE() << "port " << port << " did not reach the expected state within " << limit.count()
                  << " s; last vmctl ports: " << last.dump(2) << "\n--- agent log\n"
                  << vm.vmctl({"logs", "agent", "-n", "60"}, 60s).out;
    return last;
}

std::string web_command() {
    return "mkdir -p /www && echo cordon-port-ok > /www/index.html && exec httpd -f -p 80 -h /www";
}

}  // namespace

class Ports : public ::testing::Test {
  protected:
    void SetUp() override {
        CORDON_REQUIRE_VM();
        VmEnvironment::get().ensure_test_image();
    }
};

TEST_F(Ports, PublishedPortIsReachableFromTheHostAndGoesAwayWhenTheContainerStops) {
    auto& vm = VmEnvironment::get();
    const std::uint16_t port = free_host_port();
    ASSERT_NE(port, 0);
    const std::string pub = std::to_string(port) + ":80";
    vm.docker({"rm", "-f", "e2e-web"}, 60s);
    auto run = vm.docker(
        {"run", "-d", "--name", "e2e-web", "-p", pub, vm.test_image(), "sh", "-c", web_command()});
    ASSERT_TRUE(run.ok()) << describe(run);

    const auto t0 = std::chrono::steady_clock::now();
    auto report = wait_port(vm, port, [](const json& p) {
        return p.is_object() && p.value("state", "") == "listening";
    });
    std::cerr << "listener up "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - t0)
                     .count()
              << " ms after docker run returned\n";
    const json entry = find_port(report, port);
    ASSERT_TRUE(entry.is_object()) << report.dump(2);
    EXPECT_EQ(entry["container_name"], "e2e-web");
    EXPECT_EQ(entry["container_port"], 80);
    EXPECT_EQ(entry["proto"], "tcp");

    // A real client: curl. httpd may need a moment after docker-proxy is up.
    cordon::ProcessResult curl;
    for (int i = 0; i < 30; ++i) {
        curl = cordon::run(
            {"curl", "-sS", "--max-time", "30", "http://127.0.0.1:" + std::to_string(port) + "/"},
            60s);
        if (curl.ok() && curl.out.find("cordon-port-ok") != std::string::npos)
            break;
        std::this_thread::sleep_for(1s);
    }
    EXPECT_TRUE(curl.ok()) << describe(curl);
    EXPECT_NE(curl.out.find("cordon-port-ok"), std::string::npos) << describe(curl);
    // And a plain socket, on both loopback addresses.
    auto v4 = http_get("127.0.0.1", port);
    ASSERT_TRUE(v4);
    EXPECT_NE(v4->find("200 OK"), std::string::npos) << *v4;
    EXPECT_NE(v4->find("cordon-port-ok"), std::string::npos) << *v4;
    if (have_ipv6_loopback()) {
        auto v6 = http_get("::1", port);
        ASSERT_TRUE(v6);
        EXPECT_NE(v6->find("cordon-port-ok"), std::string::npos) << *v6;
    }
    // `vmctl status` shows it too.
    auto st = vm.vmctl({"status"}, 60s);
    EXPECT_TRUE(st.ok()) << describe(st);
    EXPECT_NE(st.out.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << st.out;

    // The container stops: the listener goes away.
    auto stop = vm.docker({"stop", "-t", "1", "e2e-web"}, 120s);
    ASSERT_TRUE(stop.ok()) << describe(stop);
    wait_port(vm, port, [](const json& p) { return p.is_null(); });
    EXPECT_FALSE(http_get("127.0.0.1", port)) << "the host still listens on the port";
    vm.docker({"rm", "-f", "e2e-web"}, 60s);
}

TEST_F(Ports, TakenHostPortIsReportedNotSkipped) {
    auto& vm = VmEnvironment::get();
    // Another program holds 127.0.0.1:<port> on the host.
    int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(holder, 4), 0);
    ASSERT_EQ(::getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len), 0);
    const std::uint16_t port = ntohs(a.sin_port);

    vm.docker({"rm", "-f", "e2e-busy"}, 60s);
    auto run = vm.docker({"run", "-d", "--name", "e2e-busy", "-p", std::to_string(port) + ":80",
                          vm.test_image(), "sh", "-c", web_command()});
    ASSERT_TRUE(run.ok()) << describe(run);  // the port is free inside the VM
    auto report = wait_port(vm, port, [](const json& p) {
        return p.is_object() &&
               (p.value("state", "") == "failed" || p.value("state", "") == "partial");
    });
    const json entry = find_port(report, port);
    ASSERT_TRUE(entry.is_object()) << report.dump(2);
    EXPECT_NE(entry.value("error", "").find("already in use on 127.0.0.1"), std::string::npos)
        << entry.dump(2);
    EXPECT_FALSE(entry.value("hint", "").empty()) << entry.dump(2);
    EXPECT_GE(report.value("problems", 0), 1) << report.dump(2);
    // People see it in `vmctl ports` and `vmctl status`.
    auto human = vm.vmctl({"ports"}, 60s);
    EXPECT_TRUE(human.ok()) << describe(human);
    EXPECT_NE(human.out.find("already in use"), std::string::npos) << human.out;
    auto st = vm.vmctl({"--json", "status"}, 60s);
    auto sj = json::parse(st.out, nullptr, false);
    ASSERT_TRUE(sj.is_object()) << describe(st);
    EXPECT_TRUE(find_port(sj["published_ports"], port).is_object()) << st.out;

    ::close(holder);
    vm.docker({"rm", "-f", "e2e-busy"}, 60s);
    wait_port(vm, port, [](const json& p) { return p.is_null(); });
}

// `docker run -p P:P/udp`: a datagram sent to 127.0.0.1:P on the host reaches the
// container (through the host agent, the channel, the guest agent and docker-proxy) and
// its answer comes back to the sender. The container runs a static UDP echo (udp_echo.cpp)
// imported as its own image: the test image's busybox has no UDP server.
TEST_F(Ports, PublishedUdpPortEchoesDatagramsFromTheHost) {
    auto& vm = VmEnvironment::get();
    const std::string image = "cordon-test/udp-echo:1";
    if (!vm.docker({"image", "inspect", image}, 60s).ok()) {
        const auto root = std::filesystem::temp_directory_path() /
                          ("cordon-e2e-udp-echo-" + std::to_string(::getpid()));
        std::filesystem::create_directories(root);
        std::filesystem::copy_file(CORDON_E2E_UDP_ECHO, root / "udp_echo",
                                   std::filesystem::copy_options::overwrite_existing);
        const std::string tar = root.string() + ".tar";
        auto t = cordon::run({"tar", "-C", root.string(), "-cf", tar, "."}, 60s);
        ASSERT_TRUE(t.ok()) << describe(t);
        auto imp = vm.docker({"import", tar, image}, 300s);
        std::error_code ec;
        std::filesystem::remove_all(root, ec);
        std::filesystem::remove(tar, ec);
        ASSERT_TRUE(imp.ok()) << describe(imp);
    }
    // A host UDP port nobody uses (bound and released: a TCP-free port may be UDP-taken).
    std::uint16_t port = 0;
    {
        int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
        port = ntohs(a.sin_port);
        ::close(fd);
    }
    const std::string p = std::to_string(port);
    vm.docker({"rm", "-f", "e2e-udp"}, 60s);
    const auto t0 = std::chrono::steady_clock::now();
    auto run = vm.docker(
        {"run", "-d", "--name", "e2e-udp", "-p", p + ":" + p + "/udp", image, "/udp_echo", p});
    ASSERT_TRUE(run.ok()) << describe(run);
    auto report = wait_port(vm, port, [](const json& e) {
        return e.is_object() && e.value("state", "") == "listening";
    });
    const json entry = find_port(report, port);
    ASSERT_TRUE(entry.is_object()) << report.dump(2);
    EXPECT_EQ(entry["proto"], "udp");
    EXPECT_EQ(entry["container_name"], "e2e-udp");
    auto human = vm.vmctl({"ports"}, 60s);
    EXPECT_NE(human.out.find(p + "/udp"), std::string::npos) << human.out;
    EXPECT_EQ(human.out.find("NOT FORWARDED"), std::string::npos) << human.out;

    // The echo may need a moment after docker-proxy is up: resend once a second.
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string reply;
    for (int i = 0; i < 30 && reply.empty(); ++i) {
        (void)!::send(fd, "ping", 4, 0);
        char buf[256];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0)
            reply.assign(buf, static_cast<std::size_t>(n));
    }
    EXPECT_EQ(reply, "udp-echo:ping");
    // Same flow, a few more: each gets its own answer.
    for (int i = 0; i < 5 && reply == "udp-echo:ping"; ++i) {
        const std::string msg = "n" + std::to_string(i);
        (void)!::send(fd, msg.data(), msg.size(), 0);
        char buf[256];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        while (n == 13 && std::string(buf, 13) == "udp-echo:ping")
            n = ::recv(fd, buf, sizeof buf, 0);
        EXPECT_EQ(n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "", "udp-echo:" + msg);
    }
    ::close(fd);
    std::cerr << "udp echo answered "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - t0)
                     .count()
              << " ms after docker run started\n";

    vm.docker({"rm", "-f", "e2e-udp"}, 60s);
    wait_port(vm, port, [](const json& e) { return e.is_null(); });
}

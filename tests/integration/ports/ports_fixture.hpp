#pragma once
// Shared by the published-ports integration tests (TCP: port_forward_test.cpp, UDP:
// udp_forward_test.cpp): a stub dockerd and small helpers. Header-only, test code.
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cordon/channel/session.hpp"
#include "cordon/ports/port_service.hpp"
#include "cordon/rpc/rpc.hpp"
#include "cordon/unique_fd.hpp"
#include "port_forwarder.hpp"

namespace cordon::test_ports {

namespace asio = boost::asio;
using boost::system::error_code;
using nlohmann::json;
using namespace std::chrono_literals;

// dockerd as far as the watcher needs it.
class StubDockerd {
  public:
    StubDockerd(asio::io_context& io, std::string path) : io_(io), acceptor_(io) {
        ::unlink(path.c_str());
        acceptor_.open(asio::local::stream_protocol());
        acceptor_.bind(asio::local::stream_protocol::endpoint(path));
        acceptor_.listen();
        accept();
    }
    // Everything below runs on the io thread.
    json containers = json::object();  // id -> inspect document
    void event(const std::string& action, const std::string& id) {
        const std::string line = json{{"Type", "container"},
                                      {"Action", action},
                                      {"Actor", {{"ID", id}, {"Attributes", {{"name", id}}}}}}
                                     .dump() +
                                 "\n";
        for (auto& s : events_) {
            auto buf = std::make_shared<std::string>(line);
            asio::async_write(*s, asio::buffer(*buf), [buf](error_code, std::size_t) {});
        }
    }
    void drop_event_streams() {
        for (auto& s : events_) s->close();
        events_.clear();
    }
    std::size_t event_streams() const { return events_.size(); }

  private:
    using Sock = asio::local::stream_protocol::socket;
    void accept() {
        acceptor_.async_accept([this](error_code ec, Sock s) {
            if (ec)
                return;
            serve(std::make_shared<Sock>(std::move(s)));
            accept();
        });
    }
    void serve(std::shared_ptr<Sock> s) {
        auto buf = std::make_shared<std::string>();
        auto chunk = std::make_shared<std::array<char, 4096>>();
        auto read = std::make_shared<std::function<void()>>();
        // The function holds itself only weakly (a strong self-capture is a cycle that
        // LeakSanitizer reports); the pending read's handler keeps it alive.
        *read = [this, s, buf, chunk, weak = std::weak_ptr(read)] {
            auto self = weak.lock();
            s->async_read_some(asio::buffer(*chunk),
                               [this, s, buf, chunk, self](error_code ec, std::size_t n) {
                                   if (ec)
                                       return;
                                   buf->append(chunk->data(), n);
                                   if (buf->find("\r\n\r\n") == std::string::npos)
                                       return (*self)();
                                   answer(s, buf->substr(0, buf->find("\r\n")));
                               });
        };
        (*read)();
    }
    void answer(std::shared_ptr<Sock> s, const std::string& request_line) {
        // "GET /target HTTP/1.0"
        const auto a = request_line.find(' ');
        const auto b = request_line.rfind(' ');
        const std::string target = request_line.substr(a + 1, b - a - 1);
        std::string status = "200 OK", body;
        if (target.rfind("/events", 0) == 0) {
            events_.push_back(s);
            auto head = std::make_shared<std::string>(
                "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n");
            asio::async_write(*s, asio::buffer(*head), [head](error_code, std::size_t) {});
            return;
        }
        if (target == "/containers/json") {
            json list = json::array();
            for (auto& [id, c] : containers.items()) {
                if (!c["State"]["Running"].get<bool>())
                    continue;
                json ports = json::array();
                for (auto& [k, v] : c["NetworkSettings"]["Ports"].items()) {
                    for (auto& bnd : v)
                        ports.push_back(
                            {{"IP", bnd["HostIp"]},
                             {"PrivatePort", std::stoi(k)},
                             {"PublicPort", std::stoi(bnd["HostPort"].get<std::string>())},
                             {"Type", k.substr(k.find('/') + 1)}});
                }
                list.push_back(
                    {{"Id", id}, {"Names", {c["Name"]}}, {"Ports", ports}, {"State", "running"}});
            }
            body = list.dump();
        } else if (target.rfind("/containers/", 0) == 0) {
            const std::string id = target.substr(12, target.find('/', 12) - 12);
            if (containers.contains(id))
                body = containers[id].dump();
            else
                status = "404 Not Found", body = R"({"message":"No such container"})";
        } else {
            status = "404 Not Found";
        }
        auto out = std::make_shared<std::string>(
            "HTTP/1.0 " + status + "\r\nContent-Type: application/json\r\n\r\n" + body);
        asio::async_write(*s, asio::buffer(*out), [s, out](error_code, std::size_t) {
            error_code ignored;
            s->close(ignored);
        });
    }

    asio::io_context& io_;
    asio::local::stream_protocol::acceptor acceptor_;
    std::vector<std::shared_ptr<Sock>> events_;
};

inline json read_state(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str(), nullptr, false);
}

inline json find_port(const json& state, std::uint16_t port) {
    if (!state.is_object() || !state.contains("ports"))
        return nullptr;
    for (const auto& p : state["ports"])
        if (p["host_port"] == port)
            return p;
    return nullptr;
}

template <typename Pred>
bool wait_for(Pred pred, std::chrono::milliseconds limit = 15s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (pred())
            return true;
        std::this_thread::sleep_for(20ms);
    }
    return pred();
}

inline bool have_ipv6_loopback() {
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

// The guest half (`rpc` and `guest_ports` serving the guest session's streams) and the host half
// (`fwd`, attached once the host session is up) joined by a channel over a socketpair, as
// the virtio-serial port joins them in the VM.
inline void connect_port_sessions(asio::io_context& io, rpc::Server& rpc,
                                  ports::PortService& guest_ports, hostagent::PortForwarder& fwd,
                                  std::shared_ptr<channel::Session>& guest,
                                  std::shared_ptr<channel::Session>& host) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        throw std::runtime_error("socketpair failed");
    channel::SessionOptions go;
    go.role = channel::Role::guest;
    go.agent_version = "test-guest";
    guest = channel::Session::create(io, UniqueFd(sv[0]), go);
    guest->set_stream_handler(
        [&rpc, &guest_ports](std::shared_ptr<channel::Stream> s, const std::string& svc) {
            if (svc == "rpc")
                rpc.serve(std::move(s));
            else if (ports::PortService::is_port_service(svc))
                guest_ports.on_stream(std::move(s), svc);
        });
    guest->start([](error_code, const channel::PeerInfo&) {});
    channel::SessionOptions ho;
    ho.role = channel::Role::host;
    ho.agent_version = "test-host";
    host = channel::Session::create(io, UniqueFd(sv[1]), ho);
    auto h = host;
    host->start([&fwd, h](error_code ec, const channel::PeerInfo&) {
        if (!ec)
            fwd.attach(h);
    });
}

}  // namespace cordon::test_ports

// cordon-test-guest-side: the guest agent's Docker path as a process of its own, for the
// memory test (memory_test.cpp). It plays QEMU (serves the channel's unix socket) and
// runs what the guest agent runs for "docker" streams: a guest-role channel Session whose
// "docker" streams are connected to the real PolicyProxy (with a 1000-entry AuditLog
// writing a file, as in the agent) and bridged with channel::splice, all on one
// io_context, with the agent's malloc settings. An "rpc" stream answers the agent's
// "memory" (RSS, descriptors, glibc heap figures, guest-agent/agent/src/memory_stats.cpp),
// so the test reads them through the real host agent, and "trim" (malloc_trim).
//
// Usage: cordon-test-guest-side CHANNEL_SOCKET PROXY_SOCKET DOCKERD_SOCKET AUDIT_FILE
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <iostream>

#include "cordon/channel/session.hpp"
#include "cordon/log.hpp"
#include "cordon/proxy/audit.hpp"
#include "cordon/proxy/proxy.hpp"
#include "cordon/rpc/rpc.hpp"
#include "memory_stats.hpp"

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;
using nlohmann::json;

namespace {

class GuestSide {
  public:
    GuestSide(asio::io_context& io, std::string channel, std::string proxy_socket,
              std::string dockerd, std::string audit_file)
        : io_(io),
          channel_(std::move(channel)),
          proxy_socket_(std::move(proxy_socket)),
          audit_(std::getenv("CORDON_AUDIT_CAP")
                     ? std::strtoul(std::getenv("CORDON_AUDIT_CAP"), nullptr, 10)
                     : 1000,
                 std::move(audit_file)),
          proxy_(io, cordon::policy::ProxyOptions{proxy_socket_, std::move(dockerd), {}, 0600},
                 cordon::policy::PolicyConfig{}, audit_),
          rpc_(io, "guest-side.rpc"),
          acceptor_(io) {
        cordon::agent::register_memory_methods(rpc_);  // "memory", as the agent
        rpc_.register_method("trim", [](const json&, cordon::rpc::Call&) {
            ::malloc_trim(0);
            return cordon::agent::memory_stats();
        });
    }

    void start() {
        proxy_.start();
        ::unlink(channel_.c_str());
        acceptor_.open(stream());
        acceptor_.bind(stream::endpoint(channel_));
        acceptor_.listen();
        accept();
    }

    void stop() {
        boost::system::error_code ec;
        acceptor_.close(ec);
        if (session_)
            session_->close("guest side stopping");
        proxy_.stop();
    }

  private:
    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, stream::socket s) {
            if (ec)
                return;
            if (session_)
                session_->close("a new host connection");
            cordon::channel::SessionOptions o;
            o.role = cordon::channel::Role::guest;
            o.agent_version = "cordon-test-guest-side";
            o.log_component = "guest-side.channel";
            // As the guest agent sets it; CORDON_TRIM_MS overrides (0: off, to compare).
            const char* trim = std::getenv("CORDON_TRIM_MS");
            o.trim_heap_when_idle = std::chrono::milliseconds(trim ? std::atol(trim) : 1000);
            session_ = cordon::channel::Session::create(io_, cordon::UniqueFd(s.release()), o);
            session_->set_stream_handler(
                [this](std::shared_ptr<cordon::channel::Stream> st, const std::string& svc) {
                    on_stream(std::move(st), svc);
                });
            session_->start([](boost::system::error_code, const cordon::channel::PeerInfo&) {});
            accept();
        });
    }

    // As Agent::on_stream does for "docker" and "rpc".
    void on_stream(std::shared_ptr<cordon::channel::Stream> st, const std::string& service) {
        if (service == "rpc") {
            rpc_.serve(std::move(st));
            return;
        }
        if (service != "docker") {
            st->reset("no service named '" + service + "'");
            return;
        }
        auto sock = std::make_shared<stream::socket>(io_);
        sock->async_connect(stream::endpoint(proxy_socket_),
                            [sock, st](boost::system::error_code ec) {
                                if (ec) {
                                    st->reset("cannot reach the proxy: " + ec.message());
                                    return;
                                }
                                cordon::channel::splice(st, std::move(*sock));
                            });
    }

    asio::io_context& io_;
    std::string channel_, proxy_socket_;
    cordon::policy::AuditLog audit_;
    cordon::policy::PolicyProxy proxy_;
    cordon::rpc::Server rpc_;
    stream::acceptor acceptor_;
    std::shared_ptr<cordon::channel::Session> session_;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::cerr << "usage: cordon-test-guest-side CHANNEL_SOCKET PROXY_SOCKET DOCKERD_SOCKET "
                     "AUDIT_FILE\n";
        return 2;
    }
    cordon::log::set_level(cordon::log::Level::warn);
    ::signal(SIGPIPE, SIG_IGN);
    // The guest agent's malloc setting (guest-agent/agent/src/main.cpp).
    ::mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    try {
        asio::io_context io;
        GuestSide g(io, argv[1], argv[2], argv[3], argv[4]);
        asio::signal_set signals(io, SIGTERM, SIGINT);
        signals.async_wait([&](const boost::system::error_code& ec, int) {
            if (ec)
                return;
            g.stop();
            io.stop();
        });
        g.start();
        io.run();
    } catch (const std::exception& e) {
        std::cerr << "cordon-test-guest-side: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

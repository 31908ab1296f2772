// GCC 12 reports -Wnull-dereference inside Boost.Asio's scheduler once it is inlined
// into coroutines (a false positive in the library, not in this file).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "fake_dockerd.hpp"

// clang-format off
#include <utility>  // before Asio's awaitable.hpp, which uses std::exchange
// clang-format on
#include <fmt/format.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <optional>
#include <thread>

namespace cordon::testing {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;

struct FakeDockerd::Impl : std::enable_shared_from_this<Impl> {
    asio::io_context io;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
        asio::make_work_guard(io)};
    stream::acceptor acceptor{io};
    std::thread thread;
    std::atomic<std::uint64_t> connections{0}, requests{0};
    std::atomic<int> open{0};
    std::string inspect_body;

    static std::string response(const std::string& body, const char* type) {
        return fmt::format(
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: {}\r\nDocker-Experimental: "
            "false\r\nOstype: linux\r\nServer: Docker/20.10.24 (linux)\r\nDate: Thu, 26 Nov 2026 "
            "05:00:00 GMT\r\nContent-Length: {}\r\n\r\n{}",
            type, body.size(), body);
    }

    awaitable<void> stream_chunks(stream::socket& s, bool logs) {
        std::string head = fmt::format(
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: {}\r\nServer: "
            "Docker/20.10.24 (linux)\r\nTransfer-Encoding: chunked\r\n\r\n",
            logs ? "application/vnd.docker.raw-stream" : "application/json");
        error_code ec;
        co_await asio::async_write(s, asio::buffer(head), asio::redirect_error(use_awaitable, ec));
        asio::steady_timer t(io);
        for (std::uint64_t n = 0; !ec; ++n) {
            std::string payload =
                logs
                    ? std::string("\x01\0\0\0\0\0\0\x05tick\n", 13)
                    : fmt::format(
                          R"({{"status":"exec_start","id":"0123456789ab","Type":"container","Action":"exec_start","time":{}}})"
                          "\n",
                          n);
            std::string chunk = fmt::format("{:x}\r\n{}\r\n", payload.size(), payload);
            co_await asio::async_write(s, asio::buffer(chunk),
                                       asio::redirect_error(use_awaitable, ec));
            if (ec)
                break;
            t.expires_after(std::chrono::milliseconds(100));
            co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
        }
    }

    // One request; false: the connection ends.
    awaitable<bool> answer(stream::socket& s, std::string& buf) {
        char tmp[8192];
        error_code ec;
        std::size_t end;
        while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
            std::size_t n = co_await s.async_read_some(asio::buffer(tmp),
                                                       asio::redirect_error(use_awaitable, ec));
            if (ec)
                co_return false;
            buf.append(tmp, n);
        }
        ++requests;
        std::string head = buf.substr(0, end);
        buf.erase(0, end + 4);
        std::string target = head.substr(head.find(' ') + 1);
        target = target.substr(0, target.find(' '));
        const bool close = head.find("Connection: close") != std::string::npos;
        std::string out;
        if (target.find("/_ping") != std::string::npos) {
            out = response("OK", "text/plain; charset=utf-8");
        } else if (target.find("/containers/json") != std::string::npos) {
            out = response(
                R"([{"Id":"0123456789ab","Names":["/load"],"Image":"busybox","State":"running","Status":"Up"}])"
                "\n",
                "application/json");
        } else if (target.find("/logs") != std::string::npos ||
                   target.find("/events") != std::string::npos) {
            co_await stream_chunks(s, target.find("/logs") != std::string::npos);
            co_return false;
        } else if (target.find("/json") != std::string::npos) {
            out = response(inspect_body, "application/json");
        } else {
            out =
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                "Content-Length: 29\r\n\r\n{\"message\":\"page not found\"}\n";
        }
        co_await asio::async_write(s, asio::buffer(out), asio::redirect_error(use_awaitable, ec));
        co_return !ec && !close;
    }

    awaitable<void> serve(stream::socket s) {
        ++open;
        std::string buf;
        while (co_await answer(s, buf)) {
        }
        --open;
    }

    awaitable<void> accept_loop() {
        while (true) {
            error_code ec;
            stream::socket s =
                co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
            if (ec == asio::error::operation_aborted || !acceptor.is_open())
                co_return;
            if (ec)
                continue;
            ++connections;
            asio::co_spawn(io, serve(std::move(s)), asio::detached);
        }
    }
};

FakeDockerd::FakeDockerd(std::string path) : impl_(std::make_shared<Impl>()) {
    ::unlink(path.c_str());
    impl_->acceptor.open(stream());
    impl_->acceptor.bind(stream::endpoint(path));
    impl_->acceptor.listen(asio::socket_base::max_listen_connections);
    // About the size of a real `docker inspect` of a small container.
    impl_->inspect_body =
        R"({"Id":"0123456789ab","Name":"/load","State":{"Status":"running"},"Config":{"Labels":{)";
    for (int i = 0; i < 60; ++i)
        impl_->inspect_body += fmt::format(R"({}"label.{}":"value number {} of the inspect body")",
                                           i ? "," : "", i, i);
    impl_->inspect_body += "}}}\n";
    asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
    impl_->thread = std::thread([i = impl_.get()] { i->io.run(); });
}

FakeDockerd::~FakeDockerd() {
    asio::post(impl_->io, [i = impl_.get()] {
        error_code ec;
        i->acceptor.close(ec);
        i->io.stop();
    });
    impl_->thread.join();
}

std::uint64_t FakeDockerd::connections() const {
    return impl_->connections.load();
}
std::uint64_t FakeDockerd::requests() const {
    return impl_->requests.load();
}
int FakeDockerd::open_connections() const {
    return impl_->open.load();
}

}  // namespace cordon::testing

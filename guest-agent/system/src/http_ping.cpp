#include "cordon/guest/http_ping.hpp"

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <memory>

#include "cordon/quiet_asio.hpp"  // GCC 12 false positive in Asio (see the header)

namespace cordon::guest {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {
struct PingState {
    explicit PingState(asio::io_context& io) : socket(io), timer(io) {}
    local::socket socket;
    asio::steady_timer timer;
    std::string request = "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
    std::string response;
    std::array<char, 512> buf{};
    std::function<void(bool, const std::string&)> done;
    void finish(bool ok, const std::string& detail) {
        if (!done)
            return;
        auto d = std::move(done);
        done = nullptr;
        timer.cancel();
        boost::system::error_code ignored;
        socket.close(ignored);
        d(ok, detail);
    }
    void read(std::shared_ptr<PingState> self) {
        socket.async_read_some(
            asio::buffer(buf), [self](boost::system::error_code ec, std::size_t n) {
                self->response.append(self->buf.data(), n);
                const auto eol = self->response.find("\r\n");
                if (eol != std::string::npos || ec || self->response.size() > 4096) {
                    const std::string status = self->response.substr(0, eol);
                    if (status.empty()) {
                        self->finish(false, ec ? ec.message() : "empty reply");
                        return;
                    }
                    const bool ok = status.rfind("HTTP/1.", 0) == 0 && status.size() >= 12 &&
                                    status.compare(9, 3, "200") == 0;
                    self->finish(ok, status);
                    return;
                }
                self->read(self);
            });
    }
};
}  // namespace

void async_http_ping(asio::io_context& io, const std::string& socket_path,
                     std::chrono::milliseconds timeout,
                     std::function<void(bool, const std::string&)> done) {
    auto st = std::make_shared<PingState>(io);
    st->done = std::move(done);
    st->timer.expires_after(timeout);
    st->timer.async_wait([st](boost::system::error_code ec) {
        if (!ec)
            st->finish(false, "no answer within the timeout");
    });
    st->socket.async_connect(local::endpoint(socket_path), [st, socket_path](
                                                               boost::system::error_code ec) {
        if (ec) {
            st->finish(false, "cannot connect to " + socket_path + ": " + ec.message());
            return;
        }
        asio::async_write(st->socket, asio::buffer(st->request),
                          [st](boost::system::error_code ec2, std::size_t) {
                              if (ec2) {
                                  st->finish(false, "cannot send the request: " + ec2.message());
                                  return;
                              }
                              st->read(st);
                          });
    });
}

}  // namespace cordon::guest

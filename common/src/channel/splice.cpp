// splice(): bridge a channel stream and a local socket both ways.
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: see that header
// clang-format on

#include <array>
#include <type_traits>
#include <boost/asio/write.hpp>

#include "cordon/channel/session.hpp"

namespace cordon::channel {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

template <typename Socket>
class Splice : public std::enable_shared_from_this<Splice<Socket>> {
  public:
    Splice(std::shared_ptr<Stream> stream, Socket socket, std::function<void(error_code)> done)
        : stream_(std::move(stream)), socket_(std::move(socket)), done_(std::move(done)) {}

    void start() {
        socket_to_stream();
        stream_to_socket();
    }

  private:
    static constexpr std::size_t kChunk = 64 * 1024;

    void socket_to_stream() {
        socket_.async_read_some(asio::buffer(up_),
                                [self = this->shared_from_this()](error_code ec, std::size_t n) {
                                    if (self->failed_)
                                        return;
                                    if (ec == asio::error::eof) {
                                        self->stream_->shutdown_send();
                                        self->up_done_ = true;
                                        self->maybe_complete();
                                        return;
                                    }
                                    if (ec)
                                        return self->fail(ec);
                                    self->stream_->async_write(asio::buffer(self->up_.data(), n),
                                                               [self](error_code wec, std::size_t) {
                                                                   if (self->failed_)
                                                                       return;
                                                                   if (wec)
                                                                       return self->fail(wec);
                                                                   self->socket_to_stream();
                                                               });
                                });
    }

    void stream_to_socket() {
        stream_->async_read_some(
            asio::buffer(down_), [self = this->shared_from_this()](error_code ec, std::size_t n) {
                if (self->failed_)
                    return;
                if (ec == asio::error::eof) {
                    error_code ignored;
                    self->socket_.shutdown(Socket::shutdown_send, ignored);
                    self->down_done_ = true;
                    self->maybe_complete();
                    return;
                }
                if (ec)
                    return self->fail(ec);
                asio::async_write(self->socket_, asio::buffer(self->down_.data(), n),
                                  [self](error_code wec, std::size_t) {
                                      if (self->failed_)
                                          return;
                                      if (wec)
                                          return self->fail(wec);
                                      self->stream_to_socket();
                                  });
            });
    }

    void fail(error_code ec) {
        if (failed_)
            return;
        failed_ = true;
        first_error_ = ec;
        stream_->reset(ec.message());
        error_code ignored;
        // A TCP peer gets a reset, not a FIN: for a protocol that ends its data by closing
        // (HTTP/1.0, a download) a FIN would make a cut-off transfer look complete.
        if constexpr (std::is_same_v<Socket, asio::ip::tcp::socket>)
            socket_.set_option(asio::socket_base::linger(true, 0), ignored);
        socket_.close(ignored);
        up_done_ = down_done_ = true;
        maybe_complete();
    }

    void maybe_complete() {
        if (completed_ || !up_done_ || !down_done_)
            return;
        completed_ = true;
        error_code ignored;
        if (socket_.is_open())
            socket_.close(ignored);
        if (done_) {
            auto done = std::move(done_);
            done_ = nullptr;
            done(first_error_);
        }
    }

    std::shared_ptr<Stream> stream_;
    Socket socket_;
    std::function<void(error_code)> done_;
    // Not value-initialised: reads fill them; zeroing 128 KiB per connection costs time
    // and commits every page even for a /_ping.
    std::array<std::uint8_t, kChunk> up_;
    std::array<std::uint8_t, kChunk> down_;
    bool up_done_ = false, down_done_ = false, failed_ = false, completed_ = false;
    error_code first_error_;
};

}  // namespace

void splice(std::shared_ptr<Stream> stream, asio::local::stream_protocol::socket socket,
            std::function<void(error_code)> done) {
    using S = Splice<asio::local::stream_protocol::socket>;
    std::make_shared<S>(std::move(stream), std::move(socket), std::move(done))->start();
}

void splice(std::shared_ptr<Stream> stream, asio::ip::tcp::socket socket,
            std::function<void(error_code)> done) {
    using S = Splice<asio::ip::tcp::socket>;
    std::make_shared<S>(std::move(stream), std::move(socket), std::move(done))->start();
}

}  // namespace cordon::channel

// clang-format off
#include "cordon/quiet_asio.hpp"  // first: see that header
// clang-format on

#include "cordon/rpc/rpc.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>

#include "cordon/log.hpp"

namespace cordon::rpc {

namespace asio = boost::asio;
using boost::system::error_code;
using IoHandler = std::function<void(error_code, std::size_t)>;

namespace {

constexpr std::size_t kMaxQueuedReplies = 16u << 20;

// What a connection runs over: a channel stream or a local socket.
class Transport {
  public:
    virtual ~Transport() = default;
    virtual void read_some(asio::mutable_buffer b, IoHandler h) = 0;
    virtual void write_all(asio::const_buffer b, IoHandler h) = 0;
    virtual void shutdown_send() = 0;
    virtual void abort() = 0;
    virtual const std::string& name() const = 0;
};

class StreamTransport final : public Transport {
  public:
    explicit StreamTransport(std::shared_ptr<channel::Stream> s)
        : s_(std::move(s)), name_(fmt::format("stream {} ({})", s_->id(), s_->service())) {}
    void read_some(asio::mutable_buffer b, IoHandler h) override {
        s_->async_read_some(b, std::move(h));
    }
    void write_all(asio::const_buffer b, IoHandler h) override { s_->async_write(b, std::move(h)); }
    void shutdown_send() override { s_->shutdown_send(); }
    void abort() override { s_->reset("rpc connection closed"); }
    const std::string& name() const override { return name_; }

  private:
    std::shared_ptr<channel::Stream> s_;
    std::string name_;
};

class SocketTransport final : public Transport {
  public:
    explicit SocketTransport(asio::local::stream_protocol::socket s) : s_(std::move(s)) {}
    void read_some(asio::mutable_buffer b, IoHandler h) override {
        s_.async_read_some(b, std::move(h));
    }
    void write_all(asio::const_buffer b, IoHandler h) override {
        asio::async_write(s_, b, std::move(h));
    }
    void shutdown_send() override {
        error_code ignored;
        s_.shutdown(asio::socket_base::shutdown_send, ignored);
    }
    void abort() override {
        error_code ignored;
        s_.close(ignored);
    }
    const std::string& name() const override { return name_; }

  private:
    asio::local::stream_protocol::socket s_;
    std::string name_ = "unix socket";
};

}  // namespace

namespace detail {
struct ServerState {
    asio::io_context& io;
    std::string component;
    std::map<std::string, Server::AsyncHandler, std::less<>> methods;
    bool alive = true;
    std::size_t connections = 0;
};
}  // namespace detail
using detail::ServerState;

namespace {

class Connection;

class CallImpl final : public Call {
  public:
    CallImpl(std::weak_ptr<Connection> conn, std::uint64_t id, std::string method, json params,
             std::string peer)
        : conn_(std::move(conn)),
          id_(id),
          method_(std::move(method)),
          params_(std::move(params)),
          peer_(std::move(peer)) {}
    ~CallImpl() override;

    std::uint64_t id() const override { return id_; }
    const std::string& method() const override { return method_; }
    const json& params() const override { return params_; }
    const std::string& peer() const override { return peer_; }
    void notify(std::string_view method, const json& params) override;
    void reply(json result) override;
    void fail(const RemoteError& error) override;
    void fail(std::exception_ptr error) override;
    bool answered() const override { return answered_; }
    bool closed() const override;

  private:
    void send(std::string line);
    std::weak_ptr<Connection> conn_;
    std::uint64_t id_;
    std::string method_;
    json params_;
    std::string peer_;
    bool answered_ = false;
};

class Connection : public std::enable_shared_from_this<Connection> {
  public:
    Connection(std::shared_ptr<ServerState> state, std::unique_ptr<Transport> t)
        : state_(std::move(state)), t_(std::move(t)) {
        ++state_->connections;
    }
    ~Connection() { --state_->connections; }

    void start() { read(); }

    void send(std::string line) {
        if (dead_)
            return;
        out_bytes_ += line.size();
        outq_.push_back(std::move(line));
        if (out_bytes_ > kMaxQueuedReplies) {
            log::warn(state_->component, "{}: the client does not read its replies: closing",
                      t_->name());
            die();
            return;
        }
        flush();
    }
    const std::string& name() const { return t_->name(); }
    const std::string& component() const { return state_->component; }
    bool open() const { return !dead_ && !read_closed_; }

  private:
    void read() {
        if (dead_)
            return;
        t_->read_some(asio::buffer(buf_), [self = shared_from_this()](error_code ec,
                                                                      std::size_t n) {
            if (self->dead_)
                return;
            if (ec) {
                if (ec != asio::error::eof)
                    log::debug(self->state_->component, "{}: {}", self->t_->name(), ec.message());
                self->read_closed_ = true;
                // Replies still in flight go out; then the write side closes too.
                if (!self->writing_ && self->outq_.empty())
                    self->t_->shutdown_send();
                return;
            }
            if (!self->draining_) {
                self->decoder_.feed(std::string_view(self->buf_.data(), n));
                self->process();
            }
            self->read();
        });
    }

    void process() {
        std::string line;
        for (;;) {
            auto st = decoder_.next(line);
            if (st == LineDecoder::Status::need_more)
                return;
            if (st == LineDecoder::Status::too_long) {
                log::warn(state_->component, "{}: a line is longer than {} bytes: closing",
                          t_->name(), kMaxLine);
                send(encode_error(std::nullopt,
                                  {code::line_too_long,
                                   fmt::format("a message line is longer than {} bytes", kMaxLine),
                                   "split the request; lines end with a newline"}));
                // Stop serving; drain what the client still sends until it closes.
                draining_ = true;
                close_after_flush_ = true;
                if (!writing_)
                    flush();
                return;
            }
            if (!line.empty())
                handle_line(line);
        }
    }

    void handle_line(const std::string& line) {
        Message m;
        RemoteError err;
        std::optional<std::uint64_t> id;
        if (!decode_message(line, m, err, id)) {
            log::info(state_->component, "{}: malformed message: {}", t_->name(), err.message);
            send(encode_error(id, err));
            return;
        }
        if (m.kind != Message::Kind::request) {
            log::debug(state_->component, "{}: ignoring a {} from the client", t_->name(),
                       m.kind == Message::Kind::response ? "reply" : "notification");
            return;
        }
        auto call = std::make_shared<CallImpl>(weak_from_this(), *m.id, m.method,
                                               std::move(m.params), t_->name());
        if (!state_->alive) {
            call->fail(RemoteError{code::internal, "the server is shutting down", "retry later"});
            return;
        }
        auto it = state_->methods.find(m.method);
        if (it == state_->methods.end()) {
            std::string known;
            for (auto& [name, h] : state_->methods) known += (known.empty() ? "" : ", ") + name;
            call->fail(RemoteError{code::unknown_method,
                                   fmt::format("unknown method '{}'", m.method),
                                   "known methods: " + known});
            return;
        }
        auto handler = it->second;  // a handler may (un)register methods
        try {
            handler(call);
        } catch (...) {
            call->fail(std::current_exception());
        }
    }

    void flush() {
        if (writing_ || dead_)
            return;
        if (outq_.empty()) {
            if (close_after_flush_ || read_closed_)
                t_->shutdown_send();
            return;
        }
        writing_ = true;
        current_ = std::move(outq_.front());
        outq_.pop_front();
        t_->write_all(asio::buffer(current_),
                      [self = shared_from_this()](error_code ec, std::size_t) {
                          self->writing_ = false;
                          self->out_bytes_ -= std::min(self->out_bytes_, self->current_.size());
                          self->current_.clear();
                          if (ec) {
                              self->die();
                              return;
                          }
                          self->flush();
                      });
    }

    void die() {
        if (dead_)
            return;
        dead_ = true;
        outq_.clear();
        t_->abort();
    }

    std::shared_ptr<ServerState> state_;
    std::unique_ptr<Transport> t_;
    LineDecoder decoder_;
    std::array<char, 64 * 1024> buf_{};
    std::deque<std::string> outq_;
    std::string current_;
    std::size_t out_bytes_ = 0;
    bool writing_ = false, dead_ = false, draining_ = false, close_after_flush_ = false,
         read_closed_ = false;
};

CallImpl::~CallImpl() {
    if (!answered_) {
        if (auto c = conn_.lock())
            log::warn(c->component(), "{}: method '{}' dropped request {} without an answer", peer_,
                      method_, id_);
        fail(RemoteError{code::internal,
                         fmt::format("method '{}' ended without an answer", method_),
                         "this is a bug in the server; see its log"});
    }
}

bool CallImpl::closed() const {
    auto c = conn_.lock();
    return !c || !c->open();
}

void CallImpl::send(std::string line) {
    if (auto c = conn_.lock())
        c->send(std::move(line));
}

void CallImpl::notify(std::string_view method, const json& params) {
    if (answered_)
        return;
    send(encode_notification(method, params));
}

void CallImpl::reply(json result) {
    if (answered_)
        return;
    answered_ = true;
    send(encode_result(id_, result));
}

void CallImpl::fail(const RemoteError& error) {
    if (answered_)
        return;
    answered_ = true;
    send(encode_error(id_, error));
}

void CallImpl::fail(std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const CallError& e) {
        fail(e.remote());
    } catch (const cordon::Error& e) {
        std::string msg = e.failure();
        if (!e.subject().empty())
            msg += " (" + e.subject() + ")";
        fail(RemoteError{code::failed, msg, e.hint()});
    } catch (const std::exception& e) {
        if (auto c = conn_.lock())
            log::error(c->component(), "{}: method '{}' failed: {}", peer_, method_, e.what());
        fail(RemoteError{code::internal, fmt::format("internal error: {}", e.what()), {}});
    } catch (...) {
        fail(RemoteError{code::internal, "internal error", {}});
    }
}

}  // namespace

Server::Server(asio::io_context& io, std::string log_component)
    : state_(
          std::make_shared<ServerState>(ServerState{io, std::move(log_component), {}, true, 0})) {}

Server::~Server() {
    state_->alive = false;
}

void Server::register_method(std::string name, Handler handler) {
    state_->methods[std::move(name)] = [h = std::move(handler)](std::shared_ptr<Call> call) {
        json result = h(call->params(), *call);
        call->reply(std::move(result));
    };
}

void Server::register_async_method(std::string name, AsyncHandler handler) {
    state_->methods[std::move(name)] = std::move(handler);
}

void Server::serve(std::shared_ptr<channel::Stream> stream) {
    std::make_shared<Connection>(state_, std::make_unique<StreamTransport>(std::move(stream)))
        ->start();
}

void Server::serve(asio::local::stream_protocol::socket socket) {
    std::make_shared<Connection>(state_, std::make_unique<SocketTransport>(std::move(socket)))
        ->start();
}

std::size_t Server::connections() const {
    return state_->connections;
}

// ---------------------------------------------------------------- BlockingClient

BlockingClient BlockingClient::connect(const std::string& socket_path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path)
        throw Error("invalid unix socket path", socket_path,
                    fmt::format("use a path of 1..{} bytes", sizeof addr.sun_path - 1));
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd)
        throw_errno("cannot create a unix socket");
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        std::string hint = "is the Cordon host agent running? start the VM with `vmctl start`";
        if (err == EACCES)
            hint = "the socket belongs to another user; run as its owner";
        throw Error("cannot connect: " + errno_string(err), socket_path, hint);
    }
    return BlockingClient(std::move(fd), socket_path);
}

BlockingClient::BlockingClient(UniqueFd connected, std::string peer_name)
    : fd_(std::move(connected)), peer_(std::move(peer_name)) {}

namespace {
int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return left.count() < 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 1 << 30));
}
}  // namespace

json BlockingClient::call(const std::string& method, const json& params,
                          std::chrono::milliseconds timeout,
                          const NotificationHandler& on_notification) {
    if (!fd_)
        throw Error("the RPC connection is closed", peer_, "reconnect");
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const std::uint64_t id = next_id_++;
    const std::string line = encode_request(id, method, params);
    auto timed_out = [&] {
        return Error(fmt::format("no reply to '{}' within {} ms", method, timeout.count()), peer_,
                     "the guest agent may be busy or stuck; check `vmctl logs` or retry with a "
                     "longer timeout");
    };
    std::size_t sent = 0;
    while (sent < line.size()) {
        ssize_t n = ::send(fd_.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = ::write(fd_.get(), line.data() + sent, line.size() - sent);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{fd_.get(), POLLOUT, 0};
            const int ms = remaining_ms(deadline);
            if (ms == 0 || ::poll(&p, 1, ms) == 0)
                throw timed_out();
            continue;
        }
        throw_errno(fmt::format("cannot send the '{}' request", method), peer_,
                    "the connection closed; is the host agent still running?");
    }
    std::array<char, 64 * 1024> buf{};
    std::string text;
    for (;;) {
        for (;;) {
            const auto st = decoder_.next(text);
            if (st == LineDecoder::Status::need_more)
                break;
            if (st == LineDecoder::Status::too_long) {
                fd_.reset();
                throw Error(fmt::format("a reply line is longer than {} bytes", kMaxLine), peer_);
            }
            if (text.empty())
                continue;
            Message m;
            RemoteError err;
            std::optional<std::uint64_t> eid;
            if (!decode_message(text, m, err, eid))
                throw Error(fmt::format("malformed reply to '{}': {}", method, err.message), peer_,
                            "the peer does not speak Cordon RPC");
            if (m.kind == Message::Kind::notification) {
                if (on_notification)
                    on_notification(m.method, m.params);
                continue;
            }
            if (m.kind != Message::Kind::response)
                continue;
            if (m.error && (!m.id || *m.id == id))
                throw CallError(m.error->code, m.error->message, method, m.error->hint);
            if (!m.id || *m.id != id)
                continue;  // a late reply to an earlier, timed-out call
            return m.result;
        }
        pollfd p{fd_.get(), POLLIN, 0};
        const int ms = remaining_ms(deadline);
        if (ms == 0)
            throw timed_out();
        const int r = ::poll(&p, 1, ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            throw_errno("cannot wait for the reply", peer_);
        if (r == 0)
            throw timed_out();
        const ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            throw_errno(fmt::format("cannot read the reply to '{}'", method), peer_);
        if (n == 0) {
            fd_.reset();
            throw Error(fmt::format("the connection closed before the reply to '{}'", method),
                        peer_, "the host agent or the guest agent stopped; see their logs");
        }
        decoder_.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    }
}

}  // namespace cordon::rpc

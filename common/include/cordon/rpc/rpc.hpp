#pragma once
// JSON RPC over a channel stream or a plain unix socket (codec: cordon/rpc/codec.hpp).
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "cordon/channel/session.hpp"
#include "cordon/rpc/codec.hpp"
#include "cordon/unique_fd.hpp"

namespace cordon::rpc {

// One request being served. Lives until it is answered; if an async handler drops it
// unanswered, the client gets an "internal" error instead of waiting forever.
class Call {
  public:
    virtual ~Call() = default;
    virtual std::uint64_t id() const = 0;
    virtual const std::string& method() const = 0;
    virtual const json& params() const = 0;
    // Describes the connection in logs, e.g. "stream 5 (rpc)" or "unix socket".
    virtual const std::string& peer() const = 0;
    // Sends a notification ({"method":..,"params":..}) on this call's connection, before
    // the reply. Dropped (with a debug log) if the connection is gone.
    virtual void notify(std::string_view method, const json& params) = 0;
    // Answers the call (first answer wins; later ones are ignored).
    virtual void reply(json result) = 0;
    virtual void fail(const RemoteError& error) = 0;
    // From an exception: CallError keeps its code; cordon::Error becomes code::failed with
    // its hint; anything else becomes code::internal.
    virtual void fail(std::exception_ptr error) = 0;
    virtual bool answered() const = 0;
    // True once the client closed the call's connection (or it failed, or the channel
    // stream was reset): long-running calls (watches) use it to stop sending.
    virtual bool closed() const = 0;
};

namespace detail {
struct ServerState;
}

class Server {
  public:
    // Synchronous: the return value is the result; throwing gives an error reply.
    using Handler = std::function<json(const json& params, Call& call)>;
    // Asynchronous: answer later (on the io thread) with call->reply() / call->fail().
    using AsyncHandler = std::function<void(std::shared_ptr<Call> call)>;

    explicit Server(boost::asio::io_context& io, std::string log_component = "rpc");
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    void register_method(std::string name, Handler handler);
    void register_async_method(std::string name, AsyncHandler handler);

    // Serves requests on the connection until it closes. Requests on one connection may be
    // answered out of order (async handlers); ids match replies to requests. A malformed
    // line gets an error reply and serving goes on; an oversized line gets line_too_long
    // and the connection is closed. Connections keep running after the Server is destroyed
    // only until their next request (which gets an "internal" error).
    void serve(std::shared_ptr<channel::Stream> stream);
    void serve(boost::asio::local::stream_protocol::socket socket);

    std::size_t connections() const;

  private:
    std::shared_ptr<detail::ServerState> state_;
};

// A blocking client for command-line tools (vmctl): one connection, one call at a time.
class BlockingClient {
  public:
    using NotificationHandler = std::function<void(const std::string& method, const json& params)>;

    // Connects to a unix socket. Throws cordon::Error (with a hint) when it cannot.
    static BlockingClient connect(const std::string& socket_path);
    explicit BlockingClient(UniqueFd connected, std::string peer_name = "rpc peer");

    // Sends the request and waits for its reply, passing notifications that arrive
    // meanwhile to on_notification. Returns the result; throws CallError for an error
    // reply, cordon::Error on timeout, a closed connection or a malformed reply.
    json call(const std::string& method, const json& params = json::object(),
              std::chrono::milliseconds timeout = std::chrono::seconds(30),
              const NotificationHandler& on_notification = {});

    int fd() const noexcept { return fd_.get(); }

  private:
    UniqueFd fd_;
    std::string peer_;
    std::uint64_t next_id_ = 1;
    LineDecoder decoder_;
};

}  // namespace cordon::rpc

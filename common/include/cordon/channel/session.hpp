#pragma once
// The host<->guest channel: one byte stream (virtio-serial port, unix socket, socketpair)
// carrying many independent, flow-controlled streams. Protocol: docs/PROTOCOL.md.
//
// Threading: a Session and its Streams live on one single-threaded io_context. Every
// method must be called on that thread; every handler is invoked on it, never from
// inside the call that started the operation (handlers are posted).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cordon/channel/errors.hpp"
#include "cordon/channel/frame.hpp"
#include "cordon/unique_fd.hpp"

namespace cordon::channel {

// host: sends HELLO (and re-sends it until a WELCOME arrives), opens odd stream ids.
// guest: discards bytes until a valid HELLO, answers WELCOME, opens even stream ids, and
//        survives host reconnects (see SessionOptions::reconnect_poll).
enum class Role { host, guest };

struct SessionOptions {
    Role role = Role::host;
    // Shown to the peer and in version-mismatch errors, e.g. "cordon-guest-agent 0.1.0".
    std::string agent_version;
    // Protocol versions this side accepts (tests lower/raise these to check negotiation).
    std::uint16_t min_version = kProtocolVersion;
    std::uint16_t max_version = kProtocolVersion;

    // Limits this side imposes on what it receives (advertised in the handshake).
    std::uint32_t max_frame_payload = 64 * 1024;  // kMinFramePayload..kMaxFramePayloadLimit
    std::uint32_t initial_window = 256 * 1024;    // per-stream receive window, bytes
    std::uint32_t max_streams = 256;              // concurrent streams (both directions)
    std::uint32_t max_pending_opens = 64;         // incoming opens not yet accepted locally;
                                                  // also caps our own opens awaiting ACCEPT
    // Bytes queued for the transport beyond which the peer is considered to have stopped
    // reading (the session is closed with errc::peer_not_reading).
    std::size_t max_transport_queue = 8 * 1024 * 1024;

    // PING every keepalive_interval; no PONG within keepalive_timeout ends the session
    // (host) or resets it and waits for a new HELLO (guest). Zero disables keepalive.
    std::chrono::milliseconds keepalive_interval{10'000};
    std::chrono::milliseconds keepalive_timeout{30'000};
    // Host: asked when a PING has gone unanswered for keepalive_timeout. True means the
    // peer is known to be paused (the VM is suspended, as on a simulated host sleep): the
    // session keeps waiting instead of ending, so open streams survive the pause, as they
    // do a real sleep (where the monotonic clock stops too). Unset: the session ends.
    std::function<bool()> peer_paused;
    // Host: re-send HELLO this often until a WELCOME arrives (stale bytes on a
    // virtio-serial port can swallow the first one).
    std::chrono::milliseconds hello_interval{1'000};
    // Host: give up the handshake after this long (zero = wait forever, e.g. while the
    // VM boots).
    std::chrono::milliseconds handshake_timeout{0};
    // Guest: after EOF/HUP on the transport (the host disconnected; the char device stays
    // open), reset the session and try reading again after this delay.
    std::chrono::milliseconds reconnect_poll{200};

    // Return a burst's freed heap to the system: once streams have ended and none has
    // opened or ended for this long, call malloc_trim(0) (zero: never). glibc keeps the
    // pages of freed small blocks resident and the burst's allocations fragment the heap,
    // so an agent's RSS otherwise stays at its busiest level (issue 9: measured 2.4 MiB
    // given back after 200 clients; see tests/integration/memory). Both agents set it;
    // it affects the whole process, so libraries and tests leave it off.
    std::chrono::milliseconds trim_heap_when_idle{0};

    std::string log_component = "channel";
};

// What the handshake learned about the peer.
struct PeerInfo {
    std::uint16_t version = 0;  // negotiated version (0 until established / on mismatch)
    std::uint16_t peer_min_version = 0;
    std::uint16_t peer_max_version = 0;
    std::string agent_version;  // the peer's SessionOptions::agent_version
    std::uint32_t max_frame_payload = 0;
    std::uint32_t initial_window = 0;
    std::uint32_t max_streams = 0;
};

// Counters for tests, logs and benchmarks.
struct SessionStats {
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::uint64_t frames_in = 0, frames_out = 0;
    std::uint64_t discarded_bytes = 0;  // dropped while resyncing
    std::uint64_t handshakes = 0;       // successful handshakes (guest: one per host connect)
    std::uint64_t session_resets = 0;   // guest: sessions reset (EOF, protocol error, new HELLO)
    std::size_t transport_queued_bytes = 0;      // encoded, not yet written to the transport
    std::size_t max_transport_queued_bytes = 0;  // high-water mark of the above
    std::size_t open_streams = 0;
    std::uint64_t heap_trims = 0;  // malloc_trim calls (SessionOptions::trim_heap_when_idle)
};

// Human-readable explanation of a version mismatch, e.g. "guest agent (cordon-guest-agent
// 0.2.0) speaks protocol 2, this host speaks 1: update Cordon on the host ...".
std::string describe_version_mismatch(Role local, std::uint16_t local_min, std::uint16_t local_max,
                                      const PeerInfo& peer);

class Stream;

class Session : public std::enable_shared_from_this<Session> {
  public:
    using ReadyHandler = std::function<void(boost::system::error_code, const PeerInfo&)>;
    using StreamHandler = std::function<void(std::shared_ptr<Stream>, const std::string& service)>;
    using OpenHandler = std::function<void(boost::system::error_code, std::shared_ptr<Stream>)>;
    using CloseHandler = std::function<void(boost::system::error_code, const std::string& reason)>;

    // transport: any connected, bidirectional fd (unix socket, socketpair end,
    // /dev/virtio-ports/... char device). The session owns and closes it.
    // Throws cordon::Error on invalid options or an unusable fd.
    static std::shared_ptr<Session> create(boost::asio::io_context& io, UniqueFd transport,
                                           SessionOptions options);
    virtual ~Session() = default;

    // Incoming opens. The handler gets a pending stream: it is accepted (ACCEPT sent) by
    // Stream::accept() or implicitly by the first read/write/shutdown_send; reset() refuses
    // it with a reason the opener sees. A handler that drops the stream without accepting
    // it gets it refused. Without a handler every open is refused.
    virtual void set_stream_handler(StreamHandler handler) = 0;
    // Called once, when the session ends for good (see docs/PROTOCOL.md): host on transport
    // EOF/error, GOAWAY, protocol error, keepalive timeout, version mismatch; guest only on
    // a fatal transport error or a local close().
    virtual void set_close_handler(CloseHandler handler) = 0;

    // Starts reading and the handshake. Host: on_ready is called once (success or error).
    // Guest: on_ready is called after every handshake attempt (each host connection),
    // with errc::version_mismatch when there is no common version.
    virtual void start(ReadyHandler on_ready) = 0;

    // Opens a stream to the peer's service. Completes when the peer accepts (or refuses:
    // errc::stream_refused, the reason is in the stream's reset_reason() and logged).
    virtual void open(std::string service, OpenHandler handler) = 0;

    // Sends GOAWAY with the reason, resets every stream (their pending operations fail with
    // errc::session_closed), flushes what is queued, closes the transport. Idempotent.
    virtual void close(const std::string& reason) = 0;

    virtual bool established() const = 0;
    virtual bool closed() const = 0;
    virtual const PeerInfo& peer() const = 0;
    // Why the session (or, on a guest, the last host connection) ended; empty if it has not.
    virtual const std::string& failure_reason() const = 0;
    virtual SessionStats stats() const = 0;
    virtual const SessionOptions& options() const = 0;
    virtual boost::asio::any_io_executor get_executor() = 0;
};

// One logical stream. Like an Asio socket: at most one async_read_some and one
// async_write outstanding at a time (a second one fails with errc::operation_in_progress).
class Stream : public std::enable_shared_from_this<Stream> {
  public:
    using IoHandler = std::function<void(boost::system::error_code, std::size_t)>;

    virtual ~Stream() = default;

    virtual std::uint32_t id() const = 0;
    virtual const std::string& service() const = 0;

    // Incoming streams: confirm the open. Implicit on the first async_read_some,
    // async_write or shutdown_send. No-op on our own streams or once accepted.
    virtual void accept() = 0;

    // Reads what has arrived (at least one byte). error::eof once the peer half-closed and
    // everything was read; errc::stream_reset when the peer reset it; errc::session_closed
    // when the session ended; operation_aborted after a local reset().
    virtual void async_read_some(boost::asio::mutable_buffer buffer, IoHandler handler) = 0;

    // Sends all of `buffer` (which must stay valid until the handler runs). Completes when
    // every byte is queued for the transport within the peer's window: a peer that stops
    // reading makes this wait, it never buffers without bound.
    virtual void async_write(boost::asio::const_buffer buffer, IoHandler handler) = 0;

    // Half-close: the peer reads eof after the bytes already written. Reading continues.
    virtual void shutdown_send() = 0;

    // Aborts both directions now (RESET with the reason; queued bytes are dropped).
    // Pending operations complete with operation_aborted.
    virtual void reset(std::string reason = {}) = 0;

    // Why the stream was reset (by the peer, by the session, or refused); empty otherwise.
    virtual const std::string& reset_reason() const = 0;
    // True after reset (either side) or once both directions finished.
    virtual bool finished() const = 0;
    // Received bytes not yet read by the application (bounded by the receive window).
    virtual std::size_t buffered_bytes() const = 0;
    // Bytes the peer currently allows us to send on this stream.
    virtual std::size_t send_window() const = 0;
    virtual boost::asio::any_io_executor get_executor() = 0;
};

// Bridges `stream` and a connected local socket both ways until both directions are
// closed: socket EOF -> stream->shutdown_send(); stream eof -> socket shutdown(send);
// an error on either side resets the stream and closes the socket. `done` runs once,
// with the first error (or success) after both directions ended.
void splice(std::shared_ptr<Stream> stream, boost::asio::local::stream_protocol::socket socket,
            std::function<void(boost::system::error_code)> done = {});
// The same for a connected TCP socket (published ports).
void splice(std::shared_ptr<Stream> stream, boost::asio::ip::tcp::socket socket,
            std::function<void(boost::system::error_code)> done = {});

}  // namespace cordon::channel

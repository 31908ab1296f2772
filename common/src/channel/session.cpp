// The channel multiplexer: one Session per transport, many Streams. See docs/PROTOCOL.md.
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: see that header
// clang-format on

#include "cordon/channel/session.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/system_error.hpp>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <utility>

#include "cordon/error.hpp"
#include "cordon/log.hpp"

namespace cordon::channel {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

long long ms_since(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

constexpr std::size_t kReadChunk = 256 * 1024;
// Data frames are cut from stream writes only while less than this is queued for the
// transport, so queued bytes stay bounded whatever the applications write.
constexpr std::size_t kLowWatermark = 512 * 1024;
constexpr std::size_t kMaxWriteBatch = 2 * 1024 * 1024;

const char* reset_code_name(std::uint32_t code) {
    switch (static_cast<ResetCode>(code)) {
        case ResetCode::cancelled:
            return "cancelled";
        case ResetCode::refused:
            return "refused";
        case ResetCode::too_many_streams:
            return "too many streams";
        case ResetCode::too_many_pending_opens:
            return "too many pending opens";
        case ResetCode::invalid_service_name:
            return "invalid service name";
        case ResetCode::protocol_error:
            return "protocol error";
        case ResetCode::internal:
            return "internal error";
    }
    return "unknown reason";
}

errc go_away_errc(std::uint32_t code) {
    switch (static_cast<GoAwayCode>(code)) {
        case GoAwayCode::version_mismatch:
            return errc::version_mismatch;
        case GoAwayCode::protocol_error:
            return errc::protocol_error;
        default:
            return errc::peer_went_away;
    }
}

std::uint64_t random_nonce() {
    std::random_device rd;
    std::uint64_t n = (std::uint64_t{rd()} << 32) ^ rd();
    return n ? n : 1;
}

}  // namespace

std::string describe_version_mismatch(Role local, std::uint16_t local_min, std::uint16_t local_max,
                                      const PeerInfo& peer) {
    auto range = [](std::uint16_t lo, std::uint16_t hi) {
        return lo == hi ? fmt::format("{}", lo) : fmt::format("{}..{}", lo, hi);
    };
    const bool host = local == Role::host;
    const std::string peer_name = host ? "guest agent" : "host";
    const std::string self_name = host ? "this host" : "this guest agent";
    const std::string agent =
        peer.agent_version.empty() ? std::string{} : fmt::format(" ({})", peer.agent_version);
    std::string text = fmt::format("{}{} speaks protocol {}, {} speaks {}", peer_name, agent,
                                   range(peer.peer_min_version, peer.peer_max_version), self_name,
                                   range(local_min, local_max));
    const bool peer_newer = peer.peer_min_version > local_max;
    if (host)
        text += peer_newer ? ": update Cordon on this host to a release that speaks protocol " +
                                 range(peer.peer_min_version, peer.peer_max_version)
                           : ": rebuild or update the VM image so its guest agent matches this "
                             "host (vmctl image update)";
    else
        text += peer_newer ? ": update the VM image (its guest agent is older than the host)"
                           : ": update Cordon on the host (it is older than this VM image)";
    return text;
}

class SessionImpl;

class StreamImpl final : public Stream {
  public:
    enum class Phase { pending_out, pending_in, open };

    StreamImpl(std::shared_ptr<SessionImpl> session, std::uint32_t id, std::string service,
               Phase phase, std::uint32_t send_window, std::uint32_t recv_window);

    std::uint32_t id() const override { return id_; }
    const std::string& service() const override { return service_; }
    void accept() override;
    void async_read_some(asio::mutable_buffer buffer, IoHandler handler) override;
    void async_write(asio::const_buffer buffer, IoHandler handler) override;
    void shutdown_send() override;
    void reset(std::string reason) override;
    const std::string& reset_reason() const override { return reset_reason_; }
    bool finished() const override { return finished_; }
    std::size_t buffered_bytes() const override { return rx_bytes_; }
    std::size_t send_window() const override { return send_window_; }
    asio::any_io_executor get_executor() override { return executor_; }

    // --- used by SessionImpl ---
    std::shared_ptr<StreamImpl> self() {
        return std::static_pointer_cast<StreamImpl>(shared_from_this());
    }
    bool wants_to_send() const {
        return !finished_ && write_handler_ && write_done_ < write_buf_.size() && send_window_ > 0;
    }
    // Cuts the next DATA frame (at most max_payload bytes) from the pending write.
    std::vector<std::uint8_t> cut_frame(std::uint32_t max_payload);
    void on_data(std::span<const std::uint8_t> payload, bool fin);
    void on_window(std::uint32_t increment);
    void on_accept();
    // Ends the stream because of the peer or the session (no RESET is sent).
    void terminate(error_code ec, std::string reason);

    Phase phase_;
    bool in_ready_ = false;
    bool local_fin_ = false;       // shutdown_send() called
    bool local_fin_sent_ = false;  // the FIN went out
    bool remote_fin_ = false;
    bool finished_ = false;
    Session::OpenHandler open_handler_;

  private:
    void deliver_read();
    void maybe_update_window();
    void maybe_finish();
    std::shared_ptr<SessionImpl> session() const;

    std::weak_ptr<SessionImpl> session_;
    asio::any_io_executor executor_;
    std::uint32_t id_;
    std::string service_;
    std::string reset_reason_;
    error_code error_;  // terminal error for new operations

    // receive side
    std::deque<std::vector<std::uint8_t>> rx_;
    std::size_t rx_front_off_ = 0;
    std::size_t rx_bytes_ = 0;
    std::uint32_t recv_window_;  // bytes the peer may still send
    std::uint32_t recv_window_initial_;
    std::uint32_t consumed_ = 0;  // read by the app since the last WINDOW we sent
    asio::mutable_buffer read_buf_;
    IoHandler read_handler_;

    // send side
    std::uint64_t send_window_;
    asio::const_buffer write_buf_;
    std::size_t write_done_ = 0;
    IoHandler write_handler_;
};

class SessionImpl final : public Session {
  public:
    enum class State { idle, handshaking, established, closing, closed };

    SessionImpl(asio::io_context& io, int fd, SessionOptions options)
        : io_(io),
          sock_(io, fd),
          opts_(std::move(options)),
          decoder_(opts_.max_frame_payload),
          hello_timer_(io),
          deadline_timer_(io),
          keepalive_timer_(io),
          poll_timer_(io),
          trim_timer_(io) {
        reset_ids();
    }

    std::shared_ptr<SessionImpl> self() {
        return std::static_pointer_cast<SessionImpl>(shared_from_this());
    }

    // --- Session API ---
    void set_stream_handler(StreamHandler handler) override {
        stream_handler_ = std::move(handler);
    }
    void set_close_handler(CloseHandler handler) override { close_handler_ = std::move(handler); }
    void start(ReadyHandler on_ready) override;
    void open(std::string service, OpenHandler handler) override;
    void close(const std::string& reason) override;
    bool established() const override { return state_ == State::established; }
    bool closed() const override { return state_ == State::closing || state_ == State::closed; }
    const PeerInfo& peer() const override { return peer_; }
    const std::string& failure_reason() const override { return failure_; }
    SessionStats stats() const override {
        SessionStats s = stats_;
        s.transport_queued_bytes = out_bytes_;
        s.open_streams = streams_.size();
        return s;
    }
    const SessionOptions& options() const override { return opts_; }
    asio::any_io_executor get_executor() override { return io_.get_executor(); }

    // --- used by StreamImpl ---
    bool usable() const { return state_ == State::established; }
    void send_frame(FrameType type, std::uint8_t flags, std::uint32_t stream,
                    std::span<const std::uint8_t> payload = {}) {
        FrameHeader h{type, flags, stream, static_cast<std::uint32_t>(payload.size())};
        enqueue(encode_frame(h, payload));
    }
    void send_reset(std::uint32_t stream, ResetCode code, std::string_view reason) {
        send_frame(FrameType::reset, 0, stream,
                   encode_code_reason(static_cast<std::uint32_t>(code), reason));
    }
    void mark_ready(const std::shared_ptr<StreamImpl>& s) {
        if (s->in_ready_ || !s->wants_to_send())
            return;
        s->in_ready_ = true;
        ready_.push_back(s);
        pump();
    }
    void enqueue_data(std::vector<std::uint8_t> frame) { enqueue(std::move(frame)); }
    void stream_finished(StreamImpl& s) {
        if (s.phase_ == StreamImpl::Phase::pending_in && pending_in_ > 0)
            --pending_in_;
        if (s.phase_ == StreamImpl::Phase::pending_out && pending_out_ > 0)
            --pending_out_;
        streams_.erase(s.id());
        note_stream_churn();
    }
    void stream_accepted(StreamImpl& s) {
        if (pending_in_ > 0)
            --pending_in_;
        send_frame(FrameType::accept, 0, s.id());
    }
    std::uint32_t send_max_payload() const { return peer_.max_frame_payload; }
    const std::string& component() const { return opts_.log_component; }
    void flush();

  private:
    void reset_ids() {
        next_local_id_ = opts_.role == Role::host ? 1 : 2;
        last_peer_id_ = 0;
    }
    void read_more();
    void on_read(const error_code& ec, std::size_t n);
    void process_input();
    bool handle_handshake_frame(const Frame& f);
    void handle_frame(const Frame& f);
    void handle_open(const Frame& f);
    void handle_stream_frame(const Frame& f);
    bool peer_id_used(std::uint32_t id) const;
    void protocol_error(const std::string& reason);
    void send_hello();
    void send_welcome(const Handshake& hello, std::uint16_t chosen);
    void become_established(const Handshake& hs, std::uint16_t version);
    void start_keepalive();
    void keepalive_tick();
    void enqueue(std::vector<std::uint8_t> frame);
    void pump();
    void on_written(const error_code& ec, std::size_t n);
    void fail_streams(error_code ec, const std::string& reason);
    // Host (or fatal): the session ends for good.
    void finish(error_code ec, const std::string& reason, bool go_away, GoAwayCode code);
    // Guest: forget the host connection, wait for the next HELLO.
    void guest_reset(error_code ec, const std::string& reason, bool clear_input);
    void notify_ready(error_code ec) {
        if (!ready_handler_)
            return;
        auto h = ready_handler_;
        if (opts_.role == Role::host)
            ready_handler_ = nullptr;
        asio::post(io_, [h, ec, p = peer_] { h(ec, p); });
    }

    asio::io_context& io_;
    asio::posix::stream_descriptor sock_;
    SessionOptions opts_;
    State state_ = State::idle;
    FrameDecoder decoder_;
    asio::steady_timer hello_timer_, deadline_timer_, keepalive_timer_, poll_timer_;
    // SessionOptions::trim_heap_when_idle: the last stream open or end, and the timer
    // that trims the heap once that is long enough ago.
    asio::steady_timer trim_timer_;
    Clock::time_point last_churn_{};
    bool trim_armed_ = false;
    void note_stream_churn();
    void arm_trim(Clock::duration after);
    bool reading_ = false;

    std::deque<std::vector<std::uint8_t>> outq_;
    std::vector<std::vector<std::uint8_t>> inflight_;
    std::size_t out_bytes_ = 0;
    bool writing_ = false;
    std::deque<std::shared_ptr<StreamImpl>> ready_;

    std::map<std::uint32_t, std::shared_ptr<StreamImpl>> streams_;
    std::uint32_t next_local_id_ = 1;
    std::uint32_t last_peer_id_ = 0;
    std::size_t pending_in_ = 0, pending_out_ = 0;
    std::uint64_t refusals_ = 0;

    std::uint64_t nonce_ = 0;
    PeerInfo peer_;
    std::string failure_;
    SessionStats stats_;
    std::uint64_t ping_seq_ = 0;
    bool ping_outstanding_ = false;
    bool waiting_for_paused_peer_ = false;  // keepalive deferred: opts_.peer_paused() said so
    Clock::time_point ping_sent_;
    Clock::time_point last_rx_;          // when bytes last arrived from the peer
    bool late_pong_logged_ = false;      // "the peer sends but its PONG is late", once per PING

    StreamHandler stream_handler_;
    CloseHandler close_handler_;
    ReadyHandler ready_handler_;
};

// ---------------------------------------------------------------- Session

std::shared_ptr<Session> Session::create(asio::io_context& io, UniqueFd transport,
                                         SessionOptions options) {
    if (!transport)
        throw Error("cannot create a channel session", "transport", "pass an open fd");
    if (options.max_frame_payload < kMinFramePayload ||
        options.max_frame_payload > kMaxFramePayloadLimit)
        throw Error(fmt::format("channel max_frame_payload {} is out of range {}..{}",
                                options.max_frame_payload, kMinFramePayload, kMaxFramePayloadLimit),
                    "SessionOptions");
    if (options.initial_window < options.max_frame_payload || options.initial_window > kMaxWindow)
        throw Error(fmt::format("channel initial_window {} must be >= max_frame_payload and <= {}",
                                options.initial_window, kMaxWindow),
                    "SessionOptions");
    if (options.max_streams == 0 || options.max_pending_opens == 0)
        throw Error("channel max_streams and max_pending_opens must be > 0", "SessionOptions");
    if (options.min_version == 0 || options.min_version > options.max_version)
        throw Error("channel protocol version range is invalid", "SessionOptions");
    if (options.agent_version.size() > kMaxAgentVersion)
        options.agent_version.resize(kMaxAgentVersion);
    // Writes to a transport whose peer is gone must fail with EPIPE, not kill the process.
    static std::once_flag sigpipe_once;
    std::call_once(sigpipe_once, [] {
        struct sigaction old {};
        if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL)
            ::signal(SIGPIPE, SIG_IGN);
    });
    // Asio needs a non-blocking fd; a char device is fine with epoll.
    const int flags = ::fcntl(transport.get(), F_GETFL);
    if (flags < 0)
        throw_errno("cannot use the channel transport", "fd");
    struct stat st {};
    if (::fstat(transport.get(), &st) == 0 && S_ISREG(st.st_mode))
        throw Error("cannot use a regular file as the channel transport", "fd",
                    "pass a connected socket or the virtio-serial character device");
    const int fd = transport.release();
    try {
        return std::make_shared<SessionImpl>(io, fd, std::move(options));
    } catch (const boost::system::system_error& e) {
        ::close(fd);
        throw Error(fmt::format("cannot use the channel transport: {}", e.what()), "fd",
                    "pass a connected socket or the virtio-serial character device");
    }
}

void SessionImpl::start(ReadyHandler on_ready) {
    if (state_ != State::idle)
        return;
    ready_handler_ = std::move(on_ready);
    state_ = State::handshaking;
    if (opts_.role == Role::host) {
        nonce_ = random_nonce();
        send_hello();
        if (opts_.handshake_timeout.count() > 0) {
            deadline_timer_.expires_after(opts_.handshake_timeout);
            deadline_timer_.async_wait([w = std::weak_ptr<SessionImpl>(self())](error_code ec) {
                auto s = w.lock();
                if (ec || !s || s->state_ != State::handshaking)
                    return;
                const std::string reason = fmt::format(
                    "no answer from the guest agent within {} ms (is the VM running and "
                    "the guest agent started?)",
                    s->opts_.handshake_timeout.count());
                s->failure_ = reason;
                s->notify_ready(errc::handshake_timeout);
                s->finish(errc::handshake_timeout, reason, false, GoAwayCode::normal);
            });
        }
    } else {
        log::info(component(), "waiting for the host's HELLO");
    }
    read_more();
}

void SessionImpl::send_hello() {
    if (state_ != State::handshaking)
        return;
    // Do not pile HELLOs up while the transport is not being read (guest still booting).
    if (out_bytes_ == 0) {
        Handshake hs;
        hs.min_version = opts_.min_version;
        hs.max_version = opts_.max_version;
        hs.nonce = nonce_;
        hs.max_frame_payload = opts_.max_frame_payload;
        hs.initial_window = opts_.initial_window;
        hs.max_streams = opts_.max_streams;
        hs.agent_version = opts_.agent_version;
        send_frame(FrameType::hello, 0, 0, encode_handshake(hs));
    }
    hello_timer_.expires_after(opts_.hello_interval);
    hello_timer_.async_wait([w = std::weak_ptr<SessionImpl>(self())](error_code ec) {
        if (auto s = w.lock(); s && !ec)
            s->send_hello();
    });
}

void SessionImpl::send_welcome(const Handshake& hello, std::uint16_t chosen) {
    Handshake hs;
    hs.min_version = opts_.min_version;
    hs.max_version = opts_.max_version;
    hs.chosen_version = chosen;
    hs.nonce = hello.nonce;
    hs.max_frame_payload = opts_.max_frame_payload;
    hs.initial_window = opts_.initial_window;
    hs.max_streams = opts_.max_streams;
    hs.agent_version = opts_.agent_version;
    send_frame(FrameType::welcome, 0, 0, encode_handshake(hs));
}

void SessionImpl::become_established(const Handshake& hs, std::uint16_t version) {
    state_ = State::established;
    last_rx_ = Clock::now();
    peer_.version = version;
    failure_.clear();
    decoder_.set_max_payload(opts_.max_frame_payload);
    ++stats_.handshakes;
    hello_timer_.cancel();
    deadline_timer_.cancel();
    log::info(component(), "{} established: protocol {}, peer {} (window {}, frame {}, streams {})",
              opts_.role == Role::host ? "channel to the guest" : "channel to the host", version,
              hs.agent_version.empty() ? "?" : hs.agent_version, hs.initial_window,
              hs.max_frame_payload, hs.max_streams);
    start_keepalive();
    notify_ready({});
}

void SessionImpl::start_keepalive() {
    ping_outstanding_ = false;
    if (opts_.keepalive_interval.count() <= 0)
        return;
    keepalive_timer_.expires_after(opts_.keepalive_interval);
    keepalive_timer_.async_wait([w = std::weak_ptr<SessionImpl>(self())](error_code ec) {
        if (auto s = w.lock(); s && !ec)
            s->keepalive_tick();
    });
}

void SessionImpl::keepalive_tick() {
    if (state_ != State::established)
        return;
    // This tick itself ran far too late: our own event loop (or this whole process, or
    // the VM) did not run. The peer's answer may be waiting unread in the socket: let the
    // reads that are due run before judging the peer.
    const auto late = Clock::now() - keepalive_timer_.expiry();
    if (ping_outstanding_ && late > opts_.keepalive_interval) {
        log::warn(component(), "the keepalive ran {} ms late: this side was stalled; judging the "
                  "peer at the next tick",
                  std::chrono::duration_cast<std::chrono::milliseconds>(late).count());
        ping_sent_ += late;
        last_rx_ = std::min(last_rx_ + late, Clock::now());
    } else if (ping_outstanding_) {
        if (Clock::now() - ping_sent_ >= opts_.keepalive_timeout && opts_.role == Role::host &&
            opts_.peer_paused && opts_.peer_paused()) {
            if (!waiting_for_paused_peer_)
                log::info(opts_.log_component,
                          "no answer to a keepalive PING for {} ms, but the VM is paused: "
                          "waiting for it to resume",
                          opts_.keepalive_timeout.count());
            waiting_for_paused_peer_ = true;
            ping_sent_ = Clock::now();  // the PING stays outstanding; time it from now
        } else if (Clock::now() - ping_sent_ >= opts_.keepalive_timeout &&
                   Clock::now() - last_rx_ < opts_.keepalive_timeout) {
            // The peer's event loop is alive (it keeps sending); its PONG waits behind
            // other frames. Ending the session would only cut its streams.
            if (!std::exchange(late_pong_logged_, true))
                log::warn(component(),
                          "no PONG for {} ms, but the peer sent data {} ms ago: waiting for it",
                          ms_since(ping_sent_), ms_since(last_rx_));
        } else if (Clock::now() - ping_sent_ >= opts_.keepalive_timeout) {
            const std::string reason = fmt::format(
                "the {} did not answer a keepalive PING within {} ms (nothing at all from it "
                "for {} ms)",
                opts_.role == Role::host ? "guest agent" : "host", opts_.keepalive_timeout.count(),
                ms_since(last_rx_));
            if (opts_.role == Role::host)
                finish(errc::keepalive_timeout, reason, true, GoAwayCode::keepalive_timeout);
            else
                guest_reset(errc::keepalive_timeout, reason, true);
            return;
        }
    } else {
        ping_outstanding_ = true;
        late_pong_logged_ = false;
        ping_sent_ = Clock::now();
        send_frame(FrameType::ping, 0, 0, encode_u64(++ping_seq_));
    }
    keepalive_timer_.expires_after(std::min(opts_.keepalive_interval, opts_.keepalive_timeout));
    keepalive_timer_.async_wait([w = std::weak_ptr<SessionImpl>(self())](error_code ec) {
        if (auto s = w.lock(); s && !ec)
            s->keepalive_tick();
    });
}

// ---------------------------------------------------------------- reading

void SessionImpl::read_more() {
    if (reading_ || state_ == State::closing || state_ == State::closed)
        return;
    reading_ = true;
    auto space = decoder_.prepare(kReadChunk);
    sock_.async_read_some(asio::buffer(space.data(), space.size()),
                          [s = self()](const error_code& ec, std::size_t n) {
                              s->reading_ = false;
                              s->on_read(ec, n);
                          });
}

void SessionImpl::on_read(const error_code& ec, std::size_t n) {
    if (state_ == State::closing || state_ == State::closed)
        return;
    if (ec) {
        const bool eof = ec == asio::error::eof;
        const std::string what = eof ? "EOF" : ec.message();
        if (opts_.role == Role::host) {
            finish(errc::session_closed,
                   fmt::format("the channel transport closed ({}): the VM stopped or QEMU "
                               "closed the port",
                               what),
                   false, GoAwayCode::normal);
            return;
        }
        if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
            finish(errc::session_closed, "the channel device was closed", false,
                   GoAwayCode::normal);
            return;
        }
        // Guest: the host disconnected (the char device reports EOF/HUP until a host
        // connects again). Reset and poll.
        if (state_ == State::established)
            guest_reset(errc::session_closed, fmt::format("the host disconnected ({})", what),
                        true);
        else
            decoder_.clear();
        poll_timer_.expires_after(opts_.reconnect_poll);
        poll_timer_.async_wait([w = std::weak_ptr<SessionImpl>(self())](error_code e) {
            if (auto s = w.lock(); s && !e)
                s->read_more();
        });
        return;
    }
    stats_.bytes_in += n;
    last_rx_ = Clock::now();
    decoder_.commit(n);
    process_input();
    read_more();
}

void SessionImpl::process_input() {
    Frame f;
    while (state_ == State::handshaking || state_ == State::established) {
        if (state_ == State::handshaking) {
            const FrameType want = opts_.role == Role::host ? FrameType::welcome : FrameType::hello;
            const std::size_t dropped = decoder_.skip_to_handshake(want);
            if (dropped) {
                stats_.discarded_bytes += dropped;
                log::debug(component(), "resync: discarded {} bytes while waiting for {}", dropped,
                           to_string(want));
            }
            const auto st = decoder_.next(f);
            if (st == FrameDecoder::Status::need_more)
                return;
            if (st == FrameDecoder::Status::error) {
                stats_.discarded_bytes += decoder_.discard(1);
                continue;
            }
            ++stats_.frames_in;
            handle_handshake_frame(f);
            continue;
        }
        const auto st = decoder_.next(f);
        if (st == FrameDecoder::Status::need_more)
            return;
        if (st == FrameDecoder::Status::error) {
            protocol_error(fmt::format("framing error: {}", decoder_.error()));
            continue;
        }
        ++stats_.frames_in;
        handle_frame(f);
    }
}

bool SessionImpl::handle_handshake_frame(const Frame& f) {
    std::string err;
    auto hs = decode_handshake(f.payload, err);
    if (!hs) {
        log::warn(component(), "ignoring a malformed {}: {}", to_string(f.header.type), err);
        return false;
    }
    peer_ = PeerInfo{};
    peer_.peer_min_version = hs->min_version;
    peer_.peer_max_version = hs->max_version;
    peer_.agent_version = hs->agent_version;
    peer_.max_frame_payload = std::min(hs->max_frame_payload, kMaxFramePayloadLimit);
    peer_.initial_window = hs->initial_window;
    peer_.max_streams = hs->max_streams;
    if (opts_.role == Role::host) {
        if (hs->nonce != nonce_) {
            log::debug(component(), "ignoring a stale WELCOME (answer to an earlier HELLO)");
            return false;
        }
        const std::uint16_t v = hs->chosen_version;
        if (v == 0 || v < opts_.min_version || v > opts_.max_version) {
            failure_ =
                describe_version_mismatch(opts_.role, opts_.min_version, opts_.max_version, peer_);
            log::error(component(), "{}", failure_);
            notify_ready(errc::version_mismatch);
            finish(errc::version_mismatch, failure_, false, GoAwayCode::version_mismatch);
            return false;
        }
        become_established(*hs, v);
        return true;
    }
    // Guest: a HELLO. Pick the highest common version.
    const std::uint16_t lo = std::max(opts_.min_version, hs->min_version);
    const std::uint16_t hi = std::min(opts_.max_version, hs->max_version);
    const std::uint16_t chosen = lo <= hi ? hi : 0;
    nonce_ = hs->nonce;
    send_welcome(*hs, chosen);
    if (chosen == 0) {
        failure_ =
            describe_version_mismatch(opts_.role, opts_.min_version, opts_.max_version, peer_);
        log::error(component(), "{}", failure_);
        notify_ready(errc::version_mismatch);
        return false;  // stay in handshaking: a matching host may connect later
    }
    become_established(*hs, chosen);
    return true;
}

bool SessionImpl::peer_id_used(std::uint32_t id) const {
    const bool peer_parity = (id % 2 == 1) == (opts_.role == Role::guest);
    if (peer_parity)
        return id <= last_peer_id_;
    return id < next_local_id_;
}

void SessionImpl::handle_frame(const Frame& f) {
    const auto& h = f.header;
    switch (h.type) {
        case FrameType::hello:
            if (opts_.role == Role::host) {
                protocol_error("the guest sent a HELLO (only the host may)");
                return;
            }
            {
                std::string err;
                auto hs = decode_handshake(f.payload, err);
                if (!hs) {
                    protocol_error("malformed HELLO: " + err);
                    return;
                }
                if (hs->nonce == nonce_) {  // a repeated HELLO of this host: answer again
                    send_welcome(*hs, peer_.version);
                    return;
                }
            }
            guest_reset(errc::session_closed, "the host reconnected (new HELLO)", false);
            handle_handshake_frame(f);
            return;
        case FrameType::welcome:
            if (opts_.role == Role::guest)
                protocol_error("the host sent a WELCOME");
            // Host: a duplicate answer to a repeated HELLO. Ignore.
            return;
        case FrameType::ping:
            if (h.flags & flag::ack) {
                if (load_u64(f.payload.data()) == ping_seq_) {
                    ping_outstanding_ = false;
                    // A slow answer is the early sign of a stalled peer (or of an overloaded
                    // host starving a TCG guest): worth a line before it becomes a timeout.
                    if (const auto rtt = ms_since(ping_sent_);
                        rtt >= opts_.keepalive_interval.count() / 2 && !waiting_for_paused_peer_)
                        log::warn(component(), "keepalive PONG after {} ms (timeout {} ms)", rtt,
                                  opts_.keepalive_timeout.count());
                    if (std::exchange(waiting_for_paused_peer_, false))
                        log::info(opts_.log_component, "the VM answers again after its pause");
                }
            } else {
                send_frame(FrameType::ping, flag::ack, 0, f.payload);
            }
            return;
        case FrameType::go_away: {
            std::uint32_t code = 0;
            std::string reason, err;
            decode_code_reason(f.payload, code, reason, err);
            const std::string who = opts_.role == Role::host ? "guest agent" : "host";
            const std::string text =
                fmt::format("the {} closed the channel: {}", who, reason.empty() ? "-" : reason);
            if (opts_.role == Role::host)
                finish(go_away_errc(code), text, false, GoAwayCode::normal);
            else
                guest_reset(go_away_errc(code), text, true);
            return;
        }
        case FrameType::open:
            handle_open(f);
            return;
        case FrameType::accept:
        case FrameType::data:
        case FrameType::window:
        case FrameType::reset:
            handle_stream_frame(f);
            return;
    }
}

void SessionImpl::handle_open(const Frame& f) {
    const std::uint32_t id = f.header.stream;
    const bool peer_parity = (id % 2 == 1) == (opts_.role == Role::guest);
    if (!peer_parity) {
        protocol_error(fmt::format("OPEN of stream {} uses our id space", id));
        return;
    }
    if (id <= last_peer_id_) {
        protocol_error(
            fmt::format("OPEN of stream {} reuses an id (last was {})", id, last_peer_id_));
        return;
    }
    last_peer_id_ = id;
    std::string service(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
    auto refuse = [&](ResetCode code, const std::string& why) {
        // A flood of opens must not flood the log: the first few are warnings.
        const auto level = ++refusals_ <= 10 ? log::Level::warn : log::Level::debug;
        if (log::level() <= level)
            log::write(
                level, component(),
                fmt::format("refusing stream {} ({}): {}{}", id,
                            valid_service_name(service) ? service : "<invalid name>", why,
                            refusals_ == 10 ? " (further refusals are logged at debug)" : ""));
        send_reset(id, code, why);
    };
    if (!valid_service_name(service)) {
        refuse(
            ResetCode::invalid_service_name,
            fmt::format("service name must be 1..{} chars of [A-Za-z0-9._/:-]", kMaxServiceName));
        return;
    }
    if (streams_.size() >= opts_.max_streams) {
        refuse(ResetCode::too_many_streams,
               fmt::format("{} streams are open (limit {})", streams_.size(), opts_.max_streams));
        return;
    }
    if (pending_in_ >= opts_.max_pending_opens) {
        refuse(ResetCode::too_many_pending_opens,
               fmt::format("{} opens are waiting to be accepted (limit {})", pending_in_,
                           opts_.max_pending_opens));
        return;
    }
    if (!stream_handler_) {
        refuse(ResetCode::refused, fmt::format("no service '{}' here", service));
        return;
    }
    auto s = std::make_shared<StreamImpl>(self(), id, service, StreamImpl::Phase::pending_in,
                                          peer_.initial_window, opts_.initial_window);
    streams_.emplace(id, s);
    last_churn_ = Clock::now();
    ++pending_in_;
    asio::post(io_, [h = stream_handler_, s, service] {
        h(s, service);
        // A handler that neither kept, accepted nor refused the stream: refuse it now rather
        // than hold a pending slot forever. (References: this lambda and the session map.)
        if (s->phase_ == StreamImpl::Phase::pending_in && !s->finished_ && s.use_count() <= 2)
            s->reset(fmt::format("the '{}' service did not take the stream", service));
    });
}

void SessionImpl::handle_stream_frame(const Frame& f) {
    const auto& h = f.header;
    auto it = streams_.find(h.stream);
    if (it == streams_.end()) {
        if (h.type == FrameType::reset)
            return;  // never answer a RESET with a RESET
        if (peer_id_used(h.stream)) {
            // Frames in flight when the stream ended; harmless.
            log::debug(component(), "ignoring {} for finished stream {}", to_string(h.type),
                       h.stream);
            return;
        }
        log::warn(component(), "{} for unknown stream {}: resetting it", to_string(h.type),
                  h.stream);
        send_reset(h.stream, ResetCode::protocol_error, "unknown stream");
        return;
    }
    auto s = it->second;
    switch (h.type) {
        case FrameType::accept:
            if (s->phase_ != StreamImpl::Phase::pending_out) {
                log::warn(component(), "stream {}: unexpected ACCEPT: resetting it", h.stream);
                s->reset("unexpected ACCEPT");
                return;
            }
            if (pending_out_ > 0)
                --pending_out_;
            s->on_accept();
            return;
        case FrameType::data:
            if (s->phase_ != StreamImpl::Phase::open) {
                log::warn(component(), "stream {}: DATA before the open completed: resetting it",
                          h.stream);
                s->reset("data before the open completed");
                return;
            }
            s->on_data(f.payload, (h.flags & flag::fin) != 0);
            return;
        case FrameType::window:
            s->on_window(load_u32(f.payload.data()));
            return;
        case FrameType::reset: {
            std::uint32_t code = 0;
            std::string reason, err;
            decode_code_reason(f.payload, code, reason, err);
            const std::string text = reason.empty()
                                         ? std::string(reset_code_name(code))
                                         : fmt::format("{}: {}", reset_code_name(code), reason);
            const bool refused = s->phase_ == StreamImpl::Phase::pending_out;
            if (refused)
                log::info(component(), "stream {} ({}) refused by the peer: {}", h.stream,
                          s->service(), text);
            else
                log::debug(component(), "stream {} ({}) reset by the peer: {}", h.stream,
                           s->service(), text);
            s->terminate(refused ? errc::stream_refused : errc::stream_reset, text);
            return;
        }
        default:
            return;
    }
}

void SessionImpl::protocol_error(const std::string& reason) {
    log::warn(component(), "protocol error from the {}: {}",
              opts_.role == Role::host ? "guest" : "host", reason);
    if (opts_.role == Role::host) {
        finish(errc::protocol_error, "channel protocol error: " + reason, true,
               GoAwayCode::protocol_error);
    } else {
        send_frame(
            FrameType::go_away, 0, 0,
            encode_code_reason(static_cast<std::uint32_t>(GoAwayCode::protocol_error), reason));
        guest_reset(errc::protocol_error, "channel protocol error: " + reason, false);
    }
}

// ---------------------------------------------------------------- opening streams

void SessionImpl::open(std::string service, OpenHandler handler) {
    auto fail = [&](errc e) { asio::post(io_, [handler, e] { handler(e, nullptr); }); };
    if (state_ != State::established)
        return fail(errc::not_established);
    if (!valid_service_name(service))
        return fail(errc::invalid_service_name);
    if (pending_out_ >= opts_.max_pending_opens)
        return fail(errc::too_many_pending_opens);
    if (streams_.size() >= std::min(opts_.max_streams, peer_.max_streams))
        return fail(errc::too_many_streams);
    if (next_local_id_ > 0x7ffffffdu)
        return fail(errc::stream_ids_exhausted);
    const std::uint32_t id = next_local_id_;
    next_local_id_ += 2;
    auto s = std::make_shared<StreamImpl>(self(), id, service, StreamImpl::Phase::pending_out,
                                          peer_.initial_window, opts_.initial_window);
    s->open_handler_ = std::move(handler);
    streams_.emplace(id, s);
    last_churn_ = Clock::now();
    ++pending_out_;
    send_frame(FrameType::open, 0, id,
               std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(service.data()),
                                             service.size()));
}

// ---------------------------------------------------------------- writing

void SessionImpl::enqueue(std::vector<std::uint8_t> frame) {
    if (state_ == State::closed || state_ == State::idle)
        return;
    out_bytes_ += frame.size();
    stats_.max_transport_queued_bytes = std::max(stats_.max_transport_queued_bytes, out_bytes_);
    ++stats_.frames_out;
    outq_.push_back(std::move(frame));
    if (out_bytes_ > opts_.max_transport_queue && state_ != State::closing) {
        const std::string reason =
            fmt::format("{} bytes are queued for the channel: the {} stopped reading", out_bytes_,
                        opts_.role == Role::host ? "guest" : "host");
        if (opts_.role == Role::host)
            finish(errc::peer_not_reading, reason, false, GoAwayCode::peer_not_reading);
        else
            guest_reset(errc::peer_not_reading, reason, true);
        return;
    }
    flush();
}

void SessionImpl::pump() {
    if (state_ != State::established)
        return;
    while (out_bytes_ < kLowWatermark && !ready_.empty()) {
        auto s = std::move(ready_.front());
        ready_.pop_front();
        s->in_ready_ = false;
        if (!s->wants_to_send())
            continue;
        auto frame = s->cut_frame(send_max_payload());
        out_bytes_ += frame.size();
        ++stats_.frames_out;
        outq_.push_back(std::move(frame));
        if (s->wants_to_send()) {
            s->in_ready_ = true;
            ready_.push_back(std::move(s));
        }
    }
    stats_.max_transport_queued_bytes = std::max(stats_.max_transport_queued_bytes, out_bytes_);
    flush();
}

void SessionImpl::flush() {
    if (writing_ || outq_.empty() || state_ == State::closed)
        return;
    std::size_t batch = 0;
    while (!outq_.empty() && batch < kMaxWriteBatch) {
        batch += outq_.front().size();
        inflight_.push_back(std::move(outq_.front()));
        outq_.pop_front();
    }
    std::vector<asio::const_buffer> bufs;
    bufs.reserve(inflight_.size());
    for (auto& v : inflight_) bufs.emplace_back(asio::buffer(v));
    writing_ = true;
    asio::async_write(sock_, bufs,
                      [s = self()](const error_code& ec, std::size_t n) { s->on_written(ec, n); });
}

void SessionImpl::on_written(const error_code& ec, std::size_t n) {
    writing_ = false;
    std::size_t batch = 0;
    for (auto& v : inflight_) batch += v.size();
    inflight_.clear();
    out_bytes_ -= std::min(out_bytes_, batch);
    stats_.bytes_out += n;
    if (state_ == State::closed)
        return;
    if (ec) {
        if (state_ == State::closing) {
            finish(errc::session_closed, failure_, false, GoAwayCode::normal);
            return;
        }
        if (opts_.role == Role::host || ec == asio::error::bad_descriptor ||
            ec == asio::error::operation_aborted) {
            finish(errc::session_closed,
                   fmt::format("cannot write to the channel transport: {}", ec.message()), false,
                   GoAwayCode::normal);
        } else {
            // Guest: the host went away; reads will report EOF and poll for the next host.
            outq_.clear();
            out_bytes_ = 0;
            if (state_ == State::established)
                guest_reset(errc::session_closed,
                            fmt::format("the host disconnected (write: {})", ec.message()), true);
        }
        return;
    }
    if (state_ == State::closing) {
        if (outq_.empty()) {
            finish(errc::session_closed, failure_, false, GoAwayCode::normal);
            return;
        }
        flush();
        return;
    }
    pump();
    flush();
}

// ---------------------------------------------------------------- ending

void SessionImpl::fail_streams(error_code ec, const std::string& reason) {
    auto streams = std::move(streams_);
    streams_.clear();
    ready_.clear();
    pending_in_ = pending_out_ = 0;
    for (auto& [id, s] : streams) s->terminate(ec, reason);
}

void SessionImpl::close(const std::string& reason) {
    if (state_ == State::closing || state_ == State::closed)
        return;
    if (state_ == State::idle) {
        finish(errc::session_closed, reason, false, GoAwayCode::normal);
        return;
    }
    log::info(component(), "closing the channel: {}", reason);
    finish(errc::session_closed, reason, true, GoAwayCode::normal);
}

void SessionImpl::finish(error_code ec, const std::string& reason, bool go_away, GoAwayCode code) {
    if (state_ == State::closed)
        return;
    const bool was_closing = state_ == State::closing;
    if (!was_closing) {
        if (failure_.empty() || ec != errc::version_mismatch)
            failure_ = reason;
        if (ec != errc::session_closed || !reason.empty())
            log::info(component(), "channel session ended: {}", reason);
        // start()'s handler learns about an end before any handshake (a guest that already
        // had sessions reports those through its close handler only).
        if (state_ == State::handshaking && stats_.handshakes == 0)
            notify_ready(ec);
        hello_timer_.cancel();
        deadline_timer_.cancel();
        keepalive_timer_.cancel();
        poll_timer_.cancel();
        fail_streams(ec, reason);
        trim_timer_.cancel();  // after the streams' ends, which would arm it again
        if (close_handler_) {
            asio::post(io_, [h = std::move(close_handler_), ec, reason] { h(ec, reason); });
            close_handler_ = nullptr;
        }
        if (go_away) {
            // Flush what is queued plus the GOAWAY, then close (bounded by the write).
            outq_.push_back(
                encode_frame(FrameHeader{FrameType::go_away, 0, 0, 0},
                             encode_code_reason(static_cast<std::uint32_t>(code), reason)));
            out_bytes_ += outq_.back().size();
            state_ = State::closing;
            deadline_timer_.expires_after(std::chrono::seconds(2));
            deadline_timer_.async_wait([w = std::weak_ptr<SessionImpl>(self())](error_code e) {
                auto s = w.lock();
                if (!e && s && s->state_ == State::closing)
                    s->finish(errc::session_closed, s->failure_, false, GoAwayCode::normal);
            });
            flush();
            return;
        }
    }
    state_ = State::closed;
    deadline_timer_.cancel();
    outq_.clear();
    error_code ignored;
    sock_.close(ignored);
}

void SessionImpl::note_stream_churn() {
    if (opts_.trim_heap_when_idle.count() <= 0)
        return;
    last_churn_ = Clock::now();
    if (!trim_armed_)
        arm_trim(opts_.trim_heap_when_idle);
}

// One timer per quiet spell, not one per stream: when it fires early (streams came and
// went meanwhile) it waits for the rest of the quiet time again.
void SessionImpl::arm_trim(Clock::duration after) {
    trim_armed_ = true;
    trim_timer_.expires_after(after);
    trim_timer_.async_wait([w = std::weak_ptr<SessionImpl>(self())](error_code ec) {
        auto s = w.lock();
        if (!s)
            return;
        s->trim_armed_ = false;
        if (ec)
            return;
        const auto quiet = Clock::now() - s->last_churn_;
        if (quiet < s->opts_.trim_heap_when_idle) {
            s->arm_trim(s->opts_.trim_heap_when_idle - quiet);
            return;
        }
        ::malloc_trim(0);
        ++s->stats_.heap_trims;
    });
}

void SessionImpl::guest_reset(error_code ec, const std::string& reason, bool clear_input) {
    if (state_ == State::established)
        log::warn(component(), "channel session reset: {}", reason);
    failure_ = reason;
    ++stats_.session_resets;
    keepalive_timer_.cancel();
    fail_streams(ec, reason);
    // Frames queued for the old host are meaningless to the next one.
    outq_.clear();
    out_bytes_ = 0;
    for (auto& v : inflight_) out_bytes_ += v.size();
    if (clear_input)
        decoder_.clear();
    reset_ids();
    nonce_ = 0;
    peer_ = PeerInfo{};
    state_ = State::handshaking;
}

// ---------------------------------------------------------------- Stream

StreamImpl::StreamImpl(std::shared_ptr<SessionImpl> session, std::uint32_t id, std::string service,
                       Phase phase, std::uint32_t send_window, std::uint32_t recv_window)
    : phase_(phase),
      session_(session),
      executor_(session->get_executor()),
      id_(id),
      service_(std::move(service)),
      recv_window_(recv_window),
      recv_window_initial_(recv_window),
      send_window_(send_window) {}

std::shared_ptr<SessionImpl> StreamImpl::session() const {
    auto s = session_.lock();
    if (s && s->usable())
        return s;
    return nullptr;
}

void StreamImpl::accept() {
    if (phase_ != Phase::pending_in || finished_)
        return;
    auto s = session();
    if (!s)
        return;
    phase_ = Phase::open;
    s->stream_accepted(*this);
}

void StreamImpl::async_read_some(asio::mutable_buffer buffer, IoHandler handler) {
    if (read_handler_) {
        asio::post(executor_, [handler] { handler(errc::operation_in_progress, 0); });
        return;
    }
    accept();
    read_buf_ = buffer;
    read_handler_ = std::move(handler);
    deliver_read();
}

void StreamImpl::deliver_read() {
    if (!read_handler_)
        return;
    if (rx_bytes_ > 0 || read_buf_.size() == 0) {
        auto* out = static_cast<std::uint8_t*>(read_buf_.data());
        std::size_t want = read_buf_.size(), n = 0;
        while (n < want && !rx_.empty()) {
            auto& front = rx_.front();
            const std::size_t take = std::min(want - n, front.size() - rx_front_off_);
            std::memcpy(out + n, front.data() + rx_front_off_, take);
            n += take;
            rx_front_off_ += take;
            if (rx_front_off_ == front.size()) {
                rx_.pop_front();
                rx_front_off_ = 0;
            }
        }
        rx_bytes_ -= n;
        consumed_ += static_cast<std::uint32_t>(n);
        asio::post(executor_, [h = std::move(read_handler_), n] { h({}, n); });
        read_handler_ = nullptr;
        maybe_update_window();
        return;
    }
    error_code ec;
    if (error_)
        ec = error_;
    else if (remote_fin_)
        ec = asio::error::eof;
    else
        return;  // wait for data
    asio::post(executor_, [h = std::move(read_handler_), ec] { h(ec, 0); });
    read_handler_ = nullptr;
}

void StreamImpl::maybe_update_window() {
    if (remote_fin_ || finished_)
        return;
    // Batch updates: one WINDOW per quarter window consumed.
    if (consumed_ < recv_window_initial_ / 4)
        return;
    auto s = session();
    if (!s)
        return;
    recv_window_ += consumed_;
    s->send_frame(FrameType::window, 0, id_, encode_u32(consumed_));
    consumed_ = 0;
}

void StreamImpl::async_write(asio::const_buffer buffer, IoHandler handler) {
    if (write_handler_) {
        asio::post(executor_, [handler] { handler(errc::operation_in_progress, 0); });
        return;
    }
    accept();
    error_code ec = error_;
    if (!ec && local_fin_)
        ec = errc::stream_closed;
    auto s = ec ? nullptr : session();
    if (!ec && !s)
        ec = errc::session_closed;
    if (ec || buffer.size() == 0) {
        asio::post(executor_, [handler, ec] { handler(ec, 0); });
        return;
    }
    write_buf_ = buffer;
    write_done_ = 0;
    write_handler_ = std::move(handler);
    s->mark_ready(self());
}

std::vector<std::uint8_t> StreamImpl::cut_frame(std::uint32_t max_payload) {
    const std::size_t n = std::min<std::uint64_t>(
        {write_buf_.size() - write_done_, send_window_, std::uint64_t{max_payload}});
    std::vector<std::uint8_t> frame(kHeaderSize + n);
    const bool last = write_done_ + n == write_buf_.size();
    std::uint8_t flags = 0;
    if (last && local_fin_ && !local_fin_sent_) {
        flags = flag::fin;
        local_fin_sent_ = true;
    }
    encode_header(FrameHeader{FrameType::data, flags, id_, static_cast<std::uint32_t>(n)},
                  frame.data());
    std::memcpy(frame.data() + kHeaderSize,
                static_cast<const std::uint8_t*>(write_buf_.data()) + write_done_, n);
    write_done_ += n;
    send_window_ -= n;
    if (last) {
        const std::size_t total = write_buf_.size();
        asio::post(executor_, [h = std::move(write_handler_), total] { h({}, total); });
        write_handler_ = nullptr;
        write_buf_ = {};
        if (local_fin_sent_)
            maybe_finish();
    }
    return frame;
}

void StreamImpl::shutdown_send() {
    accept();
    if (local_fin_ || finished_)
        return;
    local_fin_ = true;
    if (write_handler_)
        return;  // the FIN rides on the last frame of the pending write
    auto s = session();
    if (!s)
        return;
    local_fin_sent_ = true;
    s->send_frame(FrameType::data, flag::fin, id_);
    maybe_finish();
}

void StreamImpl::reset(std::string reason) {
    if (finished_)
        return;
    auto s = session();
    if (s) {
        const ResetCode code =
            phase_ == Phase::pending_in ? ResetCode::refused : ResetCode::cancelled;
        s->send_reset(id_, code, reason);
    }
    reset_reason_ = reason.empty() ? "reset locally" : "reset locally: " + reason;
    terminate(asio::error::operation_aborted, reset_reason_);
}

void StreamImpl::terminate(error_code ec, std::string reason) {
    if (finished_)
        return;
    auto s = session_.lock();
    if (s)
        s->stream_finished(*this);
    finished_ = true;
    error_ = ec;
    if (reset_reason_.empty())
        reset_reason_ = std::move(reason);
    rx_.clear();
    rx_bytes_ = 0;
    rx_front_off_ = 0;
    if (read_handler_) {
        asio::post(executor_, [h = std::move(read_handler_), ec] { h(ec, 0); });
        read_handler_ = nullptr;
    }
    if (write_handler_) {
        asio::post(executor_, [h = std::move(write_handler_), ec, n = write_done_] { h(ec, n); });
        write_handler_ = nullptr;
    }
    if (open_handler_) {
        asio::post(executor_, [h = std::move(open_handler_), ec, me = self()] { h(ec, me); });
        open_handler_ = nullptr;
    }
}

void StreamImpl::on_accept() {
    phase_ = Phase::open;
    if (open_handler_) {
        asio::post(executor_, [h = std::move(open_handler_), me = self()] { h({}, me); });
        open_handler_ = nullptr;
    }
}

void StreamImpl::on_data(std::span<const std::uint8_t> payload, bool fin) {
    auto s = session_.lock();
    if (remote_fin_) {
        if (s)
            log::warn(s->component(), "stream {}: DATA after FIN: resetting it", id_);
        reset("data after end of stream");
        return;
    }
    if (payload.size() > recv_window_) {
        if (s)
            log::warn(s->component(),
                      "stream {} ({}): window overrun: peer sent {} bytes, window was {}: "
                      "resetting it",
                      id_, service_, payload.size(), recv_window_);
        if (s)
            s->send_reset(id_, ResetCode::protocol_error, "window overrun");
        terminate(errc::protocol_error, "the peer overran the flow-control window");
        return;
    }
    if (!payload.empty()) {
        recv_window_ -= static_cast<std::uint32_t>(payload.size());
        std::size_t direct = 0;
        if (read_handler_ && rx_bytes_ == 0) {
            // A read is waiting: copy straight into its buffer (one copy, no allocation).
            direct = std::min(payload.size(), read_buf_.size());
            std::memcpy(read_buf_.data(), payload.data(), direct);
            consumed_ += static_cast<std::uint32_t>(direct);
            asio::post(executor_, [h = std::move(read_handler_), direct] { h({}, direct); });
            read_handler_ = nullptr;
        }
        if (direct < payload.size()) {
            rx_.emplace_back(payload.begin() + static_cast<std::ptrdiff_t>(direct), payload.end());
            rx_bytes_ += payload.size() - direct;
        }
        if (direct)
            maybe_update_window();
    }
    if (fin)
        remote_fin_ = true;
    deliver_read();
    if (fin)
        maybe_finish();
}

void StreamImpl::on_window(std::uint32_t increment) {
    send_window_ += increment;
    if (send_window_ > kMaxWindow) {
        auto s = session_.lock();
        if (s) {
            log::warn(s->component(), "stream {}: WINDOW grows the window past 2^31: resetting it",
                      id_);
            s->send_reset(id_, ResetCode::protocol_error, "window overflow");
        }
        terminate(errc::protocol_error, "the peer overflowed the flow-control window");
        return;
    }
    if (auto s = session(); s && wants_to_send())
        s->mark_ready(self());
}

void StreamImpl::maybe_finish() {
    if (finished_ || !local_fin_sent_ || !remote_fin_)
        return;
    // Both directions are closed: the session forgets the stream; buffered data stays
    // readable through this object.
    auto s = session_.lock();
    if (s)
        s->stream_finished(*this);
    finished_ = true;
    // Reads drain rx_ and then report eof (error_ stays clear).
}

}  // namespace cordon::channel

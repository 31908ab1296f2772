// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include "clock_sync.hpp"

#include <time.h>

#include <array>
#include <boost/asio/post.hpp>
#include <cmath>
#include <cstdlib>

#include "cordon/log.hpp"
#include "cordon/rpc/codec.hpp"

namespace asio = boost::asio;
using boost::system::error_code;

namespace cordon::hostagent {
namespace {

constexpr const char* kClockSyncLog = "hostagent.clock";
constexpr std::int64_t kSecond = 1'000'000'000;

std::int64_t now_ns(clockid_t id) {
    timespec ts{};
    ::clock_gettime(id, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * kSecond + ts.tv_nsec;
}

}  // namespace

struct ClockSync::Call {
    explicit Call(asio::io_context& io) : timer(io) {}
    std::shared_ptr<channel::Stream> stream;
    std::string line;
    std::array<char, 1024> buf{};
    rpc::LineDecoder decoder{64 * 1024};
    asio::steady_timer timer;
    std::chrono::steady_clock::time_point sent{};
    std::string reason;
    bool done = false;
};

ClockSync::ClockSync(asio::io_context& io, SessionGetter session,
                     std::chrono::milliseconds interval)
    : io_(io),
      session_(std::move(session)),
      interval_(interval),
      tick_timer_(io),
      alive_(std::make_shared<bool>(true)) {}

ClockSync::~ClockSync() {
    stop();
    *alive_ = false;
}

void ClockSync::start() {
    if (interval_.count() <= 0 || running_)
        return;
    running_ = true;
    tick();
}

void ClockSync::stop() {
    running_ = false;
    tick_timer_.cancel();
    if (auto call = in_flight_) {
        call->done = true;
        call->timer.cancel();
        if (call->stream)
            call->stream->reset("the host agent is stopping");
        in_flight_.reset();
    }
}

void ClockSync::sync_now(const std::string& reason) {
    send(reason);
}

void ClockSync::tick() {
    if (!running_)
        return;
    const auto now = std::chrono::steady_clock::now();
    const std::int64_t mono = now_ns(CLOCK_MONOTONIC);
    const std::int64_t real_minus_mono = now_ns(CLOCK_REALTIME) - mono;
    const std::int64_t boot_minus_mono = now_ns(CLOCK_BOOTTIME) - mono;
    if (last_tick_ != std::chrono::steady_clock::time_point{}) {
        std::string reason;
        if (boot_minus_mono - last_boot_minus_mono_ > kSecond) {
            reason = "the host slept";
        } else if (std::llabs(real_minus_mono - last_real_minus_mono_) > kSecond) {
            reason = "the host clock was stepped";
        } else if (now - last_tick_ > std::chrono::seconds(5)) {
            reason = "the host agent was not scheduled for a while";
        }
        if (!reason.empty()) {
            log::info(kClockSyncLog, "{}: syncing the guest clock now", reason);
            send(reason);
        }
    }
    last_tick_ = now;
    last_real_minus_mono_ = real_minus_mono;
    last_boot_minus_mono_ = boot_minus_mono;
    if (now - last_sent_ >= interval_)
        send("periodic");
    tick_timer_.expires_after(std::chrono::seconds(1));
    tick_timer_.async_wait([this, alive = alive_](error_code ec) {
        if (*alive && !ec)
            tick();
    });
}

void ClockSync::send(const std::string& reason) {
    if (!running_)
        return;
    auto session = session_();
    if (!session || !session->established())
        return;  // the channel coming up triggers a sync
    if (in_flight_) {
        if (queued_reason_.empty())
            queued_reason_ = reason;
        return;
    }
    auto call = std::make_shared<Call>(io_);
    call->reason = reason;
    in_flight_ = call;
    last_sent_ = std::chrono::steady_clock::now();
    call->timer.expires_after(call_timeout);
    call->timer.async_wait([this, call, alive = alive_](error_code ec) {
        if (!*alive || ec || call->done)
            return;
        if (call->stream)
            call->stream->reset("time.sync timed out");
        finish(call, false, "no answer within " + std::to_string(call_timeout.count()) + " ms");
    });
    session->open("rpc", [this, call, alive = alive_](error_code ec,
                                                      std::shared_ptr<channel::Stream> stream) {
        if (!*alive || call->done) {
            if (stream)
                stream->reset("time.sync abandoned");
            return;
        }
        if (ec) {
            finish(call, false, "cannot open an rpc stream: " + ec.message());
            return;
        }
        call->stream = stream;
        const rpc::json req{{"id", next_id_++},
                            {"method", "time.sync"},
                            {"params", {{"unix_ns", now_ns(CLOCK_REALTIME)}}}};
        call->line = req.dump() + "\n";
        call->sent = std::chrono::steady_clock::now();
        stream->async_write(asio::buffer(call->line), [this, call, alive](error_code wec,
                                                                          std::size_t) {
            if (!*alive || call->done)
                return;
            if (wec) {
                finish(call, false, "cannot send time.sync: " + wec.message());
                return;
            }
            // Read the one reply line.
            auto read = std::make_shared<std::function<void()>>();
            *read = [this, call, alive, read] {
                call->stream->async_read_some(
                    asio::buffer(call->buf),
                    [this, call, alive, read](error_code rec, std::size_t n) {
                        if (!*alive || call->done) {
                            *read = nullptr;
                            return;
                        }
                        call->decoder.feed(std::string_view(call->buf.data(), n));
                        std::string line;
                        if (call->decoder.next(line) == rpc::LineDecoder::Status::line) {
                            *read = nullptr;
                            const auto reply = rpc::json::parse(line, nullptr, false);
                            if (!reply.is_object()) {
                                finish(call, false, "a malformed reply");
                            } else if (reply.contains("result") && reply["result"].is_object()) {
                                const auto& r = reply["result"];
                                stats_.last_offset_ms = r.value("offset_ms", 0.0);
                                if (r.value("stepped", false))
                                    ++stats_.steps;
                                finish(call, true, "");
                            } else {
                                finish(call, false,
                                       reply.contains("error") ? reply["error"].dump() : line);
                            }
                            return;
                        }
                        if (rec) {
                            *read = nullptr;
                            finish(call, false, "the stream ended: " + rec.message());
                            return;
                        }
                        (*read)();
                    });
            };
            (*read)();
        });
    });
}

void ClockSync::finish(const std::shared_ptr<Call>& call, bool ok, const std::string& detail) {
    if (call->done)
        return;
    call->done = true;
    call->timer.cancel();
    if (call->stream && !call->stream->finished())
        call->stream->shutdown_send();
    if (in_flight_ == call)
        in_flight_.reset();
    const double rtt_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - call->sent)
            .count();
    stats_.last_reason = call->reason;
    std::string next = std::move(queued_reason_);
    queued_reason_.clear();
    if (ok) {
        ++stats_.syncs;
        stats_.last_round_trip_ms = rtt_ms;
        if (std::fabs(stats_.last_offset_ms) >= 100)
            log::info(kClockSyncLog, "guest clock was {:.3f} s off ({}); round trip {:.0f} ms",
                      stats_.last_offset_ms / 1000, call->reason, rtt_ms);
        if (rtt_ms > static_cast<double>(max_round_trip.count())) {
            // The request sat in a paused VM: the time it carried was stale when applied.
            next = "the last sync took " + std::to_string(static_cast<long long>(rtt_ms)) +
                   " ms (the VM was paused)";
        }
    } else {
        ++stats_.failures;
        log::debug(kClockSyncLog, "time.sync ({}) failed: {}", call->reason, detail);
    }
    if (!next.empty()) {
        asio::post(io_, [this, next, alive = alive_] {
            if (*alive)
                send(next);
        });
    }
}

}  // namespace cordon::hostagent

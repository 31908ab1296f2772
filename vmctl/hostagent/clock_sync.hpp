#pragma once
// Keeps the guest's clock on the host's time. The guest's clock stops while the VM is
// paused (host sleep, `virsh suspend`) and drifts under TCG, so the host agent pushes
// its CLOCK_REALTIME with the guest agent's `time.sync` RPC (the guest steps its clock
// when they differ by 100 ms or more):
//   - every `interval` (10 s, as Lima does),
//   - at once when the channel comes up (a new boot, a resumed VM whose channel was
//     dropped by the keepalive),
//   - at once when the host's own clocks jump (CLOCK_REALTIME stepped, or CLOCK_BOOTTIME
//     running ahead of CLOCK_MONOTONIC: the host slept), checked every second,
//   - again at once when a sync took longer than `max_round_trip`: the request waited in
//     a paused VM, so the time it carried was stale by the time the guest applied it.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cordon/channel/session.hpp"

namespace cordon::hostagent {

struct ClockSyncStats {
    std::uint64_t syncs = 0;     // answered time.sync calls
    std::uint64_t steps = 0;     // of which the guest stepped its clock
    std::uint64_t failures = 0;  // error replies, resets, timeouts
    double last_offset_ms = 0;   // guest minus host before the last sync
    double last_round_trip_ms = 0;
    std::string last_reason;  // why the last sync was sent
};

class ClockSync {
  public:
    using SessionGetter = std::function<std::shared_ptr<channel::Session>()>;

    ClockSync(boost::asio::io_context& io, SessionGetter session,
              std::chrono::milliseconds interval);
    ~ClockSync();
    ClockSync(const ClockSync&) = delete;
    ClockSync& operator=(const ClockSync&) = delete;

    void start();  // no-op when the interval is zero
    void stop();
    // Sends a sync now (or right after the one in flight).
    void sync_now(const std::string& reason);
    const ClockSyncStats& stats() const { return stats_; }

    std::chrono::milliseconds max_round_trip{1000};
    std::chrono::milliseconds call_timeout{15'000};

  private:
    struct Call;
    void tick();
    void send(const std::string& reason);
    void finish(const std::shared_ptr<Call>& call, bool ok, const std::string& detail);

    boost::asio::io_context& io_;
    SessionGetter session_;
    std::chrono::milliseconds interval_;
    boost::asio::steady_timer tick_timer_;
    std::shared_ptr<Call> in_flight_;
    std::string queued_reason_;
    std::chrono::steady_clock::time_point last_sent_{};
    std::chrono::steady_clock::time_point last_tick_{};
    std::int64_t last_real_minus_mono_ = 0;
    std::int64_t last_boot_minus_mono_ = 0;
    std::uint64_t next_id_ = 1;
    bool running_ = false;
    ClockSyncStats stats_;
    std::shared_ptr<bool> alive_;
};

}  // namespace cordon::hostagent

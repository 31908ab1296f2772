#pragma once
// The guest's side of clock synchronisation. The guest has no network time source of its
// own and its clock stops while the VM is paused (host sleep, `virsh suspend`), so the
// host agent pushes the host's time: `time.sync` {"unix_ns": N} where N is the host's
// CLOCK_REALTIME in nanoseconds when it sent the request. The guest steps CLOCK_REALTIME
// to it when they differ by more than kStepThreshold and answers
// {"offset_ms": guest minus host before the step, "stepped": bool}.
#include <chrono>
#include <cstdint>

#include "cordon/rpc/rpc.hpp"

namespace cordon::agent {

class ClockSync {
  public:
    // Differences below this are left alone (the channel's own latency is a few ms).
    static constexpr std::chrono::milliseconds kStepThreshold{100};

    void register_methods(rpc::Server& server);
    // {"unix_ns" (the guest's clock now), "syncs", "steps", "last_offset_ms",
    // "last_step_offset_ms", "last_sync_uptime_s"} for the info RPC.
    rpc::json info() const;

    // The pure part, for tests: the offset of `guest_ns` from `host_ns` and whether it
    // is large enough to step.
    static double offset_ms(std::int64_t guest_ns, std::int64_t host_ns) noexcept;
    static bool should_step(double offset) noexcept;

  private:
    rpc::json sync(const rpc::json& params);

    std::uint64_t syncs_ = 0;
    std::uint64_t steps_ = 0;
    double last_offset_ms_ = 0;
    double last_step_offset_ms_ = 0;  // the offset the last step corrected
    double last_sync_uptime_s_ = -1;
};

}  // namespace cordon::agent

#include "clock_sync.hpp"

#include <time.h>

#include <cmath>

#include "cordon/error.hpp"
#include "cordon/log.hpp"

namespace cordon::agent {
namespace {

constexpr const char* kClockSyncLog = "clock";
constexpr std::int64_t kNs = 1'000'000'000;

std::int64_t realtime_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * kNs + ts.tv_nsec;
}

double uptime_s() {
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

double ClockSync::offset_ms(std::int64_t guest_ns, std::int64_t host_ns) noexcept {
    return static_cast<double>(guest_ns - host_ns) / 1e6;
}

bool ClockSync::should_step(double offset) noexcept {
    return std::fabs(offset) >= static_cast<double>(kStepThreshold.count());
}

void ClockSync::register_methods(rpc::Server& server) {
    server.register_method("time.sync",
                           [this](const rpc::json& params, rpc::Call&) { return sync(params); });
}

rpc::json ClockSync::sync(const rpc::json& params) {
    if (!params.is_object() || !params.contains("unix_ns") ||
        !params["unix_ns"].is_number_integer()) {
        throw rpc::CallError(
            rpc::code::invalid_params,
            "time.sync needs {\"unix_ns\": the host's CLOCK_REALTIME in nanoseconds}", "time.sync");
    }
    const auto host_ns = params["unix_ns"].get<std::int64_t>();
    // Year 2000 .. 2200: anything else is a broken host clock, not a time to copy.
    if (host_ns < 946'684'800LL * kNs || host_ns > 7'258'118'400LL * kNs) {
        throw rpc::CallError(
            rpc::code::invalid_params,
            "time.sync: unix_ns " + std::to_string(host_ns) + " is not a plausible time",
            "time.sync", "check the host's clock");
    }
    const std::int64_t guest_ns = realtime_ns();
    const double offset = offset_ms(guest_ns, host_ns);
    bool stepped = false;
    if (should_step(offset)) {
        // Step by the measured difference rather than to host_ns, so the time this
        // handler took is not lost.
        const std::int64_t target = realtime_ns() - (guest_ns - host_ns);
        timespec ts{};
        ts.tv_sec = static_cast<time_t>(target / kNs);
        ts.tv_nsec = static_cast<long>(target % kNs);
        if (::clock_settime(CLOCK_REALTIME, &ts) != 0) {
            throw rpc::CallError(rpc::code::failed,
                                 "cannot set the guest clock: " + errno_string(errno), "time.sync",
                                 "the guest agent needs CAP_SYS_TIME (it runs as root in the VM)");
        }
        stepped = true;
        ++steps_;
        last_step_offset_ms_ = offset;
        log::info(kClockSyncLog, "guest clock was {:.3f} s {} the host's: stepped", std::fabs(offset) / 1000,
                  offset < 0 ? "behind" : "ahead of");
    }
    ++syncs_;
    last_offset_ms_ = offset;
    last_sync_uptime_s_ = uptime_s();
    return rpc::json{{"offset_ms", offset}, {"stepped", stepped}};
}

rpc::json ClockSync::info() const {
    return rpc::json{
        {"unix_ns", realtime_ns()},
        {"syncs", syncs_},
        {"steps", steps_},
        {"last_offset_ms", last_offset_ms_},
        {"last_step_offset_ms", last_step_offset_ms_},
        {"last_sync_uptime_s",
         last_sync_uptime_s_ < 0 ? rpc::json(nullptr) : rpc::json(last_sync_uptime_s_)}};
}

}  // namespace cordon::agent

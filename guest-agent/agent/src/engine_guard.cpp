#include "engine_guard.hpp"

#include <unistd.h>

#include <fstream>

#include "cordon/error.hpp"
#include "cordon/log.hpp"
#include "cordon/mountguard/engine_mode.hpp"
#include "cordon/quiet_asio.hpp"  // GCC 12 false positive in Asio (see the header)

namespace cordon::agent {

namespace {
constexpr const char* kEngineGuardLog = "mount-guard";
}

EngineGuard::EngineGuard(boost::asio::io_context& io, EngineGuardPaths paths)
    : io_(io), paths_(std::move(paths)) {}

EngineGuard::~EngineGuard() {
    *alive_ = false;
    detach();
}

std::string EngineGuard::apply() {
    if (!mountguard::wants_mount_guard_file(paths_.daemon_json)) {
        if (guard_)
            log::info(kEngineGuardLog, "isolation is off: the engine's mount guard is detached");
        detach();
        error_.clear();
        return {};
    }
    if (guard_)
        return {};
    try {
        attach();
        error_.clear();
        return {};
    } catch (const std::exception& e) {
        error_ = std::string(
                     "isolation is on but the engine's mount guard is unavailable, so "
                     "dockerd is not started: ") +
                 e.what();
        log::error(kEngineGuardLog, "{}", error_);
        return error_;
    }
}

void EngineGuard::attach() {
    mountguard::GuardOptions o;
    o.cgroup = paths_.cgroup;
    o.overlay_prefixes = paths_.overlay_prefixes;
    o.probe_dir = paths_.probe_dir;
    guard_ = std::make_unique<mountguard::MountGuard>(o);
    const int fd = ::dup(guard_->denial_fd());
    if (fd < 0)
        throw_errno("cannot watch the mount guard's ring buffer");
    ring_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, fd);
    log::info(kEngineGuardLog, "enforcing for {} (overlay paths under {} prefix(es))", paths_.cgroup,
              paths_.overlay_prefixes.size());
    watch();
}

void EngineGuard::detach() {
    ring_.reset();  // cancels the wait before the guard it watches goes
    guard_.reset();
}

void EngineGuard::watch() {
    ring_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                      [this, alive = alive_](boost::system::error_code ec) {
                          if (!*alive || ec || !guard_)
                              return;
                          guard_->drain([](const mountguard::Denial& d) {
                              log::warn(kEngineGuardLog, "{}", d.describe());
                          });
                          watch();
                      });
}

nlohmann::json EngineGuard::status() const {
    nlohmann::json j;
    j["state"] = guard_ ? "enforcing" : (error_.empty() ? "off" : "failed");
    j["reason"] = error_;
    j["denials"] = guard_ ? guard_->total_denials() : 0;
    return j;
}

}  // namespace cordon::agent

#pragma once
// The engine's mount guard as the agent runs it (guest-agent/mountguard): attached while
// the daemon.json dockerd starts with asks for isolation (userns-remap, or the cordon-idmap
// runtime of exclusive ranges), detached when it does not (isolation off: dockerd is
// trusted by design). Every refusal goes to the agent log. With isolation on and no guard
// (the kernel lacks the BPF LSM...), apply() refuses: dockerd does not start.
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cordon/mountguard/mount_guard.hpp"

namespace cordon::agent {

struct EngineGuardPaths {
    std::string cgroup = "/sys/fs/cgroup/cordon-engine/dockerd";
    std::string daemon_json;                    // what dockerd will read
    std::string probe_dir;                      // the self-test's mount point
    std::vector<std::string> overlay_prefixes;  // the layer stores, each ending in '/'
};

class EngineGuard {
  public:
    EngineGuard(boost::asio::io_context& io, EngineGuardPaths paths);
    ~EngineGuard();
    EngineGuard(const EngineGuard&) = delete;
    EngineGuard& operator=(const EngineGuard&) = delete;

    // Follows daemon.json: attaches the guard (loading it once) or detaches it. Returns ""
    // when dockerd may start, else why not (also kept for status()).
    std::string apply();
    // {"state": "enforcing"|"off"|"failed", "reason": ..., "denials": N}
    nlohmann::json status() const;

  private:
    void attach();
    void detach();
    void watch();

    boost::asio::io_context& io_;
    EngineGuardPaths paths_;
    std::unique_ptr<mountguard::MountGuard> guard_;
    std::unique_ptr<boost::asio::posix::stream_descriptor> ring_;
    std::string error_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace cordon::agent

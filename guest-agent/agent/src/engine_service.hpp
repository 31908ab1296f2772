#pragma once
// The agent's side of the container engine's isolation: which daemon.json dockerd
// starts with, the `isolation` RPC, and the live switch (run on a worker thread,
// driving the supervisor on the agent's io_context).
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cordon/engine/engine_config.hpp"
#include "cordon/engine/isolation_state.hpp"
#include "cordon/engine/switch_journal.hpp"
#include "cordon/guest/supervisor.hpp"
#include "cordon/rpc/rpc.hpp"

namespace cordon::agent {

class EngineService {
public:
    // on_mode runs on the io thread whenever the mode in force is known or changes
    // (the policy proxy follows it).
    EngineService(boost::asio::io_context& io, guest::Supervisor& supervisor, engine::EnginePaths paths,
                  std::function<void(bool isolation)> on_mode);
    ~EngineService();  // waits for a switch in progress
    EngineService(const EngineService&) = delete;
    EngineService& operator=(const EngineService&) = delete;

    // Reads the admin lock from the kernel command line ("cordon.isolation_lock=on|off",
    // set by the host from its admin settings), the user's choice from the data disk,
    // and writes the daemon.json dockerd starts with. Returns the mode in force.
    bool prepare_boot(const std::string& kernel_cmdline);
    const std::string& daemon_json() const { return paths_.daemon_json; }
    bool isolation() const { return isolation_; }
    bool switching() const { return switching_; }
    const engine::RemapUser& remap_user() const { return user_; }

    // Answers the `isolation` RPC: status, or a switch when "enabled" is given.
    void handle_call(std::shared_ptr<rpc::Call> call);

    // How the engine came up under this agent.
    struct StartPath {
        std::string path;     // "started" (first start this boot), "adopted", "restarted"
        std::string reason;   // why that path
        std::string summary;  // one line for people
    };
    // Brings up the supervised services (`services`: name and program, in start order).
    // When an earlier agent of this boot left them running (it was killed; init restarted
    // this one), they are adopted if that is safe: every one runs as recorded (same
    // process, command line and configuration: dockerd's daemon.json byte-identical to
    // what it was started with), no isolation switch was under way, and dockerd answers
    // /_ping within `ping_timeout`. Otherwise what is left over is stopped (SIGKILL) and
    // everything started again. `done` runs on the io thread with the path taken.
    void start_services(const std::string& run_dir,
                        const std::vector<std::pair<std::string, std::string>>& services,
                        std::chrono::milliseconds ping_timeout,
                        std::function<void(const StartPath&)> done);
    // An isolation switch was under way when the previous agent of this boot stopped.
    bool interrupted_switch() const { return interrupted_switch_; }

    // A switch killed half-way (agent killed, power lost) left its journal: prepare_boot
    // takes the mode it switches to, start_services finishes it (moves and re-owns the
    // volumes) after stopping leftovers and before dockerd starts, then the saved images
    // load once dockerd answers. An unreadable journal is set aside (".bad"), no volume is
    // touched and the saved mode stays. Shown in the `isolation` status as
    // "interrupted_switch" and in info.engine.start.reason.
    struct Recovery {
        std::string state;    // "" (none), "pending", "finished", "failed", "set_aside"
        std::string message;  // one line for people
        std::string images;   // "", "pending", "loaded", or why they did not load
    };
    const Recovery& recovery() const { return recovery_; }

  private:
    std::string switch_marker() const { return paths_.daemon_json + ".switching"; }
    void finish_interrupted_switch(StartPath& path);
    void start_image_reload();
    void restart_services(const std::string& run_dir,
                          const std::vector<std::pair<std::string, std::string>>& services,
                          StartPath path, const std::function<void(const StartPath&)>& done);

    boost::asio::io_context& io_;
    guest::Supervisor& supervisor_;
    engine::EnginePaths paths_;
    engine::RemapUser user_;
    engine::IsolationStore store_;
    engine::AdminLock lock_;
    std::function<void(bool)> on_mode_;
    bool isolation_ = true;
    bool switching_ = false;
    bool interrupted_switch_ = false;
    std::thread worker_;
    std::optional<engine::SwitchJournal> pending_journal_;
    Recovery recovery_;
    bool images_pending_ = false;
    std::atomic<bool> stopping_{false};
    std::thread images_worker_;
    std::shared_ptr<bool> alive_;
};

}  // namespace cordon::agent

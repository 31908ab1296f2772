#pragma once
// The agent's side of the container engine's isolation: which daemon.json dockerd
// starts with, the `isolation` RPC, and the live switch (run on a worker thread,
// driving the supervisor on the agent's io_context).
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "cordon/engine/engine_config.hpp"
#include "cordon/engine/isolation_state.hpp"
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

private:


    boost::asio::io_context& io_;
    guest::Supervisor& supervisor_;
    engine::EnginePaths paths_;
    engine::RemapUser user_;
    engine::IsolationStore store_;
    engine::AdminLock lock_;
    std::function<void(bool)> on_mode_;
    bool isolation_ = true;
    bool switching_ = false;
    std::thread worker_;
    std::shared_ptr<bool> alive_;
};

}  // namespace cordon::agent

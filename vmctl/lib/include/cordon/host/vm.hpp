#pragma once
// The lifecycle of one Cordon VM: everything vmctl and the desktop app do with it.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cordon/host/agent_client.hpp"
#include "cordon/host/domain_xml.hpp"
#include "cordon/host/paths.hpp"
#include "cordon/host/settings.hpp"
#include "cordon/host/virt.hpp"

namespace cordon::host {

using Progress = std::function<void(const std::string& line)>;

// Structured progress of a long operation, for progress bars and lifecycle displays.
struct ProgressStep {
    std::string operation;  // "start", "stop", "isolation"
    // Machine-readable step: start: connect, image, accelerator, data_disk, define, boot,
    // hostagent, agent, engine, ready, cancelled; stop: agent_shutdown, acpi, destroy,
    // stopped; isolation: stop_containers, save_images, stop_engine, move_volumes,
    // start_engine, load_images, rollback, done; any operation: note (a line of news that
    // does not advance it: a reconnect, a fallback; fraction is the last one reported).
    std::string step;
    double fraction = 0;  // 0..1, never decreasing within one operation
    std::string message;  // the same line the text progress gets
};
using StepProgress = std::function<void(const ProgressStep&)>;

// Cancels a start in progress from another thread (GUI Cancel, Ctrl-C in vmctl).
// Copies share one flag.
class CancelToken {
  public:
    CancelToken() : flag_(std::make_shared<std::atomic<bool>>(false)) {}
    // Copies only: a moved-from token must still work (it shares the flag).
    CancelToken(const CancelToken&) = default;
    CancelToken& operator=(const CancelToken&) = default;
    void cancel() const {
        if (flag_)
            flag_->store(true);
    }
    bool cancelled() const { return flag_ && flag_->load(); }

  private:
    std::shared_ptr<std::atomic<bool>> flag_;
};

struct StartOptions {
    std::chrono::seconds ready_timeout{600};  // until the guest agent answers ping
    std::filesystem::path hostagent_exe;      // empty: find_hostagent()
    Progress progress;
    StepProgress on_step;
    // When cancelled, start() stops at its next check (at most ~250 ms while it waits)
    // and leaves no half state: a domain it started is destroyed, the host agent it
    // started is stopped, a data disk it created this run is kept (it is valid), and it
    // throws HostError(cancelled). A VM that was already running is left alone.
    CancelToken cancel;
};

struct StartResult {
    bool already_running = false;
    bool kvm = false;
    std::string accelerator_reason;
    bool data_disk_created = false;
    double seconds_to_ready = 0;   // from virDomainCreate until ping answered
    double seconds_to_engine = 0;  // from virDomainCreate until dockerd is ready (0: not waited)
    nlohmann::json agent_info;     // the guest's `info` answer when it has one
    bool agent_waited = false;     // false for a remote URI (no host agent)
};

struct StopOptions {
    std::chrono::seconds agent_timeout{60};  // after the agent's shutdown RPC
    std::chrono::seconds acpi_timeout{30};   // after virDomainShutdown
    Progress progress;
    StepProgress on_step;
};

struct StopResult {
    bool was_running = false;
    std::string method;  // "agent", "acpi", "destroy" or "none"
    double seconds = 0;
};

struct VmStatus {
    std::string name;
    std::string uri;
    bool defined = false;
    DomainStatus domain;
    std::string domain_type;  // "kvm" or "qemu"
    bool hostagent_alive = false;
    int hostagent_pid = 0;
    bool agent_reachable = false;
    nlohmann::json agent_info;
    std::string agent_error;
    VmPaths paths;
};

class Vm {
  public:
    // The hypervisor must outlive the Vm.
    Vm(Hypervisor& hypervisor, Settings settings, AgentConnector connector = connect_agent);

    const Settings& settings() const { return settings_; }
    const VmPaths& paths() const { return paths_; }
    std::string uri() const;

    StartResult start(const StartOptions& options);
    StopResult stop(const StopOptions& options);
    VmStatus status(std::chrono::milliseconds agent_timeout = std::chrono::seconds(3));
    // Destroys and undefines the domain, stops the host agent, and removes the data
    // disk and state folder when delete_data. Returns whether a domain existed.
    bool remove(bool delete_data);

    // One RPC to the guest agent. Throws HostError(vm_not_running) when the domain is
    // not running, HostError(agent_unreachable) / HostError(rpc) otherwise.
    nlohmann::json call_agent(const std::string& method, const nlohmann::json& params,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // The same, passing the guest's notifications (e.g. "progress") to on_notification.
    nlohmann::json call_agent(const std::string& method, const nlohmann::json& params,
                              std::chrono::milliseconds timeout,
                              const AgentClient::NotificationHandler& on_notification);

    // Switches isolation in the guest (`isolation {"enabled", "confirmed"}` plus the admin
    // lock), reporting ProgressStep{"isolation", ...} from the guest's progress
    // notifications. Throws like call_agent (kinds locked, busy, confirmation_required).
    // exclusive_ranges (with enabled): each container gets its own 64K ID range (the
    // guest's cordon-runc) instead of one shared range; unset keeps the guest's choice.
    nlohmann::json set_isolation(bool enabled, bool confirmed, const nlohmann::json& admin_lock,
                                 const StepProgress& on_step = {},
                                 std::chrono::milliseconds timeout = std::chrono::minutes(30),
                                 std::optional<bool> exclusive_ranges = std::nullopt);

  private:
    std::unique_ptr<Connection> connect();
    // nullptr when not defined; throws when the domain exists but is not Cordon's.
    std::unique_ptr<Domain> lookup(Connection& c);
    void say(const Progress& p, const std::string& line);
    // A line of news during a start or stop: the text progress and a "note" step.
    void note(const StartOptions& o, const std::string& line);
    void note(const StopOptions& o, const std::string& line);
    void step(const StartOptions& o, const std::string& name, double fraction,
              const std::string& line);
    void step(const StopOptions& o, const std::string& name, double fraction,
              const std::string& line);
    void wait_for_engine(StartResult& r, std::chrono::steady_clock::time_point deadline,
                         const StartOptions& opt, std::chrono::steady_clock::time_point t0);
    StartResult start_impl(const StartOptions& options, bool& created, pid_t& agent_pid);
    bool wait_for_shutoff(Domain& d, std::chrono::seconds timeout);
    void add_shared_folders(DomainSpec& spec, bool local, const StartOptions& opt);

    Hypervisor& hv_;
    Settings settings_;
    VmPaths paths_;
    AgentConnector connector_;
    double last_fraction_ = 0;  // of the operation in progress, for note steps
};

}  // namespace cordon::host

#pragma once
// What the window needs from the host: the VM's lifecycle (cordon_host), its
// guest agent's RPC, and the containers behind the host's docker.sock
// (cordon_host_docker). HostBackend is the real one; unit tests may inject a
// failing one for error paths. Every method may be called from a worker thread
// and throws cordon::Error (host::HostError for the host library's failures).
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cordon/host/agent_events.hpp"
#include "cordon/host/docker/client.hpp"
#include "cordon/host/vm.hpp"

namespace cordon::gui {

class Backend {
  public:
    virtual ~Backend() = default;
    virtual host::VmStatus status() = 0;
    virtual host::StartResult start(const host::Progress& progress) = 0;
    virtual host::StopResult stop(const host::Progress& progress) = 0;
    // A start with structured progress and cancellation (the host library's StartOptions:
    // progress, on_step, cancel). The default runs start(progress) (test back ends).
    virtual host::StartResult startWith(const host::StartOptions& options) {
        return start(options.progress);
    }
    // Switches isolation; the guest's progress as steps. The default calls the RPC.
    virtual nlohmann::json setIsolation(bool enabled, bool confirmed,
                                        const host::StepProgress& on_step) {
        (void)on_step;
        return callAgent("isolation", {{"enabled", enabled}, {"confirmed", confirmed}},
                         std::chrono::minutes(10));
    }
    // A watcher of the guest agent's pushed events (events.watch); nullptr when the
    // back end has none (then the controller polls).
    virtual std::unique_ptr<host::AgentEventWatcher> watchAgentEvents(
        host::AgentEventWatcher::EventHandler on_event,
        host::AgentEventWatcher::LinkHandler on_link) {
        (void)on_event;
        (void)on_link;
        return nullptr;
    }
    virtual nlohmann::json callAgent(const std::string& method, const nlohmann::json& params,
                                     std::chrono::milliseconds timeout) = 0;
    virtual std::vector<host::docker::Container> containers() = 0;
    // A client of the VM's docker.sock for the container, image and volume pages.
    virtual host::docker::Client dockerClient() {
        return host::docker::Client(paths().docker_socket, std::chrono::seconds(10));
    }
    // The last max_bytes of a local log file (console, host agent); throws when unreadable.
    virtual std::string readLog(const std::string& which, std::size_t max_bytes) = 0;
    virtual host::VmPaths paths() const = 0;
    virtual std::string uri() const = 0;
    // New effective settings (after the user applied the Settings page).
    virtual void setSettings(const host::Settings& settings) = 0;
};

// The real backend over cordon_host. uri_override (from --connect) replaces the
// connect_uri setting for this session without being saved.
class HostBackend final : public Backend {
  public:
    struct Options {
        std::string uri_override;
        std::chrono::seconds ready_timeout{600};  // until the guest agent answers after a start
    };
    HostBackend(std::unique_ptr<host::Hypervisor> hypervisor, host::Settings settings,
                Options options);

    host::VmStatus status() override;
    host::StartResult start(const host::Progress& progress) override;
    host::StopResult stop(const host::Progress& progress) override;
    host::StartResult startWith(const host::StartOptions& options) override;
    nlohmann::json setIsolation(bool enabled, bool confirmed,
                                const host::StepProgress& on_step) override;
    std::unique_ptr<host::AgentEventWatcher> watchAgentEvents(
        host::AgentEventWatcher::EventHandler on_event,
        host::AgentEventWatcher::LinkHandler on_link) override;
    nlohmann::json callAgent(const std::string& method, const nlohmann::json& params,
                             std::chrono::milliseconds timeout) override;
    std::vector<host::docker::Container> containers() override;
    std::string readLog(const std::string& which, std::size_t max_bytes) override;
    host::VmPaths paths() const override;
    std::string uri() const override;
    void setSettings(const host::Settings& settings) override;

  private:
    host::Settings current() const;
    std::unique_ptr<host::Hypervisor> hv_;
    mutable std::mutex mu_;
    host::Settings settings_;
    Options options_;
};

}  // namespace cordon::gui

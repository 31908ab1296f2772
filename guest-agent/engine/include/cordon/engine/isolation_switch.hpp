#pragma once
// Switching the engine between isolation on (userns-remap) and off, live,
// without rebooting the VM. Images and named volumes follow the switch:
//  - images are saved from the old engine and loaded into the new one
//    (dockerd keeps one data root per mapping, so they are not shared);
//  - named volumes are moved between the data roots and re-owned to the new
//    mapping (a rename plus a chown walk; no copy).
// A failure after the old engine stopped rolls everything back and restarts
// the old engine, so the VM is never left without a working engine.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cordon/engine/docker_api.hpp"
#include "cordon/engine/engine_config.hpp"
#include "cordon/engine/id_shift.hpp"
#include "cordon/engine/isolation_state.hpp"
#include "cordon/error.hpp"

namespace cordon::engine {

// Starting and stopping dockerd is the agent's supervisor's job.
class EngineControl {
public:
    virtual ~EngineControl() = default;
    virtual void stop_engine() = 0;                              // returns when dockerd has exited
    virtual void start_engine() = 0;                             // with the daemon.json on disk
    virtual void wait_ready(std::chrono::seconds timeout) = 0;   // throws cordon::Error on timeout
};

struct SwitchRequest {
    bool enabled = true;
    bool confirmed = false;  // the caller accepted that running containers stop
    std::optional<bool> exclusive_ranges;  // absent: keep the current choice
};

struct SwitchResult {
    bool enabled = true;
    bool changed = false;
    bool exclusive_ranges = false;
    std::vector<std::string> stopped_containers;
    std::size_t images_moved = 0;
    std::size_t volumes_moved = 0;
    double seconds = 0;
};

// Thrown when running containers would be stopped and the request was not confirmed.
class ConfirmationRequired : public Error {
public:
    ConfirmationRequired(std::vector<ContainerSummary> running);
    const std::vector<ContainerSummary>& running() const { return running_; }

private:
    std::vector<ContainerSummary> running_;
};

class IsolationSwitch {
public:
    using Progress = std::function<void(const std::string& step)>;
    IsolationSwitch(EnginePaths paths, RemapUser user, IsolationStore& store, DockerApi& api,
                    EngineControl& control);

    // Writes daemon.json for the mode in force (at boot, before dockerd starts).
    void write_daemon_config(bool isolation, bool exclusive_ranges = false) const;

    SwitchResult apply(const SwitchRequest& request, const AdminLock& lock, const Progress& progress);

private:
    struct MovedVolume {
        std::string from;
        std::string to;
    };
    std::vector<MovedVolume> move_volumes(bool from_isolation, bool to_isolation, const Progress& progress);
    void move_back(const std::vector<MovedVolume>& moved, bool from_isolation, bool to_isolation);
    IdMapping mapping_for(bool isolation) const;

    EnginePaths paths_;
    RemapUser user_;
    IsolationStore& store_;
    DockerApi& api_;
    EngineControl& control_;
};

}  // namespace cordon::engine

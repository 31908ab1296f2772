#pragma once
// Switching the engine between isolation on (userns-remap) and off, live,
// without rebooting the VM. Images and named volumes follow the switch:
//  - images are saved from the old engine and loaded into the new one
//    (dockerd keeps one data root per mapping, so they are not shared);
//  - named volumes are moved between the data roots and re-owned to the new
//    mapping (a rename plus a chown walk; no copy).
// A failure after the old engine stopped rolls everything back and restarts
// the old engine, so the VM is never left without a working engine.
// A switch that is killed (agent killed, power lost) is finished at the next agent
// start from its journal (switch_journal.hpp): see finish_interrupted.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cordon/engine/docker_api.hpp"
#include "cordon/engine/engine_config.hpp"
#include "cordon/engine/id_shift.hpp"
#include "cordon/engine/isolation_state.hpp"
#include "cordon/engine/switch_journal.hpp"
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

// What finishing an interrupted switch did.
struct RecoveryReport {
    bool rollback = false;              // it finished a rollback, not a switch
    IsolationChoice saved;              // the choice now saved
    std::size_t volumes = 0;            // volumes the journal names
    std::size_t moved = 0;              // of them, still in the old data root and moved now
    std::vector<std::string> missing;   // in neither data root (logged, skipped)
    ShiftStats shift;                   // the ownership shift re-run over every volume
    bool images_pending = false;        // saved images wait to be loaded (load_pending_images)
    double seconds = 0;
    // One line for people: "finished an interrupted isolation switch: 2 volumes".
    std::string summary() const;
};

class IsolationSwitch {
public:
    using Progress = std::function<void(const std::string& step)>;
    // Called after each durable step of a switch that moves volumes, with the journal as
    // written: "journal written", "volume moved", "engine starting", "mode saved". Tests
    // throw from it to stand for the agent being killed there.
    using StepHook = std::function<void(const std::string& step, const SwitchJournal& journal)>;
    IsolationSwitch(EnginePaths paths, RemapUser user, IsolationStore& store, DockerApi& api,
                    EngineControl& control);

    // Writes daemon.json for the mode in force (at boot, before dockerd starts).
    void write_daemon_config(bool isolation, bool exclusive_ranges = false) const;

    // Refuses (cordon::Error) while an earlier switch's journal is unfinished; loads
    // images an earlier switch saved but did not load (load_pending_images) first.
    SwitchResult apply(const SwitchRequest& request, const AdminLock& lock, const Progress& progress);

    // At agent start, before dockerd starts: rolls the journal's switch forward. Moves the
    // volumes still in the old data root, re-runs the ownership shift over every volume of
    // the journal (idempotent: IDs outside the source range are left alone and the ranges
    // are disjoint), writes daemon.json for the mode then in force (`lock` wins), leaves
    // the images archive for load_pending_images, saves the mode, removes the journal.
    // Running it again after a kill at any point gives the same end state. Throws
    // cordon::Error (the journal stays, to be retried) when a move or a chown fails.
    RecoveryReport finish_interrupted(const SwitchJournal& journal, const AdminLock& lock);

    // Loads the images archive a switch saved, when its note says it is still to be
    // loaded (dockerd must answer), then removes both. False when nothing was pending.
    // Throws cordon::Error when the engine refuses it; the archive is kept for a retry.
    bool load_pending_images();

    void set_step_hook(StepHook hook) { step_hook_ = std::move(hook); }
    const SwitchJournalFile& journal_file() const { return journal_; }

private:
    // Moves every volume of the journal still in its source root to its target root,
    // re-owns each (all of them, again) and records each in the journal as done.
    void roll_volumes(SwitchJournal& journal, const Progress& progress, RecoveryReport* report);
    std::vector<std::string> movable_volumes(bool from_remap, bool to_remap) const;
    void step(const std::string& name, const SwitchJournal& journal) const;
    IdMapping mapping_for(bool isolation) const;

    EnginePaths paths_;
    RemapUser user_;
    IsolationStore& store_;
    DockerApi& api_;
    EngineControl& control_;
    SwitchJournalFile journal_;
    StepHook step_hook_;
};

}  // namespace cordon::engine

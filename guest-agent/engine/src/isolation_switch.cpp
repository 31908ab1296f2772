#include "cordon/engine/isolation_switch.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>

#include "cordon/atomic_file.hpp"
#include "cordon/engine/id_shift.hpp"
#include "cordon/log.hpp"

namespace cordon::engine {
namespace fs = std::filesystem;

namespace {

std::string describe(const std::vector<ContainerSummary>& running) {
    std::string names;
    for (const auto& c : running) {
        if (!names.empty())
            names += ", ";
        names += c.name.empty() ? c.id.substr(0, 12) : c.name;
    }
    return names;
}

}  // namespace

ConfirmationRequired::ConfirmationRequired(std::vector<ContainerSummary> running)
    : Error("switching isolation stops " + std::to_string(running.size()) +
                " running container(s): " + describe(running),
            {}, "confirm to go ahead (vmctl isolation on|off --yes)"),
      running_(std::move(running)) {}

IsolationSwitch::IsolationSwitch(EnginePaths paths, RemapUser user, IsolationStore& store,
                                 DockerApi& api, EngineControl& control)
    : paths_(std::move(paths)),
      user_(std::move(user)),
      store_(store),
      api_(api),
      control_(control),
      journal_(switch_journal_path(paths_)) {}

IdMapping IsolationSwitch::mapping_for(bool isolation) const {
    return isolation ? IdMapping{user_.uids, user_.gids} : identity_mapping();
}

void IsolationSwitch::write_daemon_config(bool isolation, bool exclusive_ranges) const {
    nlohmann::json base = nlohmann::json::object();
    if (::access(paths_.base_daemon_json.c_str(), F_OK) == 0) {
        base = nlohmann::json::parse(read_file(paths_.base_daemon_json), nullptr, false);
        if (!base.is_object())
            throw Error("the image's dockerd configuration is not a JSON object",
                        paths_.base_daemon_json, "rebuild the VM image");
    }
    // The shim first: dockerd (and the containers it starts) must never see an isolating
    // configuration without it.
    write_runc_shim(paths_.runc_shim_dir, isolation);
    write_file_atomically(
        paths_.daemon_json,
        make_daemon_config(base, isolation, paths_, user_, exclusive_ranges).dump(2) + "\n", 0644);
}

std::vector<std::string> IsolationSwitch::movable_volumes(bool from_remap, bool to_remap) const {
    const fs::path from_dir = fs::path(data_root_for(from_remap, paths_, user_)) / "volumes";
    const fs::path to_dir = fs::path(data_root_for(to_remap, paths_, user_)) / "volumes";
    std::vector<std::string> names;
    std::error_code ec;
    if (!fs::is_directory(from_dir, ec))
        return names;
    for (const auto& entry : fs::directory_iterator(from_dir)) {
        if (!entry.is_directory() || entry.is_symlink())
            continue;  // metadata.db, backingFsBlockDev
        const std::string name = entry.path().filename().string();
        if (fs::exists(to_dir / name, ec)) {
            log::warn("engine", "volume {} exists in both modes; keeping both, not moving", name);
            continue;
        }
        names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

void IsolationSwitch::step(const std::string& name, const SwitchJournal& journal) const {
    if (step_hook_)
        step_hook_(name, journal);
}

void IsolationSwitch::roll_volumes(SwitchJournal& journal, const Progress& progress,
                                   RecoveryReport* report) {
    RemapUser user = user_;
    user.uids = journal.remap.uids;
    user.gids = journal.remap.gids;
    const fs::path from_dir = fs::path(data_root_for(journal.from_remap, paths_, user)) / "volumes";
    const fs::path to_dir = fs::path(data_root_for(journal.to_remap, paths_, user)) / "volumes";
    const IdMapping from_map = journal.from_remap ? journal.remap : identity_mapping();
    const IdMapping to_map = journal.to_remap ? journal.remap : identity_mapping();
    std::error_code ec;
    fs::create_directories(to_dir, ec);
    if (ec)
        throw Error("cannot create the volume folder: " + ec.message(), to_dir.string());
    ::chmod(to_dir.c_str(), 0701);
    for (const std::string& name : journal.volumes) {
        const fs::path source = from_dir / name;
        const fs::path target = to_dir / name;
        const bool at_target = fs::exists(fs::symlink_status(target, ec));
        if (!at_target) {
            if (!fs::exists(fs::symlink_status(source, ec))) {
                log::warn("engine", "volume {} is in neither {} nor {}; skipping it", name,
                          from_dir.string(), to_dir.string());
                if (report)
                    report->missing.push_back(name);
                continue;
            }
            progress("moving volume " + name);
            if (::rename(source.c_str(), target.c_str()) != 0)
                throw_errno("cannot move the volume", source.string());
            if (report)
                ++report->moved;
        }
        // Again for a volume already moved: a kill may have stopped its walk half-way.
        const fs::path data = target / "_data";
        if (fs::exists(fs::symlink_status(data, ec))) {
            const ShiftStats st = shift_ownership(data.string(), from_map, to_map);
            if (report) {
                report->shift.entries += st.entries;
                report->shift.changed += st.changed;
            }
        }
        if (std::find(journal.done.begin(), journal.done.end(), name) == journal.done.end()) {
            journal.done.push_back(name);
            journal_.save(journal);
        }
        step("volume moved", journal);
    }
    // The moves and chowns reach the disk before the mode that relies on them is saved.
    const int dfd = ::open(to_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::syncfs(dfd);
        ::close(dfd);
    }
}

std::string RecoveryReport::summary() const {
    std::string s = rollback ? "finished rolling back an interrupted isolation switch: "
                             : "finished an interrupted isolation switch: ";
    s += std::to_string(volumes) + (volumes == 1 ? " volume" : " volumes");
    if (moved > 0)
        s += " (" + std::to_string(moved) + " moved now)";
    s += std::string(", isolation ") +
         (saved.enabled ? (saved.exclusive_ranges ? "on (exclusive ID ranges)" : "on") : "off");
    if (!missing.empty()) {
        s += "; missing:";
        for (const auto& m : missing) s += " " + m;
    }
    if (images_pending)
        s += "; its images load once the engine answers";
    return s;
}

RecoveryReport IsolationSwitch::finish_interrupted(const SwitchJournal& journal,
                                                   const AdminLock& lock) {
    const auto t0 = std::chrono::steady_clock::now();
    RecoveryReport report;
    report.rollback = journal.rollback;
    report.saved = journal.save;
    report.volumes = journal.volumes.size();
    SwitchJournal j = journal;
    roll_volumes(
        j, [](const std::string& s) { log::info("engine", "interrupted isolation switch: {}", s); },
        &report);
    const bool on = effective_isolation(j.save, lock);
    write_daemon_config(on, on && j.save.exclusive_ranges);
    const std::string archive = switch_images_archive(paths_);
    if (!j.images_archive.empty()) {
        if (j.images_archive != archive) {
            log::warn("engine", "the journal names images at {}, not {}; not loading them",
                      j.images_archive, archive);
        } else if (::access(archive.c_str(), F_OK) == 0) {
            write_file_atomically(switch_images_note(paths_),
                                  "load " + archive + " into the engine, then delete both\n", 0600);
            report.images_pending = true;
        } else {
            log::warn("engine",
                      "the images saved by the interrupted switch are gone ({}); pull or build "
                      "them again",
                      archive);
        }
    }
    store_.save(j.save);
    journal_.remove();
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log::info("engine", "{} ({} entries walked, {} re-owned, {:.3f} s)", report.summary(),
              report.shift.entries, report.shift.changed, report.seconds);
    return report;
}

bool IsolationSwitch::load_pending_images() {
    const std::string note = switch_images_note(paths_);
    if (::access(note.c_str(), F_OK) != 0)
        return false;
    const std::string archive = switch_images_archive(paths_);
    if (::access(archive.c_str(), F_OK) != 0) {
        log::warn("engine",
                  "images to load after an isolation switch: {} is gone; pull or build them again",
                  archive);
        ::unlink(note.c_str());
        return false;
    }
    try {
        api_.load_images(archive);
    } catch (const std::exception& e) {
        throw Error(
            std::string("the images saved by an isolation switch could not be loaded: ") + e.what(),
            archive,
            "the agent tries again at its next start; delete " + note + " to give them up");
    }
    ::unlink(archive.c_str());
    ::unlink(note.c_str());
    return true;
}

SwitchResult IsolationSwitch::apply(const SwitchRequest& request, const AdminLock& lock,
                                    const Progress& progress) {
    const auto t0 = std::chrono::steady_clock::now();
    if (journal_.exists())
        throw Error("an earlier isolation switch is unfinished", journal_.path(),
                    "restart the VM (vmctl stop, vmctl start): the agent finishes it at its start");
    const IsolationChoice current = store_.load();
    const bool from = effective_isolation(current, lock);
    const bool from_excl = from && current.exclusive_ranges;
    SwitchResult result;
    result.enabled = from;
    result.exclusive_ranges = from_excl;
    if (lock.locked && request.enabled != lock.enabled) {
        throw Error(std::string("isolation is locked ") + (lock.enabled ? "on" : "off") +
                        " by the administrator",
                    lock.source, "ask your administrator to change the admin settings");
    }
    const bool wants_excl = request.exclusive_ranges.value_or(current.exclusive_ranges);
    const bool to_excl = request.enabled && wants_excl;
    if (request.enabled == from && to_excl == from_excl) {
        if (current.enabled != request.enabled || current.exclusive_ranges != wants_excl)
            store_.save({request.enabled, std::time(nullptr), wants_excl});
        return result;
    }
    const bool to = request.enabled;
    // Data (images, volumes) moves only when userns-remap comes or goes: the plain
    // engine and the exclusive-ranges engine share the plain data root.
    const bool from_remap = from && !from_excl;
    const bool to_remap = to && !to_excl;
    const bool moving = from_remap != to_remap;

    SwitchJournal journal;
    journal.save = {to, std::time(nullptr), wants_excl};
    journal.from_remap = from_remap;
    journal.to_remap = to_remap;
    journal.remap = {user_.uids, user_.gids};
    journal.started_at = journal.save.changed_at;
    if (moving) {
        // The journal must be one the next agent can read: refuse before anything stops.
        parse_switch_journal(to_text(journal), journal_.path());
    }
    load_pending_images();

    const auto running = api_.running_containers();
    if (!running.empty() && !request.confirmed)
        throw ConfirmationRequired(running);
    for (const auto& c : running) {
        progress("stopping container " + (c.name.empty() ? c.id.substr(0, 12) : c.name));
        api_.stop_container(c.id, std::chrono::seconds(10));
        result.stopped_containers.push_back(c.name.empty() ? c.id : c.name);
    }

    const std::vector<std::string> tags = moving ? api_.image_tags() : std::vector<std::string>{};
    const std::string archive = switch_images_archive(paths_);
    if (!tags.empty()) {
        progress("saving " + std::to_string(tags.size()) + " image tag(s) from the current engine");
        api_.save_images(tags, archive);
        journal.images_archive = archive;
    }

    progress("stopping the engine");
    control_.stop_engine();

    try {
        if (moving) {
            // Before the first irreversible step: from here on, a kill is finished at the next
            // start.
            journal.volumes = movable_volumes(from_remap, to_remap);
            journal_.save(journal);
            step("journal written", journal);
            roll_volumes(journal, progress, nullptr);
            journal.step = "starting the engine";
            journal_.save(journal);
            step("engine starting", journal);
        }
        progress(std::string("starting the engine with isolation ") +
                 (to ? (to_excl ? "on (exclusive ID ranges)" : "on") : "off"));
        write_daemon_config(to, to_excl);
        control_.start_engine();
        control_.wait_ready(std::chrono::seconds(90));
    } catch (const std::exception& e) {
        log::error("engine", "switching isolation failed, rolling back: {}", e.what());
        progress("failed; restoring the previous engine");
        try {
            control_.stop_engine();
        } catch (const std::exception& stop_err) {
            log::warn("engine", "stopping the half-started engine: {}", stop_err.what());
        }
        bool volumes_back = true;
        if (moving) {
            // The way back is journaled too: a kill during it is finished at the next start.
            SwitchJournal back;
            back.rollback = true;
            back.save = current;
            back.from_remap = to_remap;
            back.to_remap = from_remap;
            back.remap = journal.remap;
            back.step = "rolling back";
            back.volumes = journal.volumes;
            back.started_at = std::time(nullptr);
            try {
                journal_.save(back);
                roll_volumes(
                    back, [](const std::string&) {}, nullptr);
            } catch (const std::exception& back_err) {
                volumes_back = false;
                log::error(
                    "engine",
                    "moving the volumes back failed: {}; {} finishes it at the next agent start",
                    back_err.what(), journal_.path());
            }
        }
        write_daemon_config(from, from_excl);
        if (moving && volumes_back)
            journal_.remove();
        control_.start_engine();
        control_.wait_ready(std::chrono::seconds(90));
        ::unlink(archive.c_str());
        throw Error(
            std::string("switching isolation ") + (to ? "on" : "off") + " failed: " + e.what(), {},
            volumes_back
                ? "the previous engine was restored; 'vmctl logs engine' shows dockerd's log"
                : "the previous engine was restored, but some volumes are still in the other "
                  "mode's data root until the VM restarts; 'vmctl logs agent' names them");
    }
    if (!tags.empty())
        write_file_atomically(switch_images_note(paths_),
                              "load " + archive + " into the engine, then delete both\n", 0600);
    store_.save(journal.save);
    if (moving) {
        journal_.remove();
        step("mode saved", journal);
    }
    result.enabled = to;
    result.exclusive_ranges = to_excl;
    result.changed = true;
    result.volumes_moved = journal.volumes.size();

    if (!tags.empty()) {
        progress("loading " + std::to_string(tags.size()) + " image tag(s) into the new engine");
        try {
            api_.load_images(archive);
            result.images_moved = tags.size();
        } catch (const std::exception& e) {
            ::unlink(archive.c_str());
            ::unlink(switch_images_note(paths_).c_str());
            throw Error(std::string("isolation is now ") + (to ? "on" : "off") +
                            ", but the images could not be moved: " + e.what(),
                        {}, "load or build the images again");
        }
        ::unlink(archive.c_str());
        ::unlink(switch_images_note(paths_).c_str());
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
}

}  // namespace cordon::engine

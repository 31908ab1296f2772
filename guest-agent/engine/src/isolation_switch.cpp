#include "cordon/engine/isolation_switch.hpp"

#include <sys/stat.h>
#include <unistd.h>

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
        if (!names.empty()) names += ", ";
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
    : paths_(std::move(paths)), user_(std::move(user)), store_(store), api_(api), control_(control) {}

IdMapping IsolationSwitch::mapping_for(bool isolation) const {
    return isolation ? IdMapping{user_.uids, user_.gids} : identity_mapping();
}

void IsolationSwitch::write_daemon_config(bool isolation, bool exclusive_ranges) const {
    nlohmann::json base = nlohmann::json::object();
    if (::access(paths_.base_daemon_json.c_str(), F_OK) == 0) {
        base = nlohmann::json::parse(read_file(paths_.base_daemon_json), nullptr, false);
        if (!base.is_object())
            throw Error("the image's dockerd configuration is not a JSON object", paths_.base_daemon_json,
                        "rebuild the VM image");
    }
    write_file_atomically(paths_.daemon_json, make_daemon_config(base, isolation, paths_, user_, exclusive_ranges).dump(2) + "\n",
                          0644);
}

std::vector<IsolationSwitch::MovedVolume> IsolationSwitch::move_volumes(bool from_isolation, bool to_isolation,
                                                                        const Progress& progress) {
    const fs::path from_dir = fs::path(data_root_for(from_isolation, paths_, user_)) / "volumes";
    const fs::path to_dir = fs::path(data_root_for(to_isolation, paths_, user_)) / "volumes";
    std::vector<MovedVolume> moved;
    std::error_code ec;
    if (!fs::is_directory(from_dir, ec)) return moved;
    fs::create_directories(to_dir, ec);
    if (ec) throw Error("cannot create the volume folder: " + ec.message(), to_dir.string());
    ::chmod(to_dir.c_str(), 0701);
    const IdMapping from_map = mapping_for(from_isolation);
    const IdMapping to_map = mapping_for(to_isolation);
    try {
        for (const auto& entry : fs::directory_iterator(from_dir)) {
            if (!entry.is_directory() || entry.is_symlink()) continue;  // metadata.db, backingFsBlockDev
            const fs::path target = to_dir / entry.path().filename();
            if (fs::exists(target)) {
                log::warn("engine", "volume {} exists in both modes; keeping both, not moving", entry.path().filename().string());
                continue;
            }
            progress("moving volume " + entry.path().filename().string());
            if (::rename(entry.path().c_str(), target.c_str()) != 0)
                throw_errno("cannot move the volume", entry.path().string());
            moved.push_back({entry.path().string(), target.string()});
            const fs::path data = target / "_data";
            if (fs::exists(data)) shift_ownership(data.string(), from_map, to_map);
        }
    } catch (...) {
        move_back(moved, from_isolation, to_isolation);
        throw;
    }
    return moved;
}

void IsolationSwitch::move_back(const std::vector<MovedVolume>& moved, bool from_isolation, bool to_isolation) {
    const IdMapping from_map = mapping_for(from_isolation);
    const IdMapping to_map = mapping_for(to_isolation);
    for (auto it = moved.rbegin(); it != moved.rend(); ++it) {
        try {
            const std::string data = it->to + "/_data";
            if (fs::exists(data)) shift_ownership(data, to_map, from_map);
            if (::rename(it->to.c_str(), it->from.c_str()) != 0) throw_errno("cannot move the volume back", it->to);
        } catch (const std::exception& e) {
            log::error("engine", "rollback of a volume move failed: {}", e.what());
        }
    }
}

SwitchResult IsolationSwitch::apply(const SwitchRequest& request, const AdminLock& lock, const Progress& progress) {
    const auto t0 = std::chrono::steady_clock::now();
    const IsolationChoice current = store_.load();
    const bool from = effective_isolation(current, lock);
    const bool from_excl = from && current.exclusive_ranges;
    SwitchResult result;
    result.enabled = from;
    result.exclusive_ranges = from_excl;
    if (lock.locked && request.enabled != lock.enabled) {
        throw Error(std::string("isolation is locked ") + (lock.enabled ? "on" : "off") + " by the administrator",
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

    const auto running = api_.running_containers();
    if (!running.empty() && !request.confirmed) throw ConfirmationRequired(running);
    for (const auto& c : running) {
        progress("stopping container " + (c.name.empty() ? c.id.substr(0, 12) : c.name));
        api_.stop_container(c.id, std::chrono::seconds(10));
        result.stopped_containers.push_back(c.name.empty() ? c.id : c.name);
    }

    const std::vector<std::string> tags =
        from_remap != to_remap ? api_.image_tags() : std::vector<std::string>{};
    const std::string archive = paths_.state_dir + "/isolation-switch-images.tar";
    if (!tags.empty()) {
        progress("saving " + std::to_string(tags.size()) + " image tag(s) from the current engine");
        api_.save_images(tags, archive);
    }

    progress("stopping the engine");
    control_.stop_engine();

    std::vector<MovedVolume> moved;
    try {
        if (from_remap != to_remap) moved = move_volumes(from_remap, to_remap, progress);
        progress(std::string("starting the engine with isolation ") + (to ? (to_excl ? "on (exclusive ID ranges)" : "on") : "off"));
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
        move_back(moved, from_remap, to_remap);
        write_daemon_config(from, from_excl);
        control_.start_engine();
        control_.wait_ready(std::chrono::seconds(90));
        ::unlink(archive.c_str());
        throw Error(std::string("switching isolation ") + (to ? "on" : "off") + " failed: " + e.what(), {},
                    "the previous engine was restored; 'vmctl logs engine' shows dockerd's log");
    }
    store_.save({to, std::time(nullptr), wants_excl});
    result.enabled = to;
    result.exclusive_ranges = to_excl;
    result.changed = true;
    result.volumes_moved = moved.size();

    if (!tags.empty()) {
        progress("loading " + std::to_string(tags.size()) + " image tag(s) into the new engine");
        try {
            api_.load_images(archive);
            result.images_moved = tags.size();
        } catch (const std::exception& e) {
            ::unlink(archive.c_str());
            throw Error(std::string("isolation is now ") + (to ? "on" : "off") +
                            ", but the images could not be moved: " + e.what(),
                        {}, "load or build the images again");
        }
        ::unlink(archive.c_str());
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
}

}  // namespace cordon::engine

#include "cordon/engine/isolation_rpc.hpp"

#include "cordon/engine/id_range_json.hpp"
#include "cordon/error.hpp"

namespace cordon::engine {
namespace {

bool read_bool(const nlohmann::json& params, const char* key, bool fallback, bool required) {
    if (!params.is_object()) throw Error("the parameters must be a JSON object");
    if (!params.contains(key)) {
        if (required) throw Error(std::string("missing parameter \"") + key + "\"", {}, "give true or false");
        return fallback;
    }
    if (!params[key].is_boolean()) throw Error(std::string("parameter \"") + key + "\" must be true or false");
    return params[key].get<bool>();
}

}  // namespace

nlohmann::json isolation_status_json(const IsolationChoice& choice, const AdminLock& lock, const RemapUser& user,
                                     const std::string& engine_version) {
    return {
        {"enabled", effective_isolation(choice, lock)},
        {"locked", lock.locked},
        {"locked_by", lock.locked ? lock.source : ""},
        {"user", user.name},
        {"uid_range", range_json(user.uids)},
        {"gid_range", range_json(user.gids)},
        {"engine_version", engine_version},
        {"changed_at", choice.changed_at},
        {"exclusive_ranges", effective_isolation(choice, lock) && choice.exclusive_ranges},
    };
}

nlohmann::json switch_result_json(const SwitchResult& r) {
    return {{"enabled", r.enabled},         {"changed", r.changed},
            {"stopped_containers", r.stopped_containers},
            {"images_moved", r.images_moved}, {"volumes_moved", r.volumes_moved},
            {"seconds", r.seconds},           {"exclusive_ranges", r.exclusive_ranges}};
}

SwitchRequest parse_switch_request(const nlohmann::json& params) {
    SwitchRequest req;
    req.enabled = read_bool(params, "enabled", true, true);
    req.confirmed = read_bool(params, "confirmed", false, false);
    if (params.contains("exclusive_ranges")) req.exclusive_ranges = read_bool(params, "exclusive_ranges", false, true);
    return req;
}

AdminLock parse_admin_lock(const nlohmann::json& params) {
    AdminLock lock;
    lock.locked = read_bool(params, "locked", false, false);
    lock.enabled = read_bool(params, "enabled", true, false);
    if (params.contains("source")) {
        if (!params["source"].is_string()) throw Error("parameter \"source\" must be a string");
        lock.source = params["source"].get<std::string>();
    }
    return lock;
}

}  // namespace cordon::engine

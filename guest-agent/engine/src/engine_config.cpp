#include "cordon/engine/engine_config.hpp"

namespace cordon::engine {

nlohmann::json make_daemon_config(const nlohmann::json& base, bool isolation, const EnginePaths& paths,
                                  const RemapUser& user, bool exclusive_ranges) {
    nlohmann::json cfg = base.is_object() ? base : nlohmann::json::object();
    cfg["hosts"] = {"unix://" + paths.dockerd_socket};
    cfg["group"] = "root";
    cfg["data-root"] = paths.docker_root;
    cfg.erase("tls");
    cfg.erase("tlsverify");
    cfg.erase("default-runtime");
    if (cfg.contains("runtimes") && cfg["runtimes"].is_object()) cfg["runtimes"].erase(kExclusiveRuntimeName);
    if (cfg.contains("runtimes") && cfg["runtimes"].empty()) cfg.erase("runtimes");
    if (isolation && !exclusive_ranges) {
        cfg["userns-remap"] = user.name + ":" + user.name;
    } else {
        cfg.erase("userns-remap");
    }
    if (isolation && exclusive_ranges) {
        cfg["runtimes"][kExclusiveRuntimeName] = {{"path", kExclusiveRuntimePath}};
        cfg["default-runtime"] = kExclusiveRuntimeName;
    }
    return cfg;
}

std::string data_root_for(bool isolation, const EnginePaths& paths, const RemapUser& user) {
    if (!isolation) return paths.docker_root;
    return paths.docker_root + "/" + std::to_string(user.uids.start) + "." +
           std::to_string(user.gids.start);
}

}  // namespace cordon::engine

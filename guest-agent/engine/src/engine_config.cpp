#include "cordon/engine/engine_config.hpp"

namespace cordon::engine {

nlohmann::json make_daemon_config(const nlohmann::json& base, bool isolation, const EnginePaths& paths,
                                  const RemapUser& user) {
    nlohmann::json cfg = base.is_object() ? base : nlohmann::json::object();
    cfg["hosts"] = {"unix://" + paths.dockerd_socket};
    cfg["group"] = "root";
    cfg["data-root"] = paths.docker_root;
    cfg.erase("tls");
    cfg.erase("tlsverify");
    if (isolation) {
        cfg["userns-remap"] = user.name + ":" + user.name;
    } else {
        cfg.erase("userns-remap");
    }
    return cfg;
}

std::string data_root_for(bool isolation, const EnginePaths& paths, const RemapUser& user) {
    if (!isolation) return paths.docker_root;
    return paths.docker_root + "/" + std::to_string(user.uids.start) + "." +
           std::to_string(user.gids.start);
}

}  // namespace cordon::engine

#include "cordon/engine/engine_config.hpp"

namespace cordon::engine {

nlohmann::json make_daemon_config(bool isolation, const EnginePaths& paths, const RemapUser& user) {
    nlohmann::json cfg = {
        {"hosts", {"unix://" + paths.dockerd_socket}},
        {"data-root", paths.docker_root},
        {"containerd", paths.containerd_socket},
        {"storage-driver", "overlay2"},
        {"log-driver", "json-file"},
        {"log-opts", {{"max-size", "10m"}, {"max-file", "3"}}},
        // The socket's group: none but root. dockerd falls back to root:root 0660
        // when the group does not exist, and the folder is 0700 root anyway.
        {"group", "root"},
        {"live-restore", false},
    };
    if (isolation) cfg["userns-remap"] = user.name + ":" + user.name;
    return cfg;
}

std::string data_root_for(bool isolation, const EnginePaths& paths, const RemapUser& user) {
    if (!isolation) return paths.docker_root;
    return paths.docker_root + "/" + std::to_string(user.uids.start) + "." +
           std::to_string(user.gids.start);
}

}  // namespace cordon::engine

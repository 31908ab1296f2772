#pragma once
// What the guest's container engine looks like: dockerd's daemon.json for a
// given isolation mode, and where each mode keeps its data.
#include <nlohmann/json.hpp>
#include <string>

#include "cordon/engine/subid.hpp"

namespace cordon::engine {

struct EnginePaths {
    std::string docker_root = "/var/lib/docker";          // on the data disk
    std::string dockerd_socket = "/run/cordon/dockerd.sock";  // root-only folder (0700)
    std::string containerd_socket = "/run/containerd/containerd.sock";
    std::string daemon_json = "/etc/docker/daemon.json";
    std::string state_dir = "/var/lib/cordon";            // on the data disk
};

// The unprivileged VM user that container root maps to with isolation on.
struct RemapUser {
    std::string name = "cordon";
    IdRange uids{100000, 65536};
    IdRange gids{100000, 65536};
};

// dockerd's configuration. Isolation on adds "userns-remap"; either way dockerd
// listens only on its unix socket (no TCP), and the socket's folder is root-only.
nlohmann::json make_daemon_config(bool isolation, const EnginePaths& paths, const RemapUser& user);

// dockerd keeps a separate data root per mapping: with userns-remap it uses
// "<root>/<uid>.<gid>" so that files owned by a remapped root never mix with
// files of the plain engine. This returns the folder a mode uses.
std::string data_root_for(bool isolation, const EnginePaths& paths, const RemapUser& user);

}  // namespace cordon::engine

#pragma once
// What the guest's container engine looks like: dockerd's daemon.json for a
// given isolation mode, and where each mode keeps its data.
#include <nlohmann/json.hpp>
#include <string>

#include "cordon/engine/subid.hpp"

namespace cordon::engine {

struct EnginePaths {
    std::string docker_root = "/var/lib/docker";              // on the data disk
    std::string dockerd_socket = "/run/cordon/dockerd.sock";  // root-only folder (0700)
    std::string containerd_socket = "/run/containerd/containerd.sock";
    std::string base_daemon_json = "/etc/docker/daemon.json";  // the image's (read-only root)
    std::string daemon_json = "/run/cordon/daemon.json";       // what dockerd is started with
    std::string state_dir = "/var/lib/cordon";                 // on the data disk
    // First in containerd's and dockerd's PATH (engine_path_env): with isolation on (both
    // modes) it holds runc -> cordon-runc, so whatever runtime a container recorded ("runc"
    // from the plain engine or from userns-remap) and BuildKit's executor (which runs "runc"
    // from PATH) go through the wrapper: no bundle without a user namespace starts, and bind
    // sources are pinned. Empty with isolation off. The agent sets it (<run dir>/runc-shim); empty:
    // no shim is written (tests of the switch).
    std::string runc_shim_dir;
};

// "PATH=<shim dir>:<the usual folders>": what containerd and dockerd run with.
std::string engine_path_env(const std::string& runc_shim_dir);

// The unprivileged VM user that container root maps to with isolation on.
struct RemapUser {
    std::string name = "cordon";
    IdRange uids{100000, 65536};
    IdRange gids{100000, 65536};
};

// dockerd's configuration: the image's base configuration with "userns-remap"
// added (isolation on) or removed (off). Whatever the base says, dockerd listens
// only on its unix socket in the root-only folder (no TCP) and its group is root.
//
// With `exclusive_ranges` (and isolation on), dockerd runs without userns-remap and
// with cordon-runc as its default runtime: the wrapper gives every container its
// own 64K range (see guest-agent/runtime). Data then lives in the plain data root.
//
// With isolation on (either way), BuildKit's entitlements network-host and
// security-insecure are off ("builder": {"entitlements": ...}).
nlohmann::json make_daemon_config(const nlohmann::json& base, bool isolation,
                                  const EnginePaths& paths, const RemapUser& user,
                                  bool exclusive_ranges = false);

// The runtime name and binary dockerd is given in the exclusive-ranges mode.
inline constexpr const char* kExclusiveRuntimeName = "cordon-idmap";
inline constexpr const char* kExclusiveRuntimePath = "/usr/libexec/cordon/cordon-runc";

// Makes `dir`/runc a symlink to kExclusiveRuntimePath (`install`: isolation on) or removes
// it (isolation off), atomically; creates `dir` (0755). Throws cordon::Error naming the path.
void write_runc_shim(const std::string& dir, bool install,
                     const std::string& target = kExclusiveRuntimePath);

// dockerd keeps a separate data root per mapping: with userns-remap it uses
// "<root>/<uid>.<gid>" so that files owned by a remapped root never mix with
// files of the plain engine. This returns the folder a mode uses.
std::string data_root_for(bool isolation, const EnginePaths& paths, const RemapUser& user);

}  // namespace cordon::engine

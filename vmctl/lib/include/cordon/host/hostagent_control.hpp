#pragma once
// Starting, finding and stopping the per-VM cordon-hostagent process.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "cordon/host/paths.hpp"

namespace cordon::host {

inline constexpr const char* kHostAgentName = "cordon-hostagent";

struct HostAgentState {
    bool alive = false;
    pid_t pid = 0;
};

// Reads the pid file and checks the process is a live cordon-hostagent.
HostAgentState hostagent_state(const VmPaths& paths);

// $CORDON_HOSTAGENT, else cordon-hostagent beside this executable (or in
// ../hostagent/ in a build tree), else PATH. Throws HostError when not found.
std::filesystem::path find_hostagent();

// Starts the host agent detached (its output goes to paths.hostagent_log). With a
// libvirt_uri it can tell a paused VM (keep waiting) from a hung one (give up).
pid_t start_hostagent(const VmPaths& paths, const std::filesystem::path& exe,
                      const std::string& libvirt_uri = {});

// SIGTERM, then SIGKILL after grace; removes sockets and pid file a killed agent
// left behind. Returns true when an agent was running.
bool stop_hostagent(const VmPaths& paths,
                    std::chrono::milliseconds grace = std::chrono::seconds(5));

// Removes a unix socket file whose server is gone (connect() is refused).
// Returns true when it removed it. Leaves a live socket alone.
bool remove_stale_socket(const std::filesystem::path& path);

}  // namespace cordon::host

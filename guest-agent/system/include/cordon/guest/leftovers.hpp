#pragma once
// Services a previous agent instance started and left running. When the guest agent is
// killed (kill -9, a crash), busybox init restarts it, but containerd and dockerd keep
// running without a supervisor: the new agent's dockerd would then refuse to start
// (its pid file and sockets are taken) or two engines would share one data root. The
// supervisor records each service's pid in a file under the run folder; a new agent
// adopts them when it safely can (Supervisor::adopt, service_record.hpp) and otherwise
// stops what those files name before it starts the services again.
#include <chrono>
#include <string>
#include <vector>

namespace cordon::guest {

// "<run_dir>/services/<name>.pid"
std::string service_pid_file(const std::string& run_dir, const std::string& name);

// Writes the pid file (atomically). Logs and ignores failures: a missing pid file only
// means a leftover cannot be found later.
void record_service_pid(const std::string& run_dir, const std::string& name, int pid);

struct Leftover {
    std::string name;
    int pid = 0;
    bool stopped = false;  // gone within the grace time
};

// For each name: if its pid file names a live process whose command name is `program`'s
// base name (so a reused pid is never hit), sends SIGKILL and waits up to `grace` for it
// to be gone (or a zombie). Removes the pid files. Returns what it found.
std::vector<Leftover> stop_leftover_services(
    const std::string& run_dir,
    const std::vector<std::pair<std::string, std::string>>& name_and_program,
    std::chrono::milliseconds grace);

}  // namespace cordon::guest

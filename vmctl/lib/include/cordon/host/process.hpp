#pragma once
// Child processes: run one to completion with a timeout, or start one detached.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace cordon::host {

struct ProcessResult {
    int exit_code = -1;    // -1 when killed by a signal or timed out
    int signal = 0;        // the signal that ended it, if any
    bool timed_out = false;
    std::string output;    // stdout and stderr together
};

// Runs argv (argv[0] looked up in PATH) with stdin from /dev/null; kills it (SIGKILL)
// after timeout. Stops reading after max_output bytes. Throws cordon::Error when it
// cannot be started (e.g. not installed).
ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          size_t max_output = 1 << 20);

// Starts argv in its own session, not a child of this process (double fork), stdin
// /dev/null, stdout+stderr appended to log_file. Returns its pid. Throws cordon::Error.
pid_t spawn_detached(const std::vector<std::string>& argv, const std::filesystem::path& log_file);

// Whether pid is alive and its executable's name (comm) is `name`.
bool process_alive(pid_t pid, const std::string& name = {});

// Reads a pid file; 0 when absent or unparsable.
pid_t read_pid_file(const std::filesystem::path& file);

// Looks an executable up in PATH; empty when not found.
std::filesystem::path find_in_path(const std::string& name);

}  // namespace cordon::host

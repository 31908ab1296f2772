#pragma once
// Detached daemons (the host agent) and pid files. Running a program to completion
// is cordon::run (cordon/subprocess.hpp).
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace cordon::host {

// Starts argv in its own session, not a child of this process (double fork), stdin
// /dev/null, stdout+stderr appended to log_file. Returns its pid. Throws cordon::Error.
pid_t spawn_detached(const std::vector<std::string>& argv, const std::filesystem::path& log_file);

// Whether pid is alive and its executable's name (comm) is `name`.
bool process_alive(pid_t pid, const std::string& name = {});

// Reads a pid file; 0 when absent or unparsable.
pid_t read_pid_file(const std::filesystem::path& file);

}  // namespace cordon::host

#pragma once
// What a supervisor writes down about each service it runs, so that the next agent of
// the same boot (the agent was killed and init restarted it) can tell whether a process
// that still runs is the one it was told about, and adopt it instead of killing it.
//
// A pid alone is not an identity: pids are reused. A process is the recorded one when
// its pid, its start time (field 22 of /proc/PID/stat, in clock ticks since boot: a pid
// would have to be reused within one tick, 10 ms, to repeat both), its command name and
// its executable all match.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cordon::guest {

// One process as /proc shows it now.
struct ProcIdentity {
    int pid = 0;
    std::string comm;              // command name (at most 15 characters)
    char state = 0;                // R, S, D, Z, X...
    std::uint64_t start_time = 0;  // clock ticks after boot
    std::string exe;               // readlink of /proc/PID/exe ("" if unreadable)
    bool gone() const noexcept { return state == 'Z' || state == 'X'; }
};

// nullopt when the process does not exist (or its stat cannot be parsed).
std::optional<ProcIdentity> read_proc_identity(int pid);

struct ServiceRecord {
    int pid = 0;
    std::uint64_t start_time = 0;
    std::string comm;
    std::string exe;
    std::uint64_t starts = 0;  // successful starts in this boot, across agents
    std::string command;       // argv and extra environment, as the supervisor ran them
    // The contents the service's configuration files had when it started (path -> bytes).
    std::map<std::string, std::string> configs;
};

// "<dir>/<name>.record"
std::string service_record_file(const std::string& dir, const std::string& name);

// Writes the record atomically; throws cordon::Error when it cannot.
void write_service_record(const std::string& dir, const std::string& name,
                          const ServiceRecord& record);

// nullopt when there is no record; throws cordon::Error (naming the file) when it exists
// but cannot be read or parsed.
std::optional<ServiceRecord> read_service_record(const std::string& dir, const std::string& name);

// argv and env in one string, for comparing two command lines.
std::string describe_command(const std::vector<std::string>& argv,
                             const std::vector<std::string>& env);

// Why the process `record` names cannot be adopted, or "" when it can: gone, a zombie,
// a reused pid (start time, command name or executable differ).
std::string identity_mismatch(const ServiceRecord& record, const std::optional<ProcIdentity>& now);

}  // namespace cordon::guest

#pragma once
// RAII child process: spawned with fork/exec, owned until reaped. Destroying a ChildProcess
// that is still running kills it (SIGKILL to its process group) and reaps it, so no child
// outlives its owner by accident.
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "cordon/unique_fd.hpp"

namespace cordon::guest {

struct SpawnOptions {
    std::vector<std::string>
        argv;  // argv[0] is the program; a name without '/' is looked up in PATH
    std::vector<std::string>
        env;             // "NAME=value" entries added to (or replacing in) the agent's environment
    int output_fd = -1;  // becomes the child's stdout and stderr; -1: /dev/null
    bool new_session = true;  // setsid(): the child leads its own process group
    // A cgroup v2 folder the child joins before exec (so nothing it forks starts outside
    // it); empty: the agent's own. Failing to join fails the spawn.
    std::string cgroup;
    std::string cwd;  // the child's working folder; empty: the agent's
};

// "exited with status 3", "killed by signal 9 (Killed)".
std::string describe_wait_status(int status);

class ChildProcess {
  public:
    // Throws cordon::Error when the program cannot be started (not found, not executable...),
    // with the errno of the failed exec.
    static ChildProcess spawn(const SpawnOptions& options);

    ChildProcess() = default;
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&& other) noexcept;
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ~ChildProcess();

    pid_t pid() const noexcept { return pid_; }
    bool valid() const noexcept { return pid_ > 0; }
    bool reaped() const noexcept { return reaped_; }
    // The wait status once reaped.
    int wait_status() const noexcept { return status_; }

    // A pidfd (readable when the child exits), for an event loop. Owned by the caller.
    UniqueFd open_pidfd() const;

    // Sends `sig` to the child (or its process group when `group` and it leads one).
    // No-op once reaped. Returns false if the signal could not be delivered.
    bool signal(int sig, bool group = false) const noexcept;
    // Reaps the child if it has exited; returns true once reaped.
    bool try_reap() noexcept;
    // Blocks until the child exits; returns its wait status.
    int wait() noexcept;

  private:
    void kill_and_reap() noexcept;
    pid_t pid_ = -1;
    bool group_leader_ = false;
    bool reaped_ = false;
    int status_ = 0;
};

}  // namespace cordon::guest

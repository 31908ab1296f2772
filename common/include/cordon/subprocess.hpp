#pragma once
// Running other programs: a RAII child process, and a run-to-completion helper
// that captures output with a timeout. Children never outlive their owner by
// accident: a Child that is destroyed while running is killed and reaped.
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace cordon {

struct SpawnOptions {
    std::vector<std::string> env_overrides;  // "NAME=value" added to (or replacing in) the environment
    std::string working_dir;                  // empty: inherit
    bool capture_output = true;               // stdout/stderr to pipes (else inherited)
    bool new_session = false;                 // setsid() in the child (for daemons)
    std::optional<std::string> stdin_data;    // fed to stdin, then closed; nullopt: /dev/null
};

struct ProcessResult {
    int exit_code = -1;     // -1 when killed by a signal
    int signal = 0;         // the signal that ended it, 0 if it exited
    bool timed_out = false;
    std::string out;
    std::string err;
    bool ok() const { return exit_code == 0 && !timed_out; }
};

class Child {
public:
    Child() = default;
    // Throws cordon::Error when the program cannot be started (not found, not executable).
    static Child spawn(const std::vector<std::string>& argv, const SpawnOptions& opts = {});
    Child(Child&&) noexcept;
    Child& operator=(Child&&) noexcept;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child();

    pid_t pid() const { return pid_; }
    bool running();
    // Waits up to `timeout`, collecting output; on timeout sends SIGKILL and reaps.
    ProcessResult wait(std::chrono::milliseconds timeout);
    // SIGTERM, then SIGKILL after `grace`; reaps. Safe to call when already exited.
    void terminate(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
    // Forget the child without killing it (a daemon that must outlive us).
    pid_t detach();

private:
    pid_t pid_ = -1;
    int out_fd_ = -1;
    int err_fd_ = -1;
    int in_fd_ = -1;
    std::string stdin_data_;
    std::size_t stdin_written_ = 0;
    std::optional<int> status_;
    void close_fds();
};

// Runs argv to completion. Never throws for a non-zero exit; throws cordon::Error
// only when the program cannot be started.
ProcessResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                  const SpawnOptions& opts = {});

// Finds a program on PATH; empty when absent.
std::string find_program(const std::string& name);

}  // namespace cordon

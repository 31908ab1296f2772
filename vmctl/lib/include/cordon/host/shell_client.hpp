#pragma once
// The host end of the guest agent's "shell" service (vmctl shell), through the host
// agent's shell.sock. Messages: cordon/shell/protocol.hpp.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace cordon::host {

struct ShellRequest {
    bool tty = false;               // a pseudo-terminal in the guest (raw bytes both ways)
    std::uint16_t rows = 24, cols = 80;
    std::string term;               // TERM in the guest (tty only)
    std::vector<std::string> argv;  // empty: the guest's login-less root shell
    int in_fd = 0, out_fd = 1, err_fd = 2;
    // Readable when something happened outside: on each wake-up the client drains it and
    // calls on_wake(), which returns {rows, cols} to send (0 rows: nothing to resize) or
    // -1 in `stop` to end the session (e.g. SIGTERM).
    int wake_fd = -1;
    struct Wake {
        std::uint16_t rows = 0, cols = 0;
        int stop = 0;  // non-zero: end now with this exit code
    };
    std::function<Wake()> on_wake;
};

// Runs the session until the guest reports the shell's exit; returns its exit code
// (128+N when a signal N killed it). Throws HostError(agent_unreachable) when the
// socket cannot be reached or closes early, HostError(rpc) when the guest cannot start
// the shell.
int run_shell(const std::filesystem::path& shell_socket, const ShellRequest& request);

}  // namespace cordon::host

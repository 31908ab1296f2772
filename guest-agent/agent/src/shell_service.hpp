#pragma once
// The guest agent's "shell" channel service (vmctl shell): a login-less root shell in
// the VM, on a pseudo-terminal when the host asks for one (size at START, RESIZE on
// SIGWINCH), on pipes otherwise (`echo id | vmctl shell`). Messages:
// cordon/shell/protocol.hpp. The shell's exit status goes back in an EXIT message.
// A host that goes away hangs the shell up (SIGHUP, then SIGKILL to its process group).
#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "cordon/channel/session.hpp"

namespace cordon::agent {

struct ShellOptions {
    std::string shell = "/bin/sh";  // run when START has no argv
    std::string home = "/root";
    std::string prompt = "cordon-vm:\\w# ";
    // When set, no shell runs: the host gets this as the session's error (an admin lock).
    std::string refusal;
};

// Takes the incoming stream (accepts it) and serves one shell on it.
void serve_shell(boost::asio::io_context& io, std::shared_ptr<channel::Stream> stream,
                 ShellOptions options = {});

}  // namespace cordon::agent

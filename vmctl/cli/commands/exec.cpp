#include "commands.hpp"

namespace vmctl {

using namespace cordon::host;
using nlohmann::json;

CLI::App* ExecCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand("exec",
                                 "Run a command in the VM (not in a container) for debugging, "
                                 "through the guest agent's `exec` RPC; "
                                 "non-interactive: its output is printed when it ends. Needs a "
                                 "guest agent that offers `exec`.");
    app_->add_option("command", argv_, "The command and its arguments (put them after --)")
        ->required();
    app_->add_option("--timeout", timeout_, "Seconds before the command is killed")
        ->capture_default_str();
    app_->prefix_command(false);
    return app_;
}

int ExecCommand::run(Context& ctx) {
    Vm vm = ctx.vm();
    json r = vm.call_agent("exec", {{"argv", argv_}, {"timeout_s", timeout_}},
                           std::chrono::seconds(timeout_ + 10));
    const int code = r.value("exit_code", -1);
    ctx.out().result({{"vm", vm.settings().vm_name}, {"argv", argv_}, {"result", r}},
                     [&](std::ostream& o) {
                         if (r.contains("stdout") && r["stdout"].is_string())
                             o << r["stdout"].get<std::string>();
                         if (r.contains("stderr") && r["stderr"].is_string())
                             ctx.out().err() << r["stderr"].get<std::string>();
                     });
    // The command's own exit code is in the result; vmctl itself succeeded unless it failed.
    return code == 0 ? Exit::ok : Exit::failure;
}

}  // namespace vmctl

// vmctl: the command-line front end of the Cordon host library.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "command.hpp"
#include "commands/commands.hpp"
#include "cordon/log.hpp"
#include "output.hpp"

namespace vmctl {

std::vector<std::unique_ptr<Command>> make_commands() {
    std::vector<std::unique_ptr<Command>> c;
    c.push_back(std::make_unique<StartCommand>());
    c.push_back(std::make_unique<StopCommand>());
    c.push_back(std::make_unique<RestartCommand>());
    c.push_back(std::make_unique<StatusCommand>());
    c.push_back(std::make_unique<DeleteCommand>());
    c.push_back(std::make_unique<LogsCommand>());
    c.push_back(std::make_unique<ExecCommand>());
    c.push_back(std::make_unique<ShellCommand>());
    c.push_back(std::make_unique<AuditCommand>());
    c.push_back(std::make_unique<DockerEnvCommand>());
    c.push_back(std::make_unique<DockerContextCommand>());
    c.push_back(std::make_unique<IsolationCommand>());
    c.push_back(std::make_unique<PortsCommand>());
    c.push_back(std::make_unique<SettingsCommand>());
    c.push_back(std::make_unique<SharesCommand>());
    c.push_back(std::make_unique<VersionCommand>());
    return c;
}

}  // namespace vmctl

int main(int argc, char** argv) {
    using namespace vmctl;
    // A peer that closed its socket (libvirtd dropping an idle connection, the host
    // agent) must give an error, not kill vmctl with SIGPIPE after the work is done.
    // (The detached host agent gets the default back in spawn_detached.)
    ::signal(SIGPIPE, SIG_IGN);
    Output out(std::cout, std::cerr);
    Context ctx(out);
    CLI::App app{
        "vmctl: manage the Cordon VM (libvirt + QEMU) that runs your containers in isolation.\n"
        "Exit codes: 0 ok, 1 failure, 2 usage, 3 invalid settings, 4 locked setting, 5 image "
        "missing,\n"
        "6 libvirt unreachable, 7 libvirt error, 8 VM not found, 9 VM not running, 10 agent "
        "unreachable,\n"
        "11 timeout, 12 confirmation required, 13 guest agent error (docs/VMCTL.md)."};
    app.name("vmctl");
    app.require_subcommand(1);
    app.fallthrough();
    auto& o = ctx.options();
    app.add_flag("--json", o.json, "Print one JSON document on stdout (progress goes to stderr)");
    app.add_option("-c,--connect", o.connect,
                   "libvirt URI (default: the connect_uri setting, else qemu:///system "
                   "as root, qemu:///session otherwise)");
    app.add_option("--vm", o.vm, "VM name (default: the vm_name setting, `cordon`)");
    app.add_flag("-v,--verbose", o.verbose, "Debug logging on stderr");
    auto commands = make_commands();
    std::vector<CLI::App*> subs;
    for (auto& c : commands) subs.push_back(c->add(app));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? Exit::ok : Exit::usage;
    }
    out.set_json(o.json);
    cordon::log::set_level(o.verbose ? cordon::log::Level::debug : cordon::log::Level::warn);
    for (size_t i = 0; i < commands.size(); ++i) {
        if (!subs[i]->parsed())
            continue;
        try {
            return commands[i]->run(ctx);
        } catch (const cordon::host::HostError& e) {
            return out.error(e);
        } catch (const cordon::Error& e) {
            return out.error(e, Exit::failure);
        } catch (const std::exception& e) {
            return out.error(std::string("internal error: ") + e.what(), Exit::failure, "internal");
        }
    }
    return out.error("no command given", Exit::usage, "usage", "run `vmctl --help`");
}

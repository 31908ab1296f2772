#include "cordon/host/ports.hpp"

#include "commands.hpp"

namespace vmctl {

using namespace cordon::host;

CLI::App* PortsCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "ports",
        "List the containers' published ports the host agent forwards to the VM (and those it "
        "cannot: a host port already taken, a port below 1024 without the right)");
    return app_;
}

int PortsCommand::run(Context& ctx) {
    Vm vm = ctx.vm();
    PortsReport r = read_ports(vm.paths());
    if (!r.hostagent_running) {
        throw HostError(ErrorKind::agent_unreachable,
                        "the host agent is not running, so no port is forwarded",
                        vm.paths().runtime_dir.string(), "start the VM: vmctl start");
    }
    ctx.out().result(to_json(r), [&](std::ostream& o) { print_ports(o, r); });
    return Exit::ok;
}

void print_ports(std::ostream& o, const PortsReport& r) {
    if (!r.known) {
        o << "published ports: not known yet (the host agent has not reached the guest)\n";
        return;
    }
    if (r.guest != "connected")
        o << "guest: " << r.guest << (r.error.empty() ? "" : " (" + r.error + ")") << "\n";
    else if (!r.error.empty())
        o << "note: " << r.error << "\n";
    if (r.ports.empty()) {
        o << "published ports: none\n";
        return;
    }
    o << "published ports (host -> container in the VM):\n";
    for (const auto& p : r.ports) {
        o << "  " << describe(p);
        if (p.state == "listening") {
            o << "\n";
            continue;
        }
        o << "  ["
          << (p.state == "partial"  ? "PARTIAL"
              : p.state == "failed" ? "NOT FORWARDED"
                                    : p.state)
          << "]\n";
        if (!p.error.empty())
            o << "      " << p.error << "\n";
        if (!p.hint.empty())
            o << "      hint: " << p.hint << "\n";
    }
}

}  // namespace vmctl

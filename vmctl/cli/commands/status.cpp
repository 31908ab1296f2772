#include <filesystem>

#include "commands.hpp"

namespace vmctl {

using namespace cordon::host;
using nlohmann::json;

CLI::App* StatusCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand("status",
                                 "Show the VM's state, its host agent, and the guest agent's info");
    return app_;
}

int StatusCommand::run(Context& ctx) {
    Vm vm = ctx.vm();
    VmStatus s = vm.status();
    const bool running = s.domain.state == DomainState::running;
    // Restart counts of the guest's services (dockerd, containerd) from the agent's info.
    json restarts = json::object();
    if (s.agent_info.is_object() && s.agent_info.contains("services") && s.agent_info["services"].is_array()) {
        for (const auto& svc : s.agent_info["services"]) {
            if (svc.is_object() && svc.contains("name") && svc["name"].is_string())
                restarts[svc["name"].get<std::string>()] = svc.value("restarts", 0);
        }
    }
    // A killed host agent leaves its sockets behind until `vmctl start` replaces them.
    std::error_code ec;
    const bool stale_socket = !s.hostagent_alive && (std::filesystem::exists(s.paths.docker_socket, ec) ||
                                                     std::filesystem::exists(s.paths.control_socket, ec));
    const bool from_outside = s.domain.state == DomainState::shutoff &&
                              (s.domain.reason.find("destroyed") != std::string::npos ||
                               s.domain.reason.find("crashed") != std::string::npos);
    json j{{"vm", s.name},
           {"uri", s.uri},
           {"defined", s.defined},
           {"state", to_string(s.domain.state)},
           {"reason", s.domain.reason},
           {"running", running},
           {"accelerator", s.domain_type == "kvm" ? "kvm"
                           : s.defined            ? "tcg"
                                                  : ""},
           {"stopped_from_outside", from_outside},
           {"service_restarts", restarts},
           {"host_agent", {{"alive", s.hostagent_alive}, {"pid", s.hostagent_pid}, {"stale_socket", stale_socket}}},
           {"guest_agent",
            {{"reachable", s.agent_reachable}, {"info", s.agent_info}, {"error", s.agent_error}}},
           {"paths",
            {{"state_dir", s.paths.state_dir.string()},
             {"data_disk", s.paths.data_disk.string()},
             {"console_log", s.paths.console_log.string()},
             {"docker_socket", s.paths.docker_socket.string()},
             {"control_socket", s.paths.control_socket.string()}}}};
    // Published ports as the host agent forwards them (a broken state file must not hide
    // the rest of the status).
    PortsReport ports;
    std::string ports_error;
    try {
        ports = read_ports(s.paths);
        j["published_ports"] = to_json(ports);
    } catch (const cordon::Error& e) {
        ports_error = e.what();
        j["published_ports"] = {{"error", ports_error}};
    }
    ctx.out().result(j, [&](std::ostream& o) {
        o << "VM:          " << s.name << " on " << s.uri << "\n";
        if (!s.defined) {
            o << "state:       not created (vmctl start creates it)\n";
        } else {
            o << "state:       " << to_string(s.domain.state) << " (" << s.domain.reason << ")\n";
            o << "accelerator: " << (s.domain_type == "kvm" ? "KVM" : "TCG") << "\n";
            if (from_outside) {
                o << "             the VM was stopped from outside Cordon (virsh destroy, a crash, the host);\n"
                     "             the next `vmctl start` checks the data disk and reports what it found\n";
            }
        }
        o << "host agent:  "
          << (s.hostagent_alive ? "running (pid " + std::to_string(s.hostagent_pid) + ")"
                                : "not running")
          << (stale_socket ? " (it died: its sockets are stale until `vmctl start` restarts it)" : "")
          << "\n";
        if (!restarts.empty()) {
            o << "restarts:   ";
            for (auto it = restarts.begin(); it != restarts.end(); ++it) o << " " << it.key() << " " << it->dump();
            o << "\n";
        }
        if (s.agent_reachable) {
            o << "guest agent: answering\n";
            if (s.agent_info.is_object()) {
                for (auto it = s.agent_info.begin(); it != s.agent_info.end(); ++it) {
                    o << "  " << it.key() << ": "
                      << (it->is_string() ? it->get<std::string>() : it->dump()) << "\n";
                }
            }
        } else if (running) {
            o << "guest agent: not answering (" << s.agent_error << ")\n";
        }
        o << "docker sock: " << s.paths.docker_socket.string() << "\n";
        if (!ports_error.empty())
            o << "published ports: " << ports_error << "\n";
        else if (ports.hostagent_running)
            print_ports(o, ports);
    });
    return Exit::ok;
}

}  // namespace vmctl

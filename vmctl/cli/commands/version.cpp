#include "commands.hpp"

#ifndef CORDON_VERSION
#define CORDON_VERSION "unknown"
#endif

namespace vmctl {

using namespace cordon::host;
using nlohmann::json;

CLI::App* VersionCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand("version",
                                 "Show the versions of vmctl, libvirt, QEMU and the guest agent");
    return app_;
}

int VersionCommand::run(Context& ctx) {
    json j{{"vmctl", CORDON_VERSION}, {"libvirt_library", libvirt_library_version()}};
    std::string note;
    try {
        Vm vm = ctx.vm();
        auto conn = ctx.hypervisor().connect(vm.uri());
        j["uri"] = conn->uri();
        j["libvirt_daemon"] = conn->daemon_version();
        j["qemu"] = conn->hypervisor_version();
        try {
            json info = vm.call_agent("info", json::object(), std::chrono::seconds(3));
            j["guest_agent"] =
                info.is_object() && info.contains("agent_version") ? info["agent_version"] : info;
        } catch (const HostError& e) {
            j["guest_agent"] = nullptr;
        }
    } catch (const HostError& e) {
        note = e.what();
        j["note"] = note;
    }
    ctx.out().result(j, [&](std::ostream& o) {
        o << "vmctl            " << CORDON_VERSION << "\n";
        o << "libvirt library  " << j["libvirt_library"].get<std::string>() << "\n";
        if (j.contains("libvirt_daemon")) {
            o << "libvirt daemon   " << j["libvirt_daemon"].get<std::string>() << " ("
              << j["uri"].get<std::string>() << ")\n";
            o << "QEMU             " << j["qemu"].get<std::string>() << "\n";
        }
        if (j.contains("guest_agent") && !j["guest_agent"].is_null())
            o << "guest agent      "
              << (j["guest_agent"].is_string() ? j["guest_agent"].get<std::string>()
                                               : j["guest_agent"].dump())
              << "\n";
        if (!note.empty())
            o << "(" << note << ")\n";
    });
    return Exit::ok;
}

}  // namespace vmctl

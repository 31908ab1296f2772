#include "commands.hpp"

namespace vmctl {

using namespace cordon::host;
using nlohmann::json;

CLI::App* IsolationCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand("isolation", "Turn user-namespace isolation of containers on or off in the VM, or show it");
    app_->add_option("action", action_, "on, off or status")->check(CLI::IsMember({"on", "off", "status"}))->required();
    return app_;
}

int IsolationCommand::run(Context& ctx) {
    LayeredSettings& s = ctx.settings();
    const SettingValue& v = s.get("isolation");
    json params = json::object();
    if (action_ != "status") {
        const bool want = action_ == "on";
        if (v.locked && v.value.get<bool>() != want) {
            throw HostError(ErrorKind::locked, s.locked_message("isolation"), {}, "ask your administrator");
        }
        params["enabled"] = want;
    }
    Vm vm = ctx.vm();
    json r = vm.call_agent("isolation", params, std::chrono::seconds(120));
    ctx.out().result({{"vm", vm.settings().vm_name}, {"locked", v.locked}, {"guest", r}}, [&](std::ostream& o) {
        if (r.is_object() && r.contains("enabled") && r["enabled"].is_boolean()) {
            o << "isolation is " << on_off(r["enabled"].get<bool>()) << " in the VM";
        } else {
            o << "guest answered: " << r.dump();
        }
        if (v.locked) o << " (locked " << on_off(v.value.get<bool>()) << " by the administrator)";
        o << "\n";
        if (r.is_object() && r.contains("message") && r["message"].is_string()) o << r["message"].get<std::string>() << "\n";
    });
    return Exit::ok;
}

}  // namespace vmctl

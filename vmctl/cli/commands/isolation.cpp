#include "commands.hpp"

namespace vmctl {

using namespace cordon::host;
using nlohmann::json;

CLI::App* IsolationCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "isolation",
        "Turn user-namespace isolation of containers on or off in the VM (live: the engine "
        "restarts, images and volumes follow), or show it");
    app_->add_option("action", action_, "on, off or status")
        ->check(CLI::IsMember({"on", "off", "status"}))
        ->required();
    app_->add_flag("-y,--yes", yes_,
                   "Stop running containers if the switch needs it, without asking");
    auto* excl = app_->add_flag(
        "--exclusive-ranges", exclusive_,
        "With `on`: give every container its own 64K ID range (two containers' roots are "
        "different VM users) instead of one range shared by all");
    app_->add_flag("--shared-range", shared_,
                   "With `on`: go back to one ID range shared by all containers")
        ->excludes(excl);
    return app_;
}

// The administrator's lock travels with every isolation call: the guest enforces it too.
json admin_lock_param(LayeredSettings& s) {
    const SettingValue& v = s.get("isolation");
    return {{"locked", v.locked},
            {"enabled", v.value.get<bool>()},
            {"source", v.locked ? v.file.string() + " on the host" : std::string()}};
}

int IsolationCommand::run(Context& ctx) {
    LayeredSettings& s = ctx.settings();
    const SettingValue& v = s.get("isolation");
    json params{{"admin_lock", admin_lock_param(s)}};
    if (action_ != "status") {
        const bool want = action_ == "on";
        if (v.locked && v.value.get<bool>() != want) {
            throw HostError(ErrorKind::locked, s.locked_message("isolation"), {},
                            "ask your administrator");
        }
        params["enabled"] = want;
        params["confirmed"] = yes_;
        if ((exclusive_ || shared_) && !want)
            throw HostError(ErrorKind::usage, "--exclusive-ranges and --shared-range go with `on`",
                            {}, "run `vmctl isolation on --exclusive-ranges`");
    }
    Vm vm = ctx.vm();
    json r;
    if (action_ == "status") {
        r = vm.call_agent("isolation", params, std::chrono::seconds(600));
    } else {
        r = vm.set_isolation(
            params["enabled"].get<bool>(), yes_, params["admin_lock"],
            [&](const ProgressStep& st) {
                if (!st.message.empty())
                    ctx.out().progress(fmt::format("[{:3.0f}%] {}", st.fraction * 100, st.message));
            },
            std::chrono::seconds(600),
            exclusive_ ? std::optional<bool>(true)
            : shared_  ? std::optional<bool>(false)
                       : std::nullopt);
    }
    json out = r.is_object() ? r : json{{"guest", r}};
    out["locked"] = v.locked;
    out["vm"] = vm.settings().vm_name;
    ctx.out().result(out, [&](std::ostream& o) {
        if (r.is_object() && r.contains("enabled") && r["enabled"].is_boolean()) {
            o << "isolation is " << on_off(r["enabled"].get<bool>()) << " in the VM";
            if (r["enabled"].get<bool>() && r.value("exclusive_ranges", false))
                o << ", with an exclusive ID range per container";
        } else {
            o << "guest answered: " << r.dump();
        }
        if (v.locked)
            o << " (locked " << on_off(v.value.get<bool>()) << " by the administrator)";
        o << "\n";
        if (r.is_object()) {
            if (r.contains("user") && r["user"].is_string()) {
                o << "containers' root is VM user " << r["user"].get<std::string>();
                if (r.contains("uid_range") && r["uid_range"].is_object())
                    o << " (uids " << r["uid_range"].value("start", 0) << "+"
                      << r["uid_range"].value("count", 0) << ")";
                o << " when on\n";
            }
            if (r.contains("stopped_containers") && r["stopped_containers"].is_array() &&
                !r["stopped_containers"].empty())
                o << "stopped containers: " << r["stopped_containers"].dump() << "\n";
            if (r.contains("message") && r["message"].is_string())
                o << r["message"].get<std::string>() << "\n";
        }
    });
    return Exit::ok;
}

}  // namespace vmctl

#include "commands.hpp"

namespace vmctl {

using namespace cordon::host;

CLI::App* StopCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "stop",
        "Stop the VM: the guest agent's shutdown, then ACPI, then a hard stop after a timeout");
    app_->add_option("--timeout", timeout_, "Seconds to wait at each graceful step")
        ->capture_default_str();
    return app_;
}

int StopCommand::run(Context& ctx) {
    Vm vm = ctx.vm();
    StopOptions opt;
    opt.agent_timeout = std::chrono::seconds(timeout_);
    opt.acpi_timeout = std::chrono::seconds(timeout_);
    opt.progress = [&](const std::string& line) { ctx.out().progress(line); };
    StopResult r = vm.stop(opt);
    ctx.out().result({{"vm", vm.settings().vm_name},
                      {"was_running", r.was_running},
                      {"method", r.method},
                      {"seconds", r.seconds}},
                     [&](std::ostream& o) {
                         if (!r.was_running) {
                             o << "VM " << vm.settings().vm_name << " is not running\n";
                         } else {
                             o << "VM " << vm.settings().vm_name << " stopped ("
                               << (r.method == "agent"  ? "guest agent shutdown"
                                   : r.method == "acpi" ? "ACPI shutdown"
                                                        : "forced off")
                               << ", " << fmt::format("{:.1f}", r.seconds) << " s)\n";
                         }
                     });
    return Exit::ok;
}

CLI::App* RestartCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand("restart", "Stop the VM (if running), then start it again");
    app_->add_option("--timeout", timeout_, "Seconds to wait for the guest agent after the start")
        ->capture_default_str();
    return app_;
}

int RestartCommand::run(Context& ctx) {
    Vm vm = ctx.vm();
    auto progress = [&](const std::string& line) { ctx.out().progress(line); };
    StopResult stopped;
    try {
        StopOptions so;
        so.progress = progress;
        stopped = vm.stop(so);
    } catch (const HostError& e) {
        if (e.kind() != ErrorKind::vm_not_found)
            throw;
    }
    StartOptions opt;
    opt.ready_timeout = std::chrono::seconds(timeout_);
    opt.progress = progress;
    StartResult r = vm.start(opt);
    StartCommand::enforce_locked_isolation(ctx, vm, false);
    nlohmann::json j = start_result_json(r, vm);
    j["stopped"] = {{"was_running", stopped.was_running}, {"method", stopped.method}};
    ctx.out().result(j, [&](std::ostream& o) {
        o << "VM " << vm.settings().vm_name << " restarted (" << (r.kvm ? "KVM" : "TCG")
          << ", guest agent ready after " << fmt::format("{:.1f}", r.seconds_to_ready) << " s)\n";
    });
    return Exit::ok;
}

}  // namespace vmctl

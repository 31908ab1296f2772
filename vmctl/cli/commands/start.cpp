#include <signal.h>
#include <unistd.h>

#include "commands.hpp"

namespace vmctl {

using namespace cordon::host;
using nlohmann::json;

namespace {

// Ctrl-C (or SIGTERM) during a start cancels it: the host library undoes what it started
// and vmctl exits 130. A second Ctrl-C while it cleans up is ignored.
CancelToken* g_cancel = nullptr;

extern "C" void on_cancel_signal(int) {
    if (g_cancel)
        g_cancel->cancel();  // an atomic store: async-signal-safe
}

class CancelOnSignals {
  public:
    explicit CancelOnSignals(CancelToken& token) {
        g_cancel = &token;
        struct sigaction sa {};
        sa.sa_handler = on_cancel_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        ::sigaction(SIGINT, &sa, &old_int_);
        ::sigaction(SIGTERM, &sa, &old_term_);
    }
    ~CancelOnSignals() {
        ::sigaction(SIGINT, &old_int_, nullptr);
        ::sigaction(SIGTERM, &old_term_, nullptr);
        g_cancel = nullptr;
    }
    CancelOnSignals(const CancelOnSignals&) = delete;
    CancelOnSignals& operator=(const CancelOnSignals&) = delete;

  private:
    struct sigaction old_int_ {};
    struct sigaction old_term_ {};
};

}  // namespace

StartOptions start_options(Context& ctx, int timeout_s) {
    StartOptions opt;
    opt.ready_timeout = std::chrono::seconds(timeout_s);
    // Each progress line carries the fraction done: "[ 22%] host agent started ...".
    opt.on_step = [&ctx](const ProgressStep& st) {
        if (!st.message.empty())
            ctx.out().progress(fmt::format("[{:3.0f}%] {}", st.fraction * 100, st.message));
    };
    return opt;
}

CLI::App* StartCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "start", "Start the VM and its host agent; wait until the guest agent answers");
    app_->add_option("--image-dir", image_dir_,
                     "Folder holding the VM image and its manifest.json (overrides image_dir)");
    app_->add_option("--accelerator", accelerator_,
                     "auto, kvm or tcg (overrides the accelerator setting)")
        ->check(CLI::IsMember({"auto", "kvm", "tcg"}));
    app_->add_option("--timeout", timeout_, "Seconds to wait for the guest agent")
        ->capture_default_str();
    return app_;
}

json start_result_json(const StartResult& r, const Vm& vm) {
    return {{"vm", vm.settings().vm_name},
            {"already_running", r.already_running},
            {"accelerator", r.kvm ? "kvm" : "tcg"},
            {"accelerator_reason", r.accelerator_reason},
            {"data_disk_created", r.data_disk_created},
            {"seconds_to_ready", r.seconds_to_ready},
            {"agent_info", r.agent_info},
            {"docker_socket", vm.paths().docker_socket.string()},
            {"control_socket", vm.paths().control_socket.string()}};
}

int StartCommand::run(Context& ctx) {
    Settings s = ctx.effective();
    LayeredSettings& layered = ctx.settings();
    if (!image_dir_.empty()) {
        if (layered.get("image_dir").locked)
            throw HostError(ErrorKind::locked, layered.locked_message("image_dir"));
        s.image_dir = image_dir_;
    }
    if (!accelerator_.empty()) {
        if (layered.get("accelerator").locked)
            throw HostError(ErrorKind::locked, layered.locked_message("accelerator"));
        s.accelerator = accelerator_ == "kvm"   ? Accelerator::kvm
                        : accelerator_ == "tcg" ? Accelerator::tcg
                                                : Accelerator::automatic;
    }
    Vm vm = ctx.vm(s);
    StartOptions opt = start_options(ctx, timeout_);
    StartResult r;
    {
        CancelOnSignals cancel_on_signals(opt.cancel);
        r = vm.start(opt);
    }
    enforce_locked_isolation(ctx, vm, r.already_running);
    ctx.out().result(start_result_json(r, vm), [&](std::ostream& o) {
        if (r.already_running) {
            o << "VM " << s.vm_name << " is already running\n";
            return;
        }
        o << "VM " << s.vm_name << " is running (" << (r.kvm ? "KVM" : "TCG");
        if (r.agent_waited)
            o << ", guest agent ready after " << fmt::format("{:.1f}", r.seconds_to_ready) << " s";
        o << ")\n";
        o << "docker socket: " << vm.paths().docker_socket.string() << "\n";
        o << "  use it with: eval \"$(vmctl docker-env)\"  or  vmctl context --use\n";
    });
    return Exit::ok;
}

// With isolation locked by the administrator, the guest must follow the admin value.
void StartCommand::enforce_locked_isolation(Context& ctx, Vm& vm, bool already_running) {
    const SettingValue& iso = ctx.settings().get("isolation");
    if (!iso.locked || already_running)
        return;
    try {
        vm.call_agent("isolation",
                      {{"enabled", iso.value.get<bool>()},
                       {"confirmed", true},
                       {"admin_lock", admin_lock_param(ctx.settings())}},
                      std::chrono::seconds(600));
        ctx.out().progress("isolation " + on_off(iso.value.get<bool>()) +
                           " (locked by the administrator)");
    } catch (const HostError& e) {
        ctx.out().warn(std::string("cannot apply the administrator's isolation setting: ") +
                       e.what());
    }
}

}  // namespace vmctl

#include "cordon/host/vm.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "cordon/atomic_file.hpp"
#include "cordon/host/accel.hpp"
#include "cordon/host/domain_xml.hpp"
#include "cordon/host/engine_document.hpp"
#include "cordon/host/host_error.hpp"
#include "cordon/host/hostagent_control.hpp"
#include "cordon/host/manifest.hpp"
#include "cordon/host/process.hpp"
#include "cordon/log.hpp"
#include "cordon/subprocess.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace cordon::host {
namespace {

constexpr const char* kCordonMetadata = "https://cordon.dev/xmlns/vm/1";

void check_cancel(const StartOptions& o) {
    if (o.cancel.cancelled())
        throw HostError(ErrorKind::cancelled, "the start was cancelled");
}

// A fraction that approaches `to` as the wait goes on (we cannot know how long a TCG
// boot takes, but a bar must move and never go back).
double creep(double from, double to, double seconds, double scale) {
    return from + (to - from) * (1.0 - std::exp(-seconds / scale));
}

double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool file_exists(const fs::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

// The last line of a log file, for an error message.
std::string log_tail(const fs::path& file) {
    std::string text;
    try {
        text = read_file(file);
    } catch (const std::exception&) {
        return "(no log)";
    }
    while (!text.empty() && text.back() == '\n') text.pop_back();
    auto nl = text.rfind('\n');
    return nl == std::string::npos ? text : text.substr(nl + 1);
}

}  // namespace

Vm::Vm(Hypervisor& hypervisor, Settings settings, AgentConnector connector)
    : hv_(hypervisor),
      settings_(std::move(settings)),
      paths_(vm_paths(settings_.vm_name)),
      connector_(std::move(connector)) {}

std::string Vm::uri() const {
    return settings_.connect_uri.empty() ? default_uri() : settings_.connect_uri;
}

std::unique_ptr<Connection> Vm::connect() {
    return hv_.connect(uri());
}

void Vm::say(const Progress& p, const std::string& line) {
    log::debug("vm", "{}", line);
    if (p)
        p(line);
}

void Vm::step(const StartOptions& o, const std::string& name, double fraction,
              const std::string& line) {
    if (!line.empty())
        say(o.progress, line);
    last_fraction_ = std::clamp(fraction, 0.0, 1.0);
    if (o.on_step)
        o.on_step(ProgressStep{"start", name, last_fraction_, line});
}

void Vm::note(const StartOptions& o, const std::string& line) {
    say(o.progress, line);
    if (o.on_step)
        o.on_step(ProgressStep{"start", "note", last_fraction_, line});
}

void Vm::note(const StopOptions& o, const std::string& line) {
    say(o.progress, line);
    if (o.on_step)
        o.on_step(ProgressStep{"stop", "note", last_fraction_, line});
}

void Vm::step(const StopOptions& o, const std::string& name, double fraction,
              const std::string& line) {
    if (!line.empty())
        say(o.progress, line);
    last_fraction_ = std::clamp(fraction, 0.0, 1.0);
    if (o.on_step)
        o.on_step(ProgressStep{"stop", name, last_fraction_, line});
}

std::unique_ptr<Domain> Vm::lookup(Connection& c) {
    auto d = c.lookup(settings_.vm_name);
    if (d && d->xml().find(kCordonMetadata) == std::string::npos) {
        throw HostError(
            ErrorKind::usage,
            "a libvirt domain with this name exists and was not created by Cordon",
            settings_.vm_name + " on " + c.uri(),
            "Cordon leaves it alone: choose another name with `vmctl settings set vm_name NAME`");
    }
    return d;
}

bool Vm::wait_for_shutoff(Domain& d, std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        if (!d.status().active())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return !d.status().active();
}

StartResult Vm::start(const StartOptions& opt) {
    bool created = false;
    pid_t agent_pid = 0;
    try {
        return start_impl(opt, created, agent_pid);
    } catch (const HostError& e) {
        if (e.kind() != ErrorKind::cancelled)
            throw;
        // Leave nothing half-started: what this run started goes away again.
        std::string undone;
        if (created) {
            try {
                auto conn = connect();
                if (auto dom = lookup(*conn); dom && dom->status().active()) {
                    dom->destroy();
                    undone = "the VM was stopped (destroyed)";
                }
            } catch (const HostError& cleanup) {
                log::warn("vm", "cancelled start: cannot destroy the domain: {}", cleanup.what());
                undone = std::string("the VM could not be stopped: ") + cleanup.what();
            }
        }
        if (agent_pid > 0 || created) {
            stop_hostagent(paths_);
            ::unlink(paths_.channel_socket.c_str());
        }
        step(opt, "cancelled", 1.0,
             "start cancelled" +
                 (undone.empty() ? std::string(": nothing was running yet") : "; " + undone));
        throw HostError(ErrorKind::cancelled,
                        "the start was cancelled" + (undone.empty() ? "" : "; " + undone),
                        settings_.vm_name, "start it again with `vmctl start`");
    }
}

StartResult Vm::start_impl(const StartOptions& opt, bool& created, pid_t& agent_pid_out) {
    StartResult r;
    check_cancel(opt);
    auto conn = connect();
    const bool local = conn->is_local();
    step(opt, "connect", 0.05, "connected to " + conn->uri());
    auto dom = lookup(*conn);
    fs::path agent_exe = opt.hostagent_exe;
    if (local && agent_exe.empty())
        agent_exe = find_hostagent();

    if (dom && dom->status().active()) {
        r.already_running = true;
        r.kvm = dom->xml().find("type='kvm'") != std::string::npos;
        if (local && !hostagent_state(paths_).alive) {
            note(opt, "VM is running but its host agent is not: starting the host agent");
            const auto t0 = Clock::now();
            stop_hostagent(paths_);  // also removes the sockets a killed agent left behind
            const pid_t pid = start_hostagent(paths_, agent_exe, conn->uri());
            // The VM keeps running: wait until the new agent reaches the guest agent again.
            r.agent_waited = true;
            const auto deadline = t0 + opt.ready_timeout;
            std::string last_error;
            for (;;) {
                if (!process_alive(pid)) {
                    throw HostError(ErrorKind::agent_unreachable,
                                    "the host agent exited: " + log_tail(paths_.hostagent_log),
                                    paths_.hostagent_log.string(), "read the host agent's log");
                }
                try {
                    auto client = connector_(paths_.control_socket);
                    client->call("ping", json::object(), std::chrono::seconds(5));
                    r.seconds_to_ready = since(t0);
                    r.agent_info = client->call("info", json::object(), std::chrono::seconds(10));
                    break;
                } catch (const HostError& e) {
                    last_error = e.what();
                }
                if (Clock::now() >= deadline) {
                    throw HostError(ErrorKind::timeout,
                                    "the new host agent did not reach the guest agent within " +
                                        std::to_string(opt.ready_timeout.count()) +
                                        " s (last error: " + last_error + ")",
                                    paths_.hostagent_log.string(),
                                    "read the host agent's log and `vmctl logs console`");
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
            note(opt, "host agent reconnected to the running VM after " +
                          std::to_string(r.seconds_to_ready).substr(0, 5) + " s");
        }
        return r;
    }

    const fs::path image_dir =
        settings_.image_dir.empty() ? default_image_dir() : fs::path(settings_.image_dir);
    ImageManifest image = load_manifest(image_dir);
    step(opt, "image", 0.10,
         "image " + image.dir.string() + (image.version.empty() ? "" : " (" + image.version + ")"));
    check_cancel(opt);

    switch (settings_.accelerator) {
        case Accelerator::kvm:
            r.kvm = true;
            r.accelerator_reason = "kvm (forced by the accelerator setting)";
            break;
        case Accelerator::tcg:
            r.kvm = false;
            r.accelerator_reason = "tcg (forced by the accelerator setting)";
            break;
        case Accelerator::automatic:
            if (!local) {
                r.kvm = conn->offers_kvm();
                r.accelerator_reason = r.kvm ? "kvm (the remote libvirt offers it)"
                                             : "tcg (the remote libvirt offers no kvm)";
            } else {
                step(opt, "accelerator", 0.15, "probing whether KVM can boot this kernel");
                KvmProbe probe = probe_kvm(image.kernel, paths_.kvm_probe_cache);
                r.kvm = probe.usable;
                r.accelerator_reason = std::string(r.kvm ? "kvm" : "tcg") + " (" + probe.detail +
                                       (probe.cached ? ", cached" : "") + ")";
            }
            break;
    }
    step(opt, "accelerator", 0.25, "accelerator: " + r.accelerator_reason);
    check_cancel(opt);

    if (local) {
        make_dirs(paths_.state_dir, 0755);
        make_dirs(paths_.runtime_dir, 0700);
        if (!file_exists(paths_.data_disk)) {
            step(opt, "data_disk", 0.30,
                 "creating the data disk " + paths_.data_disk.string() + " (" +
                     std::to_string(settings_.disk_gib) + " GiB, qcow2)");
            cordon::ProcessResult p =
                cordon::run({"qemu-img", "create", "-q", "-f", "qcow2", paths_.data_disk.string(),
                             std::to_string(settings_.disk_gib) + "G"},
                            std::chrono::seconds(60));
            if (!p.ok()) {
                ::unlink(paths_.data_disk.c_str());
                throw HostError(ErrorKind::generic,
                                "qemu-img cannot create the data disk: " + p.err + p.out,
                                paths_.data_disk.string(),
                                "check the free space and the permissions of the folder");
            }
            r.data_disk_created = true;
        }
        // A previous run's agent or a socket QEMU left behind would confuse the new run.
        stop_hostagent(paths_);
        ::unlink(paths_.channel_socket.c_str());
    } else {
        note(opt, "remote libvirt: the data disk, image and sockets are paths on the remote host");
    }

    DomainSpec spec;
    spec.name = settings_.vm_name;
    spec.kvm = r.kvm;
    spec.vcpus = settings_.cpus;
    spec.memory_mib = settings_.memory_mib;
    spec.kernel = image.kernel;
    spec.initrd = image.initrd;
    spec.cmdline = image.cmdline;
    // The guest applies an administrator's isolation lock from its first moment,
    // before dockerd starts and before any host agent connects.
    if (settings_.isolation_locked)
        spec.cmdline +=
            settings_.isolation ? " cordon.isolation_lock=on" : " cordon.isolation_lock=off";
    // The administrator's policy settings, always sent (the defaults too): the guest reads
    // them from fw_cfg before its policy proxy serves anything, and cordon.admin=fw_cfg
    // tells it they must be there (missing or malformed: it denies, see docs/POLICY.md).
    const auto admin_file = paths_.state_dir / "admin-policy.json";
    write_file_atomically(admin_file.string(), guest_document(settings_.admin_policy), 0644);
    spec.fw_cfg.push_back({kAdminFwCfgName, admin_file});
    spec.cmdline += " cordon.admin=fw_cfg";
    // The engine settings (registries, DNS, the CAs it trusts), read and checked whole
    // before the file is replaced: a bad CA file stops the start with nothing written.
    const auto engine_file = paths_.state_dir / "engine-settings.json";
    write_file_atomically(engine_file.string(), engine_document_for(settings_), 0644);
    spec.fw_cfg.push_back({kEngineFwCfgName, engine_file});
    spec.cmdline += " cordon.engine=fw_cfg";
    spec.rootfs = image.rootfs;
    spec.rootfs_format = image.rootfs_format;
    spec.data_disk = paths_.data_disk;
    spec.channel_socket = paths_.channel_socket;
    spec.console_log = paths_.console_log;
    add_shared_folders(spec, local, opt);
    // Defining is slow on some hosts (libvirtd re-probes QEMU): only when something changed.
    if (dom && fingerprint_in_xml(dom->xml()) == domain_fingerprint(spec)) {
        step(opt, "define", 0.40, "the libvirt domain " + settings_.vm_name + " is up to date");
    } else {
        if (dom)
            spec.uuid = dom->uuid();
        step(opt, "define", 0.40,
             std::string(dom ? "redefining" : "defining") + " the libvirt domain " +
                 settings_.vm_name);
        dom = conn->define(domain_xml(spec));
    }
    check_cancel(opt);

    const auto t0 = Clock::now();
    dom->create();
    created = true;
    step(opt, "boot", 0.50, "VM started; booting");

    if (!local) {
        step(opt, "ready", 1.0, "");
        return r;
    }
    check_cancel(opt);
    const pid_t agent_pid = start_hostagent(paths_, agent_exe, conn->uri());
    agent_pid_out = agent_pid;
    step(opt, "hostagent", 0.60,
         "host agent started (pid " + std::to_string(agent_pid) + "); waiting for the guest agent");

    r.agent_waited = true;
    const auto deadline = t0 + opt.ready_timeout;
    auto next_note = Clock::now() + std::chrono::seconds(10);
    std::string last_error;
    for (;;) {
        check_cancel(opt);
        DomainStatus st;
        try {
            if (!dom) {  // libvirtd went away (restarted): the VM runs on; look again
                conn = connect();
                dom = lookup(*conn);
                if (!dom)
                    throw HostError(ErrorKind::vm_not_found, "the VM was undefined while booting",
                                    settings_.vm_name, "start it again with `vmctl start`");
                note(opt, "reconnected to libvirt");
            }
            st = dom->status();
        } catch (const HostError& e) {
            if (e.kind() != ErrorKind::libvirt && e.kind() != ErrorKind::libvirt_unreachable)
                throw;
            if (Clock::now() >= deadline)
                throw;
            if (dom)
                note(opt, std::string("lost libvirt (") + e.failure() + "); reconnecting");
            dom.reset();
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            continue;
        }
        if (!st.active()) {
            throw HostError(ErrorKind::vm_not_running, "the VM stopped while booting: " + st.reason,
                            settings_.vm_name, "read the console log with `vmctl logs console`");
        }
        if (!process_alive(agent_pid)) {
            throw HostError(ErrorKind::agent_unreachable,
                            "the host agent exited: " + log_tail(paths_.hostagent_log),
                            paths_.hostagent_log.string(),
                            "read the host agent's log; `vmctl stop` stops the VM");
        }
        try {
            auto client = connector_(paths_.control_socket);
            client->call("ping", json::object(), std::chrono::seconds(5));
            r.seconds_to_ready = since(t0);
            try {
                r.agent_info = client->call("info", json::object(), std::chrono::seconds(10));
            } catch (const HostError& e) {
                log::debug("vm", "info after start: {}", e.what());
            }
            break;
        } catch (const HostError& e) {
            last_error = e.what();
        }
        if (Clock::now() >= deadline) {
            throw HostError(ErrorKind::timeout,
                            "the guest agent did not answer within " +
                                std::to_string(opt.ready_timeout.count()) +
                                " s (last error: " + last_error + ")",
                            settings_.vm_name,
                            "the VM keeps running: read `vmctl logs console`, then `vmctl stop` or "
                            "wait and check "
                            "`vmctl status`");
        }
        if (Clock::now() >= next_note) {
            step(opt, "agent", creep(0.60, 0.85, since(t0), 12.0),
                 "still waiting for the guest agent (" +
                     std::to_string(static_cast<int>(since(t0))) + " s)");
            next_note += std::chrono::seconds(10);
        } else if (opt.on_step) {
            opt.on_step(ProgressStep{"start", "agent", creep(0.60, 0.85, since(t0), 12.0), ""});
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    step(opt, "agent", 0.88,
         "guest agent answered after " + std::to_string(r.seconds_to_ready).substr(0, 5) + " s");
    wait_for_engine(r, deadline, opt, t0);
    step(opt, "ready", 1.0, "");
    return r;
}

// Each shared folder becomes two virtiofs devices, one per isolation mode (the guest
// mounts the one of the mode in force; see docs/ARCHITECTURE.md), served by virtiofsd in
// a user namespace through the wrapper scripts written here at every start.
void Vm::add_shared_folders(DomainSpec& spec, bool local, const StartOptions& opt) {
    const auto& folders = settings_.shared_folders;
    if (folders.empty())
        return;
    if (!local) {
        note(opt, "remote libvirt: shared folders are not supported; starting without them");
        return;
    }
    if (::geteuid() != 0) {
        note(opt,
             "shared folders need libvirt's system instance (QEMU 7.2's virtiofsd runs as root); "
             "starting without them");
        return;
    }
    for (const auto& f : folders) {
        struct stat st {};
        if (::stat(f.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            throw HostError(ErrorKind::config,
                            "the shared folder does not exist or is not a folder", f.path,
                            "create it, or remove it with `vmctl shares remove " + f.path + "`");
    }
    fs::path wrapper;
    try {
        wrapper = find_virtiofs_wrapper();
    } catch (const HostError& e) {  // the VM stays usable; binds are refused with a reason
        note(opt, std::string(e.what()) + "; starting without shared folders");
        return;
    }
    const fs::path dir = paths_.state_dir / "virtiofs";
    write_virtiofs_wrappers(dir, folders, settings_.share_owner, wrapper);
    for (std::size_t i = 0; i < folders.size(); ++i)
        for (bool iso : {false, true})
            spec.filesystems.push_back(
                {share_tag(i, iso), folders[i].path, virtiofs_wrapper_path(dir, i, iso)});
    spec.cmdline += share_cmdline(folders);
    note(opt, std::to_string(folders.size()) + " shared folder(s), owned on the host by " +
                  settings_.share_owner.text());
}

// A started VM is one whose Docker engine answers (as Docker Desktop means it): poll the
// agent's info until the engine is ready, or says why it cannot run.
void Vm::wait_for_engine(StartResult& r, Clock::time_point deadline, const StartOptions& opt,
                         Clock::time_point t0) {
    const auto e0 = Clock::now();
    auto engine_state = [](const json& info) -> std::string {
        if (!info.is_object() || !info.contains("engine") || !info["engine"].is_object())
            return "";
        return info["engine"].value("state", "");
    };
    std::string state = engine_state(r.agent_info);
    if (state.empty())
        return;  // an agent that does not report its engine
    if (state != "ready")
        step(opt, "engine", 0.90, "waiting for the container engine (" + state + ")");
    while (state != "ready") {
        check_cancel(opt);
        if (opt.on_step)
            opt.on_step(ProgressStep{"start", "engine", creep(0.90, 0.99, since(e0), 10.0), ""});
        if (state == "unavailable") {
            const std::string why = r.agent_info["engine"].value("message", "");
            note(opt, "the container engine cannot run: " + why);
            return;
        }
        if (Clock::now() >= deadline) {
            throw HostError(ErrorKind::timeout,
                            "the container engine did not become ready in time (" + state + ")",
                            settings_.vm_name, "read `vmctl logs engine`; the VM keeps running");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        try {
            r.agent_info = connector_(paths_.control_socket)
                               ->call("info", json::object(), std::chrono::seconds(10));
            state = engine_state(r.agent_info);
        } catch (const HostError& e) {
            log::debug("vm", "info while waiting for the engine: {}", e.what());
        }
    }
    r.seconds_to_engine = since(t0);
    step(opt, "engine", 0.99,
         "container engine ready after " + std::to_string(r.seconds_to_engine).substr(0, 5) + " s");
}

StopResult Vm::stop(const StopOptions& opt) {
    StopResult r;
    auto conn = connect();
    auto dom = lookup(*conn);
    if (!dom) {
        throw HostError(ErrorKind::vm_not_found, "no VM of this name is defined",
                        settings_.vm_name + " on " + conn->uri(), "start it with `vmctl start`");
    }
    const auto t0 = Clock::now();
    if (!dom->status().active()) {
        r.method = "none";
        if (conn->is_local())
            stop_hostagent(paths_);
        return r;
    }
    r.was_running = true;
    bool off = false;
    if (conn->is_local()) {
        try {
            step(opt, "agent_shutdown", 0.1, "asking the guest agent to shut down");
            auto client = connector_(paths_.control_socket);
            client->call("shutdown", json::object(), std::chrono::seconds(10));
            off = wait_for_shutoff(*dom, opt.agent_timeout);
            if (off)
                r.method = "agent";
            else
                note(opt, "the guest did not power off within " +
                              std::to_string(opt.agent_timeout.count()) + " s");
        } catch (const HostError& e) {
            note(opt, std::string("the guest agent cannot shut down the VM: ") + e.what());
        }
    }
    if (!off) {
        step(opt, "acpi", 0.5, "sending an ACPI shutdown");
        try {
            dom->shutdown();
            off = wait_for_shutoff(*dom, opt.acpi_timeout);
            if (off)
                r.method = "acpi";
        } catch (const HostError& e) {
            note(opt, std::string("ACPI shutdown failed: ") + e.what());
        }
    }
    if (!off) {
        step(opt, "destroy", 0.8, "the VM did not power off: destroying it");
        dom->destroy();
        r.method = "destroy";
    }
    if (conn->is_local())
        stop_hostagent(paths_);
    r.seconds = since(t0);
    step(opt, "stopped", 1.0, "");
    return r;
}

VmStatus Vm::status(std::chrono::milliseconds agent_timeout) {
    VmStatus s;
    s.name = settings_.vm_name;
    s.uri = uri();
    s.paths = paths_;
    auto conn = connect();
    s.uri = conn->uri();
    auto dom = lookup(*conn);
    s.defined = dom != nullptr;
    if (dom) {
        s.domain = dom->status();
        s.domain_type = dom->xml().find("type='kvm'") != std::string::npos ? "kvm" : "qemu";
    } else {
        s.domain.state = DomainState::shutoff;
        s.domain.reason = "not defined";
    }
    HostAgentState ha = hostagent_state(paths_);
    s.hostagent_alive = ha.alive;
    s.hostagent_pid = ha.pid;
    if (s.domain.state == DomainState::running && ha.alive) {
        try {
            auto client = connector_(paths_.control_socket);
            s.agent_info = client->call("info", json::object(), agent_timeout);
            s.agent_reachable = true;
        } catch (const HostError& e) {
            s.agent_error = e.what();
        }
    } else if (s.domain.state == DomainState::running) {
        s.agent_error = "the host agent is not running (`vmctl start` starts it again)";
    }
    return s;
}

bool Vm::remove(bool delete_data) {
    auto conn = connect();
    auto dom = lookup(*conn);
    if (dom) {
        if (dom->status().active())
            dom->destroy();
        dom->undefine();
    }
    if (conn->is_local()) {
        stop_hostagent(paths_);
        ::unlink(paths_.channel_socket.c_str());
        std::error_code ec;
        fs::remove(paths_.runtime_dir, ec);
        if (delete_data) {
            fs::remove(paths_.data_disk, ec);
            if (ec)
                throw HostError(ErrorKind::generic, "cannot remove the data disk: " + ec.message(),
                                paths_.data_disk.string());
            fs::remove(paths_.console_log, ec);
            fs::remove(paths_.hostagent_log, ec);
            fs::remove(paths_.state_dir, ec);
        }
    }
    return dom != nullptr;
}

json Vm::call_agent(const std::string& method, const json& params,
                    std::chrono::milliseconds timeout) {
    auto conn = connect();
    auto dom = lookup(*conn);
    if (!dom) {
        throw HostError(ErrorKind::vm_not_found, "no VM of this name is defined",
                        settings_.vm_name + " on " + conn->uri(), "start it with `vmctl start`");
    }
    if (dom->status().state != DomainState::running) {
        throw HostError(ErrorKind::vm_not_running, "the VM is not running", settings_.vm_name,
                        "start it with `vmctl start`");
    }
    if (!conn->is_local()) {
        throw HostError(ErrorKind::agent_unreachable,
                        "the guest agent is only reachable through a local libvirt", conn->uri(),
                        "run vmctl on the host that runs the VM");
    }
    if (!hostagent_state(paths_).alive) {
        throw HostError(ErrorKind::agent_unreachable, "the host agent is not running",
                        paths_.control_socket.string(), "run `vmctl start` to start it again");
    }
    return connector_(paths_.control_socket)->call(method, params, timeout);
}

json Vm::call_agent(const std::string& method, const json& params,
                    std::chrono::milliseconds timeout,
                    const AgentClient::NotificationHandler& on_notification) {
    // The same checks as the plain call (they throw with the right kinds).
    if (!on_notification)
        return call_agent(method, params, timeout);
    call_agent("ping", json::object(), std::chrono::seconds(10));
    return connector_(paths_.control_socket)
        ->call_notified(method, params, timeout, on_notification);
}

namespace {
// The guest's isolation switch reports text steps; these are their names and places.
ProgressStep isolation_step(const std::string& text, double floor) {
    struct Known {
        const char* prefix;
        const char* step;
        double fraction;
    };
    static const Known known[] = {{"stopping container", "stop_containers", 0.10},
                                  {"saving", "save_images", 0.25},
                                  {"stopping the engine", "stop_engine", 0.40},
                                  {"moving volume", "move_volumes", 0.50},
                                  {"starting the engine", "start_engine", 0.65},
                                  {"loading", "load_images", 0.85},
                                  {"failed", "rollback", 0.90}};
    for (const auto& k : known) {
        if (text.rfind(k.prefix, 0) == 0)
            return {"isolation", k.step, std::max(floor, k.fraction), text};
    }
    return {"isolation", "working", floor, text};
}
}  // namespace

json Vm::set_isolation(bool enabled, bool confirmed, const json& admin_lock,
                       const StepProgress& on_step, std::chrono::milliseconds timeout,
                       std::optional<bool> exclusive_ranges) {
    json params = {{"enabled", enabled}, {"confirmed", confirmed}};
    if (exclusive_ranges)
        params["exclusive_ranges"] = *exclusive_ranges;
    if (!admin_lock.is_null())
        params["admin_lock"] = admin_lock;
    double fraction = 0;
    auto handler = [&](const std::string& method, const json& p) {
        if (method != "progress" || !on_step || !p.is_object())
            return;
        ProgressStep s = isolation_step(p.value("step", ""), fraction);
        fraction = s.fraction;
        on_step(s);
    };
    json r = call_agent("isolation", params, timeout, handler);
    if (on_step)
        on_step(ProgressStep{"isolation", "done", 1.0,
                             std::string("isolation is ") +
                                 (r.is_object() && r.value("enabled", enabled) ? "on" : "off")});
    return r;
}

}  // namespace cordon::host

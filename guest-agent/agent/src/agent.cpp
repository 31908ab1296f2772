#include "agent.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cordon/engine/subid.hpp"
#include "cordon/error.hpp"
#include "cordon/guest/http_ping.hpp"
#include "cordon/guest/leftovers.hpp"
#include "cordon/guest/shutdown.hpp"
#include "cordon/log.hpp"
#include "cordon/proxy/volume_options.hpp"
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positive in Asio
#include "cordon/subprocess.hpp"
#include "engine_guard.hpp"
#include "memory_stats.hpp"
#include "restart_notice.hpp"
#include "shell_service.hpp"

namespace cordon::agent {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using rpc::json;

namespace {
#ifndef CORDON_VERSION
#define CORDON_VERSION "0.0.0"
#endif
constexpr const char* kAgentLog = "agent";

double uptime_or_zero() {
    try {
        return guest::read_uptime();
    } catch (const std::exception&) {
        return 0;
    }
}
// The shared host folders the host listed on the kernel command line.
std::unique_ptr<shares::ShareMounter> make_share_mounter(const std::string& cmdline) {
    std::vector<std::string> problems;
    auto list = shares::parse_share_cmdline(cmdline, &problems);
    for (const auto& p : problems) log::error("shares", "ignoring {}", p);
    return std::make_unique<shares::ShareMounter>(std::move(list));
}

}  // namespace

Agent::Agent(asio::io_context& io, AgentOptions options)
    : io_(io),
      opts_(std::move(options)),
      version_(CORDON_VERSION),
      supervisor_(io, "supervisor"),
      rpc_(io, "rpc"),
      port_timer_(io),
      probe_timer_(io),
      disk_timer_(io),
      shutdown_timer_(io),
      signals_(io, SIGTERM, SIGINT),
      ports_(std::make_unique<ports::PortService>(io, opts_.dockerd_socket)),
      agent_log_(std::make_unique<AgentLog>()),
      alive_(std::make_shared<bool>(true)) {
    events_ = std::make_unique<EventHub>(io_, [this] {
        EventState st;
        st.engine_state = engine_state_;
        st.engine_message = engine_message_;
        if (engine_) {
            st.isolation = engine_->isolation();
            st.switching = engine_->switching();
        }
        for (const auto& s : supervisor_.status()) {
            if (s.name == "dockerd") {
                st.dockerd_restarts = s.restarts;
                st.dockerd_state = guest::to_string(s.state);
            }
        }
        st.shutting_down = shutting_down_;
        return st;
    });
}

Agent::~Agent() {
    *alive_ = false;
}

void Agent::record_boot_time(const std::string& name) {
    const std::string path = opts_.run_dir + "/boot-times";
    try {
        for (const auto& [n, t] : guest::read_boot_times(path)) {
            if (n == name)
                return;  // first occurrence only (the agent may be restarted)
        }
        guest::append_boot_time(path, name, uptime_or_zero());
    } catch (const std::exception& e) {
        log::warn(kAgentLog, "cannot record boot time {}: {}", name, e.what());
    }
}

void Agent::start() {
    record_boot_time("agent-start");
    log::info(kAgentLog, "cordon-guest-agent {} starting", version_);
    load_admin_settings();  // before any shell, exec or Docker request can be served
    register_methods();
    open_port();  // first: the host must get answers as early as possible

    signals_.async_wait([this, alive = alive_](boost::system::error_code ec, int sig) {
        if (!*alive || ec)
            return;
        log::info(kAgentLog, "signal {}: stopping the services", sig);
        begin_shutdown(false);
    });

    wait_for_data_disk();
}

// fw_cfg -> /etc/cordon/admin-settings.json -> admin_ (admin_settings.hpp). Quick: a
// modprobe at most.
void Agent::load_admin_settings() {
    std::string cmdline;
    {
        std::ifstream in("/proc/cmdline");
        std::getline(in, cmdline);
    }
    admin_ = receive_admin_settings(cmdline, opts_.admin, [] {
        try {
            const auto r = cordon::run({"modprobe", "qemu_fw_cfg"}, 10s);
            if (r.exit_code != 0)
                log::warn(kAgentLog, "modprobe qemu_fw_cfg failed: {}", r.err);
        } catch (const std::exception& e) {
            log::warn(kAgentLog, "cannot run modprobe qemu_fw_cfg: {}", e.what());
        }
    });
    policy::PolicyConfig check;  // commandList names are checked now, not when the proxy starts
    apply_admin_policy(admin_, check);
}

// The init checks and mounts the data disk in the background while the agent already
// answers; its report (/run/cordon/data-disk) decides whether the engine can run.
void Agent::wait_for_data_disk() {
    const std::string path = opts_.run_dir + "/data-disk";
    if (::access(path.c_str(), F_OK) != 0) {
        if (disk_wait_started_ == std::chrono::steady_clock::time_point{}) {
            disk_wait_started_ = std::chrono::steady_clock::now();
        }
        if (std::chrono::steady_clock::now() - disk_wait_started_ > opts_.data_disk_timeout) {
            disk_.state = "error";
            disk_.message = "the init did not report on the data disk within " +
                            std::to_string(opts_.data_disk_timeout.count()) + " ms (" + path +
                            " is missing); see the console log";
            log::error(kAgentLog, "{}", disk_.message);
            if (opts_.engine)
                setup_engine();
            return;
        }
        disk_.state = "checking";
        disk_.message = "the init is checking the data disk";
        engine_state_ = "waiting";
        engine_message_ = "waiting for the data disk";
        disk_timer_.expires_after(20ms);
        disk_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
            if (*alive && !ec)
                wait_for_data_disk();
        });
        return;
    }
    disk_ = guest::read_data_disk(path);
    if (disk_.ok()) {
        try {
            // Once per boot: a restarted agent (kill -9, crash) reads the count instead.
            const std::string counted = opts_.run_dir + "/boot-counted";
            if (::access(counted.c_str(), F_OK) == 0) {
                std::ifstream in(opts_.state_dir + "/boot-count");
                std::uint64_t n = 0;
                if (in >> n)
                    boot_count_ = n;
            } else {
                boot_count_ = guest::bump_counter(opts_.state_dir + "/boot-count");
                std::ofstream(counted) << *boot_count_ << "\n";
            }
        } catch (const Error& e) {
            state_error_ = e.what();
            log::error(kAgentLog, "{}", state_error_);
        }
    } else {
        log::error(kAgentLog, "data disk {}: {}", disk_.state, disk_.message);
    }
    if (opts_.engine)
        setup_engine();
}

void Agent::setup_engine() {
    if (!disk_.ok()) {
        engine_state_ = "unavailable";
        engine_message_ =
            "containers cannot run: the data disk is " + disk_.state + ": " + disk_.message;
        return;
    }
    // Records and output FIFOs in /run/cordon/services: a restarted agent adopts the engine.
    supervisor_.set_state_dir(opts_.run_dir + "/services");
    guest::ServiceSpec containerd;
    containerd.name = "containerd";
    containerd.argv = {opts_.containerd, "--config", "/etc/containerd/config.toml"};
    const std::string runc_shim_dir = opts_.run_dir + "/runc-shim";
    containerd.env = {engine::engine_path_env(runc_shim_dir)};  // the runc shim first
    containerd.wait_for = {opts_.run_dir + "/system-ready"};    // cgroup2 is mounted
    containerd.wait_poll = 20ms;
    containerd.stop_timeout = 10s;
    supervisor_.add(containerd);

    engine::EnginePaths paths;
    paths.dockerd_socket = opts_.dockerd_socket;
    paths.state_dir = opts_.state_dir;
    paths.daemon_json = opts_.run_dir + "/daemon.json";
    paths.runc_shim_dir = runc_shim_dir;
    std::string cmdline;
    {
        std::ifstream in("/proc/cmdline");
        std::getline(in, cmdline);
    }
    // Before dockerd starts: Go reads the system CA bundle once per process.
    EngineSettingsPaths engine_files = opts_.engine_settings;
    engine_files.fw_cfg_root = opts_.admin.fw_cfg_root;
    engine_files.daemon_base_json = opts_.run_dir + "/daemon.base.json";
    engine_settings_ = receive_engine_settings(cmdline, engine_files);
    paths.base_daemon_json = engine_files.daemon_base_json;
    shares_ = make_share_mounter(cmdline);
    engine_ = std::make_unique<EngineService>(io_, supervisor_, paths, [this](bool on) {
        if (shares_)
            shares_->apply(on);  // the virtiofs device served with this mode's ID map
        if (proxy_)
            proxy_->set_isolation(on);
    });
    try {
        engine_->prepare_boot(cmdline);
    } catch (const std::exception& e) {
        engine_state_ = "unavailable";
        engine_message_ = std::string("cannot configure dockerd: ") + e.what();
        log::error(kAgentLog, "{}", engine_message_);
        return;
    }

    guest::ServiceSpec dockerd;
    dockerd.name = "dockerd";
    dockerd.argv = {opts_.dockerd, "--config-file", engine_->daemon_json()};
    dockerd.env = {engine::engine_path_env(runc_shim_dir)};  // BuildKit runs "runc" from PATH
    // The init's module job (bridge, veth) and containerd come first; DHCP need not.
    dockerd.wait_for = {opts_.run_dir + "/modules-ready", "/run/containerd/containerd.sock"};
    dockerd.wait_poll = 20ms;
    dockerd.stop_timeout = 15s;
    dockerd.config_files = {engine_->daemon_json()};  // adopted only if it is unchanged
    confine_dockerd(dockerd);
    supervisor_.add(dockerd);

    supervisor_.set_start_hook([this](const std::string& name, int pid) {
        guest::record_service_pid(opts_.run_dir, name, pid);
        if (name != "dockerd")
            return;
        dockerd_ready_ = false;
        engine_state_ = "starting";
        probe_dockerd();
    });
    engine_state_ = "starting";
    // A previous agent of this boot that was killed left its services running: adopt them
    // when that is safe, or stop them and start again (engine_service.cpp).
    engine_->start_services(opts_.run_dir,
                            {{"containerd", opts_.containerd}, {"dockerd", opts_.dockerd}}, 5s,
                            [this](EngineService::StartPath p) {
                                if (const auto g = guard_->status(); g["state"] == "failed")
                                    p.reason += "; " + g["reason"].get<std::string>();
                                engine_start_ = p;
                                log::info(kAgentLog, "{}: {}", p.summary, p.reason);
                                record_boot_time("engine-" + p.path);
                            });
    if (opts_.proxy)
        start_proxy();
    ports_->start();
}

// dockerd and all it forks start in a cgroup of their own, from an empty working folder
// (relative mount paths resolve there), under the mount guard while isolation is on
// (engine_guard.hpp): before each start or adoption the guard follows daemon.json, and a
// guard that cannot be had with isolation on keeps dockerd from starting.
void Agent::confine_dockerd(guest::ServiceSpec& dockerd) {
    EngineGuardPaths gp;
    gp.daemon_json = engine_->daemon_json();
    gp.probe_dir = opts_.run_dir + "/mount-guard-probe";
    // The layer stores, and where dockerd's overlay2 driver probes overlay support when its
    // layer store does not exist yet (a fresh data root: check-overlayfs-support<N>/).
    gp.overlay_prefixes = {"/var/lib/docker/overlay2/", "/var/lib/docker/check-overlayfs-support"};
    try {  // userns-remap's data root is named after the VM user's ranges
        const auto uids = engine::read_subid_range("/etc/subuid", "cordon");
        const auto gids = engine::read_subid_range("/etc/subgid", "cordon");
        if (uids && gids) {
            const std::string root = "/var/lib/docker/" + std::to_string(uids->start) + "." +
                                     std::to_string(gids->start) + "/";
            gp.overlay_prefixes.push_back(root + "overlay2/");
            gp.overlay_prefixes.push_back(root + "check-overlayfs-support");
        }
    } catch (const std::exception& e) {
        log::error(kAgentLog, "mount guard: {} (remapped layers will be refused)", e.what());
    }
    guard_ = std::make_unique<EngineGuard>(io_, gp);
    dockerd.cgroup = gp.cgroup;
    dockerd.cwd = opts_.run_dir + "/engine-cwd";
    ::mkdir(dockerd.cwd.c_str(), 0111);
    dockerd.before_start = [this, cgroup = gp.cgroup] {
        mountguard::ensure_cgroup(cgroup);  // spawn joins it, whether isolation is on or off
        return guard_->apply();
    };
    // A restarted agent (the system is up): the guard is back before the proxy forwards
    // anything to an engine it may adopt.
    if (std::filesystem::exists(opts_.run_dir + "/system-ready"))
        guard_->apply();
}

// The locked-down Docker socket (guest-agent/proxy) on the agent's io_context: "docker"
// streams reach it; it alone talks to dockerd's socket.
void Agent::start_proxy() {
    try {
        audit_ = std::make_unique<policy::AuditLog>(1000, opts_.state_dir + "/audit.log");
        policy::ProxyOptions po;
        po.listen_path = opts_.docker_socket;
        po.upstream_path = opts_.dockerd_socket;
        po.listen_mode = 0600;
        // Allowlisted containers get their own socket, where the container role's rules
        // (the admin's commandList) apply; the bind source is rewritten to it.
        po.container_listen_path = opts_.run_dir + "/docker-containers.sock";
        policy::PolicyConfig pc;
        pc.binds_only_from_shares = true;  // with isolation on: binds only from shared folders
        if (shares_)
            pc.shared_folders = shares_->paths();
        apply_admin_policy(admin_, pc);  // socketMountImages, commandList
        // The VM's own subnets (its uplink, as configured by udhcpc before the agent
        // starts) join QEMU user-mode's defaults: no network or nfs/cifs volume on them.
        for (auto& cidr : policy::interface_subnets())
            if (std::find(pc.vm_subnets.begin(), pc.vm_subnets.end(), cidr) == pc.vm_subnets.end())
                pc.vm_subnets.push_back(std::move(cidr));
        proxy_ = std::make_unique<policy::PolicyProxy>(io_, po, pc, *audit_);
        if (engine_)
            proxy_->set_isolation(engine_->isolation());
        proxy_->start();
        log::info(kAgentLog, "policy proxy on {} -> {}", opts_.docker_socket,
                  opts_.dockerd_socket);
    } catch (const std::exception& e) {
        proxy_.reset();
        proxy_error_ = e.what();
        log::error(kAgentLog, "cannot start the policy proxy: {}", proxy_error_);
    }
}

void Agent::probe_dockerd() {
    probe_timer_.expires_after(50ms);
    probe_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
        if (!*alive || ec || shutting_down_)
            return;
        guest::async_http_ping(
            io_, opts_.dockerd_socket, 2s, [this, alive](bool ok, const std::string& detail) {
                if (!*alive || shutting_down_)
                    return;
                last_probe_ = detail;
                if (!ok) {
                    if (supervisor_.status("dockerd").state == guest::ServiceState::running)
                        probe_dockerd();
                    return;
                }
                dockerd_ready_ = true;
                engine_state_ = "ready";
                engine_message_.clear();
                // dockerd creates its socket 0660 root:root ("group": "root"); only root may use
                // it.
                if (::chmod(opts_.dockerd_socket.c_str(), 0600) != 0) {
                    log::warn(kAgentLog, "cannot chmod {} 0600: {}", opts_.dockerd_socket,
                              errno_string(errno));
                }
                record_boot_time("dockerd-ready");
                if (!engine_ready_after_s_) {
                    engine_ready_after_s_ = std::chrono::duration<double>(
                                                std::chrono::steady_clock::now() - started_at_)
                                                .count();
                }
                log::info(kAgentLog, "dockerd is ready");
            });
    });
}

// /dev/virtio-ports/NAME is a udev convention; without udev (or before the init linked it)
// find the port whose sysfs name is NAME and open /dev/vportXpY directly.
static std::string resolve_port(const std::string& path) {
    if (::access(path.c_str(), F_OK) == 0)
        return path;
    const std::filesystem::path p(path);
    if (p.parent_path() != "/dev/virtio-ports")
        return path;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/sys/class/virtio-ports", ec)) {
        std::ifstream in(entry.path() / "name");
        std::string name;
        if (std::getline(in, name) && name == p.filename().string()) {
            return "/dev/" + entry.path().filename().string();
        }
    }
    return path;
}

void Agent::open_port() {
    if (shutting_down_)
        return;
    const std::string port = resolve_port(opts_.port);
    const int fd = ::open(port.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (!port_missing_logged_) {
            log::warn(kAgentLog, "cannot open the channel port {}: {} (retrying)", opts_.port,
                      errno_string(errno));
            port_missing_logged_ = true;
        }
        port_timer_.expires_after(100ms);
        port_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
            if (*alive && !ec)
                open_port();
        });
        return;
    }
    if (!restart_notice_sent_) {
        restart_notice_sent_ = true;
        send_restart_notice(fd);
    }
    channel::SessionOptions so;
    so.role = channel::Role::guest;
    so.agent_version = "cordon-guest-agent " + version_;
    so.log_component = "channel";
    so.trim_heap_when_idle = std::chrono::seconds(1);  // RSS back down after bursts (issue 9)
    session_ = channel::Session::create(io_, UniqueFd(fd), so);
    session_->set_stream_handler(
        [this, alive = alive_](std::shared_ptr<channel::Stream> s, const std::string& svc) {
            if (*alive)
                on_stream(std::move(s), svc);
        });
    session_->set_close_handler(
        [this, alive = alive_](boost::system::error_code, const std::string& reason) {
            if (!*alive || shutting_down_)
                return;
            log::warn(kAgentLog, "channel ended: {}; reopening the port", reason);
            port_timer_.expires_after(500ms);
            port_timer_.async_wait([this, alive](boost::system::error_code ec) {
                if (*alive && !ec)
                    open_port();
            });
        });
    session_->start([](boost::system::error_code ec, const channel::PeerInfo& peer) {
        if (ec) {
            log::warn(kAgentLog, "handshake with the host failed: {}", ec.message());
        } else {
            log::info(kAgentLog, "host connected ({}, protocol {})", peer.agent_version,
                      peer.version);
        }
    });
    log::info(kAgentLog, "serving the channel on {} ({})", opts_.port, port);
}

void Agent::on_stream(std::shared_ptr<channel::Stream> stream, const std::string& service) {
    if (service == "rpc") {
        rpc_.serve(std::move(stream));
        return;
    }
    if (service == "shell") {
        ShellOptions shell;
        shell.refusal = shell_refusal(admin_);  // lockVmShell: the error reaches vmctl
        serve_shell(io_, std::move(stream), std::move(shell));
        return;
    }
    if (service == "docker") {
        auto sock = std::make_shared<asio::local::stream_protocol::socket>(io_);
        sock->async_connect(asio::local::stream_protocol::endpoint(opts_.docker_socket),
                            [this, sock, stream](boost::system::error_code ec) {
                                if (ec) {
                                    stream->reset("cannot reach the Docker socket " +
                                                  opts_.docker_socket + ": " + ec.message() +
                                                  " (engine " + engine_state_ + ")");
                                    return;
                                }
                                channel::splice(stream, std::move(*sock));
                            });
        return;
    }
    if (ports::PortService::is_port_service(service)) {
        ports_->on_stream(std::move(stream), service);
        return;
    }
    stream->reset("no service named '" + service +
                  "' in the guest agent (known: rpc, docker, shell, port:tcp:<port>)");
}

void Agent::register_methods() {
    rpc_.register_method("ping", [this](const json&, rpc::Call&) {
        return json{{"pong", true}, {"agent_version", version_}, {"uptime_s", uptime_or_zero()}};
    });
    rpc_.register_method("info", [this](const json&, rpc::Call&) { return info(); });
    ports_->register_methods(rpc_);
    clock_.register_methods(rpc_);
    register_memory_methods(rpc_);  // "memory" (memory_stats.hpp)
    rpc_.register_async_method("isolation", [this](std::shared_ptr<rpc::Call> call) {
        if (!engine_) {
            call->fail(rpc::RemoteError{"unavailable",
                                        "the container engine is not set up: " + engine_message_,
                                        "'vmctl status' shows the data disk state"});
            return;
        }
        engine_->handle_call(std::move(call));
    });
    rpc_.register_method("audit", [this](const json& params, rpc::Call&) {
        if (!audit_) {
            throw rpc::CallError("unavailable",
                                 "the policy proxy is not running: " +
                                     (proxy_error_.empty() ? engine_message_ : proxy_error_),
                                 "audit");
        }
        std::size_t limit = 200;
        if (params.is_object() && params.contains("limit")) {
            if (!params["limit"].is_number_unsigned())
                throw rpc::CallError(rpc::code::invalid_params,
                                     "\"limit\" must be a non-negative integer", "audit");
            limit = std::min<std::size_t>(params["limit"].get<std::size_t>(), 1000);
        }
        return json{{"entries", audit_->recent_json(limit)},
                    {"total", audit_->total()},
                    {"denied", audit_->denied()}};
    });
    rpc_.register_async_method("exec",
                               [this](std::shared_ptr<rpc::Call> call) { exec(std::move(call)); });
    rpc_.register_method("logs", [this](const json& params, rpc::Call&) {
        if (!params.is_object() || !params.contains("service") || !params["service"].is_string()) {
            throw rpc::CallError(rpc::code::invalid_params, "logs needs {\"service\": NAME}",
                                 "logs", "services: containerd, dockerd, agent");
        }
        const std::string name = params["service"].get<std::string>();

        std::size_t lines = 0;
        if (params.contains("lines")) {
            if (!params["lines"].is_number_unsigned()) {
                throw rpc::CallError(rpc::code::invalid_params,
                                     "\"lines\" must be a non-negative integer", "logs");
            }
            lines = params["lines"].get<std::size_t>();
        }
        if (name == "agent")
            return json{{"service", name}, {"lines", agent_log_->tail(lines)}};
        return json{{"service", name}, {"lines", supervisor_.logs(name, lines)}};
    });
    rpc_.register_async_method("events.watch", [this](std::shared_ptr<rpc::Call> call) {
        events_->watch(std::move(call));
    });
    rpc_.register_method("shutdown", [this](const json& params, rpc::Call&) {
        const bool power_off =
            opts_.power_off && !(params.is_object() && params.value("power_off", true) == false);
        if (shutting_down_)
            return json{{"shutting_down", true}, {"already", true}};
        // Answer first: the sequence starts once the reply has had time to leave (stopping
        // the services may take no time at all, and power-off closes the channel).
        shutdown_timer_.expires_after(200ms);
        shutdown_timer_.async_wait([this, power_off, alive = alive_](boost::system::error_code ec) {
            if (*alive && !ec)
                begin_shutdown(power_off);
        });
        return json{{"shutting_down", true}, {"power_off", power_off}};
    });
}

json Agent::info() {
    json j;
    j["agent_version"] = version_;
    try {
        auto k = guest::read_kernel();
        j["kernel"] = {{"release", k.release}, {"version", k.version}, {"machine", k.machine}};
    } catch (const std::exception& e) {
        j["kernel"] = {{"error", e.what()}};
    }
    j["uptime_s"] = uptime_or_zero();
    try {
        auto m = guest::read_memory();
        j["memory"] = {{"total_kib", m.total_kib},
                       {"available_kib", m.available_kib},
                       {"free_kib", m.free_kib}};
    } catch (const std::exception& e) {
        j["memory"] = {{"error", e.what()}};
    }
    // Boot timings (guest uptime, seconds).
    auto times = guest::read_boot_times(opts_.run_dir + "/boot-times");
    json steps = json::array();
    std::optional<double> init, agent, dockerd;
    for (const auto& [name, t] : times) {
        steps.push_back({{"step", name}, {"uptime_s", t}});
        if (name == "init-start" && !init)
            init = t;
        if (name == "agent-start" && !agent)
            agent = t;
        if (name == "dockerd-ready" && !dockerd)
            dockerd = t;
    }
    json boot = {{"steps", steps}};
    boot["kernel_to_init_s"] = init ? json(*init) : json(nullptr);
    boot["init_to_agent_s"] = init && agent ? json(*agent - *init) : json(nullptr);
    boot["agent_to_dockerd_s"] = agent && dockerd ? json(*dockerd - *agent) : json(nullptr);
    j["boot"] = boot;
    j["data_disk"] = {{"state", disk_.state},
                      {"ok", disk_.ok()},
                      {"device", disk_.device},
                      {"formatted_this_boot", disk_.formatted},
                      {"message", disk_.message}};
    // What the init's e2fsck found on this boot (an unclean end of the last run shows here).
    for (const auto& [k, v] : guest::read_key_values(opts_.run_dir + "/data-disk")) {
        if (k == "check")
            j["data_disk"]["check"] = v;
        else if (k == "unclean")
            j["data_disk"]["previous_run_unclean"] = v == "1";
    }
    j["clock"] = clock_.info();
    j["boot_count"] = boot_count_ ? json(*boot_count_) : json(nullptr);
    if (!state_error_.empty())
        j["state_error"] = state_error_;
    json net = json::object();
    for (const auto& [k, v] : guest::read_key_values(opts_.run_dir + "/network")) net[k] = v;
    json fw = json::object();
    for (const auto& [k, v] : guest::read_key_values(opts_.run_dir + "/firewall")) fw[k] = v;
    net["firewall"] = fw;
    j["network"] = net;
    j["engine"] = {{"state", engine_state_},
                   {"ready", dockerd_ready_},
                   {"message", engine_message_},
                   {"last_probe", last_probe_},
                   {"docker_socket", opts_.docker_socket}};
    if (guard_)
        j["engine"]["mount_guard"] = guard_->status();
    if (!engine_start_.path.empty()) {
        j["engine"]["start"] = {
            {"path", engine_start_.path},
            {"reason", engine_start_.reason},
            {"summary", engine_start_.summary},
            {"ready_after_agent_start_s",
             engine_ready_after_s_ ? json(*engine_ready_after_s_) : json(nullptr)}};
    }
    json services = json::array();
    for (const auto& s : supervisor_.status()) {
        services.push_back({{"name", s.name},
                            {"state", guest::to_string(s.state)},
                            {"pid", s.pid},
                            {"starts", s.starts},
                            {"restarts", s.restarts},
                            {"last_exit", s.last_exit},
                            {"last_error", s.last_error},
                            {"waiting_for", s.waiting_for},
                            {"adopted", s.adopted}});
    }
    j["services"] = services;
    json px = {
        {"enabled", opts_.proxy}, {"running", proxy_ != nullptr}, {"socket", opts_.docker_socket}};
    if (!proxy_error_.empty())
        px["error"] = proxy_error_;
    if (proxy_) {
        const auto st = proxy_->stats();
        px["isolation"] = proxy_->policy().config().isolation;
        px["connections"] = st.connections;
        px["requests"] = st.requests;
        px["denied"] = st.denied;
    }
    j["proxy"] = px;
    j["published_ports"] = ports_->status();
    if (shares_)
        j["shares"] = shares_->status();
    j["admin"] = {
        {"state", admin_.state},
        {"source", admin_.source},
        {"message", admin_.message},
        {"socket_mount_images", admin_.policy.socket_mount_images.size()},
        {"command_list",
         {{"type", admin_.policy.command_list_type}, {"commands", admin_.policy.commands}}},
        {"lock_vm_shell", admin_.policy.lock_vm_shell}};
    j["engine_settings"] = {{"state", engine_settings_.state},
                            {"message", engine_settings_.message},
                            {"registry_mirrors", engine_settings_.settings.registry_mirrors},
                            {"insecure_registries", engine_settings_.settings.insecure_registries},
                            {"dns", engine_settings_.settings.dns}};
    j["shutting_down"] = shutting_down_;
    return j;
}

// Runs a command in the VM for debugging (vmctl exec): argv, not a shell line, so
// nothing is re-parsed. Output is capped to stay within one RPC line.
void Agent::exec(std::shared_ptr<rpc::Call> call) {
    if (const std::string refusal = shell_refusal(admin_); !refusal.empty()) {
        call->fail(rpc::RemoteError{"locked", refusal,
                                    "ask your administrator to unlock it (lockVmShell)"});
        return;
    }
    const json& params = call->params();
    std::vector<std::string> argv;
    if (params.is_object() && params.contains("argv") && params["argv"].is_array()) {
        for (const auto& a : params["argv"]) {
            if (!a.is_string()) {
                argv.clear();
                break;
            }
            argv.push_back(a.get<std::string>());
        }
    }
    if (argv.empty()) {
        call->fail(rpc::RemoteError{rpc::code::invalid_params,
                                    "exec needs {\"argv\": [\"program\", ...]}", ""});
        return;
    }
    int timeout_s = 60;
    if (params.contains("timeout_s") && params["timeout_s"].is_number_integer())
        timeout_s = std::clamp(params["timeout_s"].get<int>(), 1, 3600);
    std::thread([this, call, argv, timeout_s, alive = alive_] {
        json result;
        std::exception_ptr failure;
        try {
            auto r = cordon::run(argv, std::chrono::seconds(timeout_s));
            constexpr std::size_t kCap = 256 * 1024;
            auto cap = [](std::string s) {
                if (s.size() > kCap)
                    s.resize(kCap);
                return s;
            };
            result = {{"exit_code", r.exit_code},
                      {"signal", r.signal},
                      {"timed_out", r.timed_out},
                      {"stdout", cap(std::move(r.out))},
                      {"stderr", cap(std::move(r.err))}};
        } catch (...) {
            failure = std::current_exception();
        }
        asio::post(io_, [call, result, failure, alive] {
            if (!*alive)
                return;
            if (failure)
                call->fail(failure);
            else
                call->reply(result);
        });
    }).detach();
}

void Agent::begin_shutdown(bool power_off) {
    if (shutting_down_)
        return;
    shutting_down_ = true;
    events_->poke();
    probe_timer_.cancel();
    port_timer_.cancel();
    disk_timer_.cancel();
    auto opts = guest::default_shutdown_options();
    if (!power_off) {
        opts.unmount.clear();
        opts.power_off = [this, alive = alive_] {
            if (!*alive)
                return;
            if (session_)
                session_->close("the guest agent is stopping");
            signals_.cancel();
            io_.stop();
        };
    } else {
        auto real = opts.power_off;
        opts.power_off = [this, real, alive = alive_] {
            if (!*alive) {
                real();
                return;
            }
            if (session_)
                session_->close("the VM is powering off");
            // Give the transport a moment to flush the last replies and the GOAWAY.
            port_timer_.expires_after(300ms);
            port_timer_.async_wait([real](boost::system::error_code) { real(); });
        };
    }
    ports_->stop();
    if (proxy_)
        proxy_->stop();
    if (audit_)
        audit_->flush();
    guest::shutdown_system(supervisor_, std::move(opts));
}

}  // namespace cordon::agent

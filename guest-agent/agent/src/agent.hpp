#pragma once
// The guest agent: one io_context, one thread. Owns the channel session on the
// virtio-serial port, the RPC server, the supervisor of containerd and dockerd, and the
// readiness probe of dockerd.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>

#include "admin_settings.hpp"
#include "agent_log.hpp"
#include "clock_sync.hpp"
#include "cordon/channel/session.hpp"
#include "cordon/guest/supervisor.hpp"
#include "cordon/guest/system_info.hpp"
#include "cordon/ports/port_service.hpp"
#include "cordon/proxy/audit.hpp"
#include "cordon/proxy/proxy.hpp"
#include "cordon/rpc/rpc.hpp"
#include "cordon/shares/shares.hpp"
#include "engine_guard.hpp"
#include "engine_service.hpp"
#include "engine_settings_receiver.hpp"
#include "events.hpp"

namespace cordon::agent {

struct AgentOptions {
    std::string port = "/dev/virtio-ports/org.cordon.channel.0";
    std::string docker_socket = "/run/cordon/docker.sock";  // what "docker" streams reach
    bool proxy = true;  // serve the policy proxy on docker_socket (upstream: dockerd_socket)
    std::string dockerd_socket = "/run/cordon/dockerd.sock";  // dockerd's own socket (probe)
    std::string run_dir = "/run/cordon";
    std::string state_dir = "/var/lib/cordon";
    bool engine = true;     // supervise containerd + dockerd
    bool power_off = true;  // shutdown ends with reboot(RB_POWER_OFF)
    std::string containerd = "containerd";
    std::string dockerd = "dockerd";
    // How long to wait for the init's data disk report (mkfs of a big disk takes a while).
    std::chrono::milliseconds data_disk_timeout{300'000};
    AdminPaths admin;  // where the administrator's settings come from and are kept
    // Where the user's engine settings come from and go (engine_settings_receiver.hpp);
    // daemon_base_json is set from run_dir by the agent.
    EngineSettingsPaths engine_settings;
};

class Agent {
  public:
    Agent(boost::asio::io_context& io, AgentOptions options);
    ~Agent();
    void start();

  private:
    void record_boot_time(const std::string& name);
    void wait_for_data_disk();
    void setup_engine();
    void load_admin_settings();
    void start_proxy();
    void confine_dockerd(guest::ServiceSpec& dockerd);
    void probe_dockerd();
    void open_port();
    void on_stream(std::shared_ptr<channel::Stream> stream, const std::string& service);
    void register_methods();
    void exec(std::shared_ptr<rpc::Call> call);
    rpc::json info();
    void begin_shutdown(bool power_off);

    boost::asio::io_context& io_;
    AgentOptions opts_;
    std::string version_;
    guest::Supervisor supervisor_;
    rpc::Server rpc_;
    std::shared_ptr<channel::Session> session_;
    boost::asio::steady_timer port_timer_;
    boost::asio::steady_timer probe_timer_;
    boost::asio::steady_timer disk_timer_;
    boost::asio::steady_timer shutdown_timer_;
    std::chrono::steady_clock::time_point disk_wait_started_{};
    boost::asio::signal_set signals_;
    guest::DataDiskState disk_;
    std::optional<std::uint64_t> boot_count_;
    std::string state_error_;
    std::string engine_state_ = "not_started";
    std::string engine_message_;
    std::string last_probe_;
    bool dockerd_ready_ = false;
    bool shutting_down_ = false;
    bool port_missing_logged_ = false;
    bool restart_notice_sent_ = false;
    AdminState admin_;  // the administrator's policy settings (admin_settings.hpp)
    EngineSettingsState engine_settings_;  // registries, DNS, CAs (engine_settings_receiver.hpp)
    std::unique_ptr<policy::AuditLog> audit_;
    std::unique_ptr<policy::PolicyProxy> proxy_;
    std::unique_ptr<EngineService> engine_;
    std::unique_ptr<EngineGuard> guard_;  // dockerd's mount guard (engine_guard.hpp)
    std::unique_ptr<ports::PortService> ports_;
    std::unique_ptr<shares::ShareMounter> shares_;  // shared host folders (cordon.share=...)
    std::string proxy_error_;
    ClockSync clock_;
    std::unique_ptr<AgentLog> agent_log_;    // the agent's own log ring (logs "agent")
    std::unique_ptr<EventHub> events_;       // events.watch
    EngineService::StartPath engine_start_;  // adopted from the previous agent, or (re)started
    std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
    std::optional<double> engine_ready_after_s_;  // this agent's start -> dockerd answers
    std::shared_ptr<bool> alive_;
};

}  // namespace cordon::agent

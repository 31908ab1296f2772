#pragma once
// A process supervisor on one Asio io_context: starts services in the order they were
// added, restarts those that exit with exponential backoff, keeps their stdout/stderr in
// a per-service LogRing, and stops them in reverse order (SIGTERM, then SIGKILL after a
// timeout). Every method must be called on the io_context's thread.
//
// With a state dir (set_state_dir), the supervisor's work survives its own death: each
// service's output goes to a named FIFO in that folder (the child holds it read-write,
// so it never gets SIGPIPE while no supervisor reads; the buffer is 1 MiB), and a record
// (service_record.hpp) says which process runs, what it was started with and how often
// the service started. A later supervisor (the restarted agent) can then adopt() the
// processes instead of killing them, and its restart counts go on from the record.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cordon/unique_fd.hpp"

namespace cordon::guest {

struct ServiceSpec {
    std::string name;
    std::vector<std::string> argv;
    std::vector<std::string> env;       // extra "NAME=value" entries
    std::vector<std::string> wait_for;  // paths that must exist before each start
    std::chrono::milliseconds wait_poll{50};
    std::chrono::milliseconds backoff_initial{250};
    std::chrono::milliseconds backoff_max{30'000};
    // A run at least this long resets the backoff to backoff_initial.
    std::chrono::milliseconds stable_after{10'000};
    std::chrono::milliseconds stop_timeout{10'000};
    std::size_t log_lines = 1000;
    // Files the service reads its configuration from: their contents at each start are
    // recorded (with a state dir), and adopt() refuses a process whose files changed since.
    std::vector<std::string> config_files;
    // The cgroup v2 folder the service starts in (joined before exec: what it forks stays
    // in it) and its working folder; empty: the agent's. adopt() refuses a process that
    // is not in this cgroup.
    std::string cgroup;
    std::string cwd;
    // Called before each spawn and each adoption: a non-empty answer (or an exception)
    // refuses it with that reason (last_error); a refused spawn is retried with backoff.
    std::function<std::string()> before_start;
};

enum class ServiceState { idle, waiting, running, backoff, stopping, stopped };
const char* to_string(ServiceState state) noexcept;

struct ServiceStatus {
    std::string name;
    ServiceState state = ServiceState::idle;
    int pid = 0;                                 // while running/stopping
    std::uint64_t starts = 0;                    // successful spawns
    std::uint64_t restarts = 0;                  // starts after the first
    std::string last_exit;                       // "exited with status 1", empty if it never exited
    std::string last_error;                      // why the last spawn failed, if it did
    std::chrono::milliseconds next_start_in{0};  // in backoff: delay before the next start
    std::string waiting_for;                     // in waiting: the first missing path
    bool adopted = false;  // running, but started by an earlier supervisor (see adopt())
};

// The answer of Supervisor::check_adoptable / adopt.
struct Adoption {
    bool ok = false;
    bool recorded = false;  // an earlier supervisor left a record of the service
    int pid = 0;            // the recorded pid
    std::string reason;     // why not, when !ok
};

class Supervisor {
  public:
    using StartHook = std::function<void(const std::string& service, int pid)>;

    explicit Supervisor(boost::asio::io_context& io, std::string log_component = "supervisor");
    ~Supervisor();  // kills (SIGKILL) and reaps whatever still runs
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Throws cordon::Error on a duplicate or empty name or an empty command line.
    void add(ServiceSpec spec);
    bool has(const std::string& name) const;
    // Starts one service (no-op if it is already starting/running). Throws if unknown.
    void start(const std::string& name);
    void start_all();
    // Stops every service in reverse order of add(); `done` runs when all have exited.
    // Services do not restart while stopping.
    void stop_all(std::function<void()> done);
    // Stops one service (same SIGTERM/SIGKILL sequence); `done` runs when it has exited.
    void stop(const std::string& name, std::function<void()> done);

    // Called after every successful spawn or adoption (e.g. to record a boot timing).
    void set_start_hook(StartHook hook);

    // Where records and output FIFOs live (created if missing). Call before add(): add()
    // continues the start count of a service an earlier supervisor recorded.
    void set_state_dir(std::string dir);
    const std::string& state_dir() const noexcept { return state_dir_; }

    // Whether the process an earlier supervisor recorded for `name` can be adopted: it
    // still runs and is the same process (pid, start time, command name, executable),
    // was started with this spec's command line and configuration file contents, and its
    // output FIFO exists. Throws if `name` is unknown.
    Adoption check_adoptable(const std::string& name) const;
    // Adopts that process: it is supervised as if this supervisor had started it (its
    // exit is seen through a pidfd and restarts the service; stop() signals it through
    // the pidfd). Its exit status is unknown (init reaps it). On failure nothing changes.
    Adoption adopt(const std::string& name);

    std::vector<ServiceStatus> status() const;
    ServiceStatus status(const std::string& name) const;  // throws if unknown
    // The last `max_lines` lines of the service's output (0 = all kept). Throws if unknown.
    std::vector<std::string> logs(const std::string& name, std::size_t max_lines = 0) const;
    std::vector<std::string> names() const;

  private:
    struct Service;
    Service& find(const std::string& name) const;
    void launch(Service& s);
    void on_output(Service& s);
    UniqueFd open_output(Service& s);
    void write_record(Service& s, int pid, std::map<std::string, std::string> configs);
    bool send_signal(Service& s, int sig, bool group);
    void watch_exit(Service& s);
    void on_exit(Service& s);
    void schedule_restart(Service& s);
    void stop_next(std::size_t index, std::function<void()> done);

    boost::asio::io_context& io_;
    std::string component_;
    std::vector<std::unique_ptr<Service>> services_;
    StartHook start_hook_;
    std::string state_dir_;
    bool stopping_all_ = false;
    std::shared_ptr<bool> alive_;
};

}  // namespace cordon::guest

#include "cordon/guest/supervisor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <fstream>

#include "cordon/atomic_file.hpp"
#include "cordon/error.hpp"
#include "cordon/guest/child_process.hpp"
#include "cordon/guest/log_ring.hpp"
#include "cordon/guest/service_record.hpp"
#include "cordon/log.hpp"
#include "cordon/quiet_asio.hpp"  // GCC 12 false positive in Asio (see the header)

namespace cordon::guest {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

// The output FIFO's buffer: a service blocks on a write only when this much output is
// unread (no agent for a while); fs.pipe-max-size allows it for root by default.
constexpr int kFifoBytes = 1 << 20;

std::string fifo_path(const std::string& dir, const std::string& name) {
    return dir + "/" + name + ".out";
}

bool is_fifo(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

// Contents of the files a service reads its configuration from ("" for a missing file:
// a file that appears or disappears is a change too).
std::map<std::string, std::string> read_configs(const std::vector<std::string>& files) {
    std::map<std::string, std::string> out;
    for (const auto& f : files) {
        try {
            out[f] = read_file(f);
        } catch (const std::exception&) {
            out[f] = "";
        }
    }
    return out;
}

// The service's record, or nullopt with the reason in `why`: unreadable, or `missing`.
std::optional<ServiceRecord> record_or_reason(const std::string& dir, const std::string& name,
                                              const char* missing, std::string& why) {
    try {
        auto rec = read_service_record(dir, name);
        if (!rec)
            why = missing;
        return rec;
    } catch (const std::exception& e) {
        why = e.what();
        return std::nullopt;
    }
}

std::string run_before_start(const ServiceSpec& spec) {
    if (!spec.before_start)
        return {};
    try {
        return spec.before_start();
    } catch (const std::exception& e) {
        return e.what();
    }
}

// The cgroup v2 path of a process ("/cordon-engine/dockerd"), "" if unreadable.
std::string cgroup_of(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("0::", 0) == 0)
            return line.substr(3);
    }
    return {};
}

// Whether the cgroup path `in` (as /proc/PID/cgroup says) is the folder `folder`
// (/sys/fs/cgroup/...).
bool cgroup_is(const std::string& in, const std::string& folder) {
    return !in.empty() && folder.size() >= in.size() &&
           folder.compare(folder.size() - in.size(), in.size(), in) == 0 &&
           folder.compare(0, folder.size() - in.size(), "/sys/fs/cgroup") == 0;
}

}  // namespace

const char* to_string(ServiceState state) noexcept {
    switch (state) {
        case ServiceState::idle:
            return "idle";
        case ServiceState::waiting:
            return "waiting";
        case ServiceState::running:
            return "running";
        case ServiceState::backoff:
            return "backoff";
        case ServiceState::stopping:
            return "stopping";
        case ServiceState::stopped:
            return "stopped";
    }
    return "?";
}

struct Supervisor::Service {
    Service(asio::io_context& io, ServiceSpec s)
        : spec(std::move(s)), ring(spec.log_lines), timer(io), kill_timer(io) {}
    ServiceSpec spec;
    LogRing ring;
    LineSplitter splitter;
    ServiceState state = ServiceState::idle;
    ChildProcess child;
    std::unique_ptr<asio::posix::stream_descriptor> pidfd;
    std::unique_ptr<asio::posix::stream_descriptor> output;
    std::array<char, 4096> buf{};
    bool reading = false;           // a read on `output` is pending
    std::uint64_t read_gen = 0;     // tells a stale read's completion from the current one
    std::uint64_t read_starts = 0;  // `starts` when the pending read was armed
    bool adopted = false;           // the process is not our child: pidfd only
    int adopted_pid = 0;
    asio::steady_timer timer;       // backoff and wait_for polling
    asio::steady_timer kill_timer;  // SIGKILL after stop_timeout
    Clock::time_point started{};
    Clock::time_point next_start{};
    std::uint64_t starts = 0;
    std::uint64_t consecutive_failures = 0;
    std::string last_exit;
    std::string last_error;
    std::string waiting_for;
    std::vector<std::function<void()>> on_stopped;
};

Supervisor::Supervisor(asio::io_context& io, std::string log_component)
    : io_(io), component_(std::move(log_component)), alive_(std::make_shared<bool>(true)) {}

Supervisor::~Supervisor() {
    *alive_ = false;
    for (auto& s : services_) {
        s->timer.cancel();
        s->kill_timer.cancel();
        if (s->adopted && s->pidfd)
            send_signal(*s, SIGKILL, false);  // init reaps it
        s->pidfd.reset();
        s->output.reset();
        // ChildProcess' destructor kills and reaps.
    }
}

void Supervisor::add(ServiceSpec spec) {
    if (spec.name.empty())
        throw Error("cannot add a service", "(no name)", "give every service a name");
    if (spec.argv.empty())
        throw Error("cannot add a service without a command line", spec.name);
    if (has(spec.name))
        throw Error("a service with this name already exists", spec.name);
    auto s = std::make_unique<Service>(io_, std::move(spec));
    if (!state_dir_.empty()) {
        try {
            if (auto rec = read_service_record(state_dir_, s->spec.name))
                s->starts = rec->starts;  // restart counts go on across agents of one boot
        } catch (const std::exception& e) {
            log::warn(component_, "{}: {}", s->spec.name, e.what());
        }
    }
    services_.push_back(std::move(s));
}

void Supervisor::set_state_dir(std::string dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        log::warn(component_, "cannot create {}: {}", dir, ec.message());
    ::chmod(dir.c_str(), 0700);
    state_dir_ = std::move(dir);
}

bool Supervisor::has(const std::string& name) const {
    return std::any_of(services_.begin(), services_.end(),
                       [&](const auto& s) { return s->spec.name == name; });
}

Supervisor::Service& Supervisor::find(const std::string& name) const {
    for (auto& s : services_) {
        if (s->spec.name == name)
            return *s;
    }
    std::string known;
    for (auto& s : services_) known += (known.empty() ? "" : ", ") + s->spec.name;
    throw Error("no such service", name, "known services: " + (known.empty() ? "(none)" : known));
}

std::vector<std::string> Supervisor::names() const {
    std::vector<std::string> out;
    for (auto& s : services_) out.push_back(s->spec.name);
    return out;
}

void Supervisor::set_start_hook(StartHook hook) {
    start_hook_ = std::move(hook);
}

void Supervisor::start(const std::string& name) {
    Service& s = find(name);
    if (stopping_all_)
        return;
    if (s.state == ServiceState::running || s.state == ServiceState::waiting ||
        s.state == ServiceState::stopping || s.state == ServiceState::backoff) {
        return;
    }
    s.consecutive_failures = 0;
    launch(s);
}

void Supervisor::start_all() {
    for (auto& s : services_) start(s->spec.name);
}

void Supervisor::launch(Service& s) {
    if (stopping_all_ || s.state == ServiceState::stopping)
        return;
    // Wait for the paths the service needs (a socket, a state file...).
    for (const auto& path : s.spec.wait_for) {
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) {
            if (s.state != ServiceState::waiting) {
                log::debug(component_, "{}: waiting for {}", s.spec.name, path);
            }
            s.state = ServiceState::waiting;
            s.waiting_for = path;
            s.timer.expires_after(s.spec.wait_poll);
            s.timer.async_wait([this, &s, alive = alive_](boost::system::error_code ec2) {
                if (!*alive || ec2)
                    return;
                if (s.state == ServiceState::waiting)
                    launch(s);
            });
            return;
        }
    }
    s.waiting_for.clear();
    if (std::string refusal = run_before_start(s.spec); !refusal.empty()) {
        s.last_error = refusal;
        log::warn(component_, "{}: not started: {}", s.spec.name, refusal);
        s.ring.push("[supervisor] not started: " + refusal);
        schedule_restart(s);
        return;
    }

    UniqueFd write_end;
    try {
        write_end = open_output(s);
    } catch (const std::exception& e) {
        s.last_error = e.what();
        log::warn(component_, "{}: {}", s.spec.name, s.last_error);
        schedule_restart(s);
        return;
    }
    SpawnOptions opts;
    opts.argv = s.spec.argv;
    opts.env = s.spec.env;
    opts.output_fd = write_end.get();
    opts.cgroup = s.spec.cgroup;
    opts.cwd = s.spec.cwd;
    auto configs = read_configs(s.spec.config_files);  // what the service will read
    try {
        s.child = ChildProcess::spawn(opts);
        s.pidfd =
            std::make_unique<asio::posix::stream_descriptor>(io_, s.child.open_pidfd().release());
    } catch (const std::exception& e) {
        s.child = ChildProcess();
        s.last_error = e.what();
        log::warn(component_, "{}: {}", s.spec.name, s.last_error);
        s.ring.push(std::string("[supervisor] ") + e.what());
        schedule_restart(s);
        return;
    }
    write_end.reset();
    s.adopted = false;
    s.adopted_pid = 0;
    s.last_error.clear();
    s.state = ServiceState::running;
    s.started = Clock::now();
    ++s.starts;
    log::info(component_, "{}: started (pid {})", s.spec.name, s.child.pid());
    if (!state_dir_.empty())
        write_record(s, s.child.pid(), std::move(configs));
    if (!s.reading)
        on_output(s);
    watch_exit(s);
    if (start_hook_)
        start_hook_(s.spec.name, s.child.pid());
}

void Supervisor::watch_exit(Service& s) {
    s.pidfd->async_wait(asio::posix::stream_descriptor::wait_read,
                        [this, &s, alive = alive_](boost::system::error_code ec) {
                            if (!*alive || ec)
                                return;
                            on_exit(s);
                        });
}

// The fd the child gets as stdout/stderr; makes sure `s.output` reads the other end.
// Without a state dir: a new pipe per run. With one: the service's FIFO, read by one
// O_RDONLY|O_NONBLOCK fd for the supervisor's life and written by an O_RDWR fd per run.
UniqueFd Supervisor::open_output(Service& s) {
    if (state_dir_.empty()) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0)
            throw_errno("cannot create the output pipe", s.spec.name);
        s.output = std::make_unique<asio::posix::stream_descriptor>(io_, fds[0]);
        s.reading = false;  // the old pipe's pending read (if any) was cancelled
        return UniqueFd(fds[1]);
    }
    const std::string path = fifo_path(state_dir_, s.spec.name);
    if (!s.output) {
        if (!is_fifo(path)) {
            ::unlink(path.c_str());
            if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST)
                throw_errno("cannot create the output FIFO", path);
        }
        UniqueFd reader(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
        if (!reader)
            throw_errno("cannot open the output FIFO", path);
        if (::fcntl(reader.get(), F_SETPIPE_SZ, kFifoBytes) < 0) {
            log::warn(component_, "{}: cannot enlarge {} to {} bytes: {}", s.spec.name, path,
                      kFifoBytes, errno_string(errno));
        }
        s.output = std::make_unique<asio::posix::stream_descriptor>(io_, reader.release());
        s.reading = false;
    }
    UniqueFd writer(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!writer) {
        const int e = errno;
        s.output.reset();  // e.g. the FIFO was removed: make a new one on the next try
        s.reading = false;
        throw Error("cannot open the output FIFO for writing: " + errno_string(e), path);
    }
    return writer;
}

void Supervisor::write_record(Service& s, int pid, std::map<std::string, std::string> configs) {
    ServiceRecord rec;
    rec.pid = pid;
    rec.starts = s.starts;
    rec.command = describe_command(s.spec.argv, s.spec.env);
    rec.configs = std::move(configs);
    if (auto id = read_proc_identity(pid)) {
        rec.start_time = id->start_time;
        rec.comm = id->comm;
        rec.exe = id->exe;
    }
    try {
        write_service_record(state_dir_, s.spec.name, rec);
    } catch (const std::exception& e) {
        log::warn(component_, "{}: cannot record the start ({}): a restarted agent will restart it",
                  s.spec.name, e.what());
    }
}

Adoption Supervisor::check_adoptable(const std::string& name) const {
    const Service& s = find(name);
    Adoption a;
    if (state_dir_.empty()) {
        a.reason = "the supervisor keeps no records (no state folder)";
        return a;
    }
    if (s.state != ServiceState::idle && s.state != ServiceState::stopped) {
        a.reason = std::string("it is already supervised (") + to_string(s.state) + ")";
        return a;
    }
    const auto rec = record_or_reason(state_dir_, name, "no earlier start is recorded", a.reason);
    if (!rec)
        return a;
    a.recorded = true;
    a.pid = rec->pid;
    if (std::string why = identity_mismatch(*rec, read_proc_identity(rec->pid)); !why.empty()) {
        a.reason = why;
        return a;
    }
    if (rec->command != describe_command(s.spec.argv, s.spec.env)) {
        a.reason = "it was started with another command line: " + rec->command;
        return a;
    }
    const auto now = read_configs(s.spec.config_files);
    for (const auto& [path, contents] : now) {
        auto it = rec->configs.find(path);
        if (it == rec->configs.end()) {
            a.reason = "the contents of " + path + " it started with are not recorded";
            return a;
        }
        if (it->second != contents) {
            a.reason = path + " changed since it started";
            return a;
        }
    }
    if (!s.spec.cgroup.empty()) {
        if (std::string in = cgroup_of(rec->pid); !cgroup_is(in, s.spec.cgroup)) {
            a.reason = "it runs in the cgroup '" + in + "', not in " + s.spec.cgroup;
            return a;
        }
    }
    if (!is_fifo(fifo_path(state_dir_, name))) {
        a.reason = "its output FIFO " + fifo_path(state_dir_, name) + " is missing";
        return a;
    }
    a.ok = true;
    return a;
}

Adoption Supervisor::adopt(const std::string& name) {
    Service& s = find(name);
    Adoption a = check_adoptable(name);
    if (!a.ok)
        return a;
    if (std::string refusal = run_before_start(s.spec); !refusal.empty()) {
        a.ok = false;
        a.reason = refusal;
        return a;
    }
    a.ok = false;
    const long fd = ::syscall(SYS_pidfd_open, a.pid, 0);
    if (fd < 0) {
        a.reason =
            "cannot open a pidfd for pid " + std::to_string(a.pid) + ": " + errno_string(errno);
        return a;
    }
    UniqueFd pidfd(static_cast<int>(fd));
    ::fcntl(pidfd.get(), F_SETFD, FD_CLOEXEC);
    // The pidfd names whatever had the pid when it was opened: check again that this is
    // still the recorded process (it may have died and its pid been reused meanwhile).
    const auto rec = record_or_reason(state_dir_, name, "its record disappeared", a.reason);
    if (!rec)
        return a;
    if (std::string why = identity_mismatch(*rec, read_proc_identity(a.pid)); !why.empty()) {
        a.reason = why;
        return a;
    }
    const std::string path = fifo_path(state_dir_, name);
    UniqueFd reader(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!reader) {
        // Without a reader its output would fill the FIFO and then block it.
        a.reason = "cannot open its output FIFO " + path + ": " + errno_string(errno);
        return a;
    }
    if (::fcntl(reader.get(), F_SETPIPE_SZ, kFifoBytes) < 0)
        log::warn(component_, "{}: cannot enlarge {}: {}", name, path, errno_string(errno));

    s.timer.cancel();
    s.child = ChildProcess();
    s.output = std::make_unique<asio::posix::stream_descriptor>(io_, reader.release());
    s.reading = false;
    s.pidfd = std::make_unique<asio::posix::stream_descriptor>(io_, pidfd.release());
    s.adopted = true;
    s.adopted_pid = a.pid;
    s.starts = rec->starts;
    s.consecutive_failures = 0;
    s.last_error.clear();
    s.waiting_for.clear();
    s.state = ServiceState::running;
    s.started = Clock::now();
    log::info(component_, "{}: adopted pid {} (started by an earlier agent; {} start(s) this boot)",
              name, a.pid, s.starts);
    s.ring.push("[supervisor] adopted pid " + std::to_string(a.pid) + " from an earlier agent");
    on_output(s);
    watch_exit(s);
    if (start_hook_)
        start_hook_(name, a.pid);
    a.ok = true;
    return a;
}

bool Supervisor::send_signal(Service& s, int sig, bool group) {
    if (!s.adopted)
        return s.child.signal(sig, group);
    if (!s.pidfd)
        return false;
    const int fd = s.pidfd->native_handle();
    if (group) {
        // Its process group (it leads one: the spawn called setsid), while it still runs:
        // once it has exited, the pid and group id may belong to someone else.
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 0) == 0 && ::getpgid(s.adopted_pid) == s.adopted_pid)
            ::kill(-s.adopted_pid, sig);
    }
    return ::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0) == 0;
}

void Supervisor::on_output(Service& s) {
    if (!s.output)
        return;
    s.reading = true;
    const std::uint64_t gen = ++s.read_gen;
    s.read_starts = s.starts;
    s.output->async_read_some(
        asio::buffer(s.buf),
        [this, &s, gen, alive = alive_](boost::system::error_code ec, std::size_t n) {
            if (!*alive || gen != s.read_gen || !s.output)
                return;  // the supervisor is gone, or this read was replaced
            if (ec == asio::error::operation_aborted) {
                s.reading = false;
                return;
            }
            std::vector<std::string> lines;
            if (n > 0)
                s.splitter.feed(std::string_view(s.buf.data(), n), lines);
            if (ec) {
                std::string rest;
                if (s.splitter.flush(rest))
                    lines.push_back(std::move(rest));
            }
            for (auto& l : lines) s.ring.push(std::move(l));
            if (!ec) {
                on_output(s);
                return;
            }
            // EOF: every writer (the child and its children) is gone. A pipe is done; a
            // FIFO is read again once the next run holds it (a run that started since this
            // read was armed already does: read on).
            s.reading = false;
            if (state_dir_.empty())
                s.output.reset();
            else if (s.starts != s.read_starts)
                on_output(s);
        });
}

void Supervisor::on_exit(Service& s) {
    if (s.adopted) {
        // Not our child: init (or a subreaper) reaps it, so its status is not ours to know.
        s.last_exit = "exited (status unknown: adopted process)";
        s.adopted = false;
        s.adopted_pid = 0;
    } else {
        s.child.try_reap();
        if (!s.child.reaped()) {
            watch_exit(s);  // a spurious wake-up: wait again
            return;
        }
        s.last_exit = describe_wait_status(s.child.wait_status());
    }
    s.pidfd.reset();
    s.kill_timer.cancel();
    const auto ran = Clock::now() - s.started;
    s.ring.push("[supervisor] " + s.last_exit);
    if (s.state == ServiceState::stopping || stopping_all_) {
        log::info(component_, "{}: stopped ({})", s.spec.name, s.last_exit);
        s.state = ServiceState::stopped;
        auto callbacks = std::move(s.on_stopped);
        s.on_stopped.clear();
        for (auto& cb : callbacks) cb();
        return;
    }
    log::warn(component_, "{}: {} after {} ms", s.spec.name, s.last_exit,
              std::chrono::duration_cast<milliseconds>(ran).count());
    if (ran >= s.spec.stable_after)
        s.consecutive_failures = 0;
    schedule_restart(s);
}

void Supervisor::schedule_restart(Service& s) {
    if (stopping_all_ || s.state == ServiceState::stopping) {
        s.state = ServiceState::stopped;
        return;
    }
    auto delay = s.spec.backoff_initial;
    for (std::uint64_t i = 0; i < s.consecutive_failures && delay < s.spec.backoff_max; ++i)
        delay *= 2;
    delay = std::min(delay, s.spec.backoff_max);
    ++s.consecutive_failures;
    s.state = ServiceState::backoff;
    s.next_start = Clock::now() + delay;
    s.timer.expires_after(delay);
    s.timer.async_wait([this, &s, alive = alive_](boost::system::error_code ec) {
        if (!*alive || ec)
            return;
        if (s.state == ServiceState::backoff)
            launch(s);
    });
}

void Supervisor::stop(const std::string& name, std::function<void()> done) {
    Service& s = find(name);
    s.timer.cancel();
    if (s.state != ServiceState::running && s.state != ServiceState::stopping) {
        s.state = ServiceState::stopped;
        if (done)
            asio::post(io_, std::move(done));
        return;
    }
    if (done)
        s.on_stopped.push_back(std::move(done));
    if (s.state == ServiceState::stopping)
        return;
    s.state = ServiceState::stopping;
    log::info(component_, "{}: stopping (SIGTERM, SIGKILL after {} ms)", s.spec.name,
              s.spec.stop_timeout.count());
    send_signal(s, SIGTERM, false);
    s.kill_timer.expires_after(s.spec.stop_timeout);
    s.kill_timer.async_wait([this, &s, alive = alive_](boost::system::error_code ec) {
        if (!*alive || ec || s.state != ServiceState::stopping)
            return;
        log::warn(component_, "{}: did not stop within {} ms: SIGKILL", s.spec.name,
                  s.spec.stop_timeout.count());
        s.ring.push("[supervisor] no exit after SIGTERM: SIGKILL");
        send_signal(s, SIGKILL, true);
        send_signal(s, SIGKILL, false);
    });
}

void Supervisor::stop_all(std::function<void()> done) {
    stopping_all_ = true;
    stop_next(services_.size(), std::move(done));
}

void Supervisor::stop_next(std::size_t index, std::function<void()> done) {
    if (index == 0) {
        if (done)
            asio::post(io_, std::move(done));
        return;
    }
    const std::string name = services_[index - 1]->spec.name;
    stop(name, [this, index, done = std::move(done), alive = alive_]() mutable {
        if (!*alive)
            return;
        stop_next(index - 1, std::move(done));
    });
}

std::vector<ServiceStatus> Supervisor::status() const {
    std::vector<ServiceStatus> out;
    for (auto& s : services_) out.push_back(status(s->spec.name));
    return out;
}

ServiceStatus Supervisor::status(const std::string& name) const {
    const Service& s = find(name);
    ServiceStatus st;
    st.name = s.spec.name;
    st.state = s.state;
    if (s.state == ServiceState::running || s.state == ServiceState::stopping)
        st.pid = s.adopted ? s.adopted_pid : s.child.pid();
    st.adopted = s.adopted;
    st.starts = s.starts;
    st.restarts = s.starts > 0 ? s.starts - 1 : 0;
    st.last_exit = s.last_exit;
    st.last_error = s.last_error;
    if (s.state == ServiceState::backoff) {
        st.next_start_in = std::max(
            milliseconds(0), std::chrono::duration_cast<milliseconds>(s.next_start - Clock::now()));
    }
    st.waiting_for = s.waiting_for;
    return st;
}

std::vector<std::string> Supervisor::logs(const std::string& name, std::size_t max_lines) const {
    return find(name).ring.tail(max_lines);
}

}  // namespace cordon::guest

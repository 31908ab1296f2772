#include "cordon/guest/supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>

#include "cordon/error.hpp"
#include "cordon/guest/child_process.hpp"
#include "cordon/guest/log_ring.hpp"
#include "cordon/log.hpp"
#include "cordon/quiet_asio.hpp"  // GCC 12 false positive in Asio (see the header)

namespace cordon::guest {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

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
    services_.push_back(std::make_unique<Service>(io_, std::move(spec)));
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

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        s.last_error = "cannot create the output pipe: " + errno_string(errno);
        schedule_restart(s);
        return;
    }
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]);
    SpawnOptions opts;
    opts.argv = s.spec.argv;
    opts.env = s.spec.env;
    opts.output_fd = write_end.get();
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
    s.last_error.clear();
    s.state = ServiceState::running;
    s.started = Clock::now();
    ++s.starts;
    s.output = std::make_unique<asio::posix::stream_descriptor>(io_, read_end.release());
    log::info(component_, "{}: started (pid {})", s.spec.name, s.child.pid());
    on_output(s);
    s.pidfd->async_wait(asio::posix::stream_descriptor::wait_read,
                        [this, &s, alive = alive_](boost::system::error_code ec) {
                            if (!*alive || ec)
                                return;
                            on_exit(s);
                        });
    if (start_hook_)
        start_hook_(s.spec.name, s.child.pid());
}

void Supervisor::on_output(Service& s) {
    if (!s.output)
        return;
    s.output->async_read_some(
        asio::buffer(s.buf),
        [this, &s, alive = alive_](boost::system::error_code ec, std::size_t n) {
            if (!*alive || !s.output)
                return;
            std::vector<std::string> lines;
            if (n > 0)
                s.splitter.feed(std::string_view(s.buf.data(), n), lines);
            if (ec) {
                std::string rest;
                if (s.splitter.flush(rest))
                    lines.push_back(std::move(rest));
            }
            for (auto& l : lines) s.ring.push(std::move(l));
            if (ec) {
                s.output.reset();  // EOF: every writer (the child and its children) is gone
                return;
            }
            on_output(s);
        });
}

void Supervisor::on_exit(Service& s) {
    s.child.try_reap();
    if (!s.child.reaped()) {
        // A spurious wake-up: wait again.
        s.pidfd->async_wait(asio::posix::stream_descriptor::wait_read,
                            [this, &s, alive = alive_](boost::system::error_code ec) {
                                if (!*alive || ec)
                                    return;
                                on_exit(s);
                            });
        return;
    }
    s.last_exit = describe_wait_status(s.child.wait_status());
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
    s.child.signal(SIGTERM);
    s.kill_timer.expires_after(s.spec.stop_timeout);
    s.kill_timer.async_wait([this, &s, alive = alive_](boost::system::error_code ec) {
        if (!*alive || ec || s.state != ServiceState::stopping)
            return;
        log::warn(component_, "{}: did not stop within {} ms: SIGKILL", s.spec.name,
                  s.spec.stop_timeout.count());
        s.ring.push("[supervisor] no exit after SIGTERM: SIGKILL");
        s.child.signal(SIGKILL, true);
        s.child.signal(SIGKILL);
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
        st.pid = s.child.pid();
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

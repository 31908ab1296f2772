// Supervisor::adopt with real processes: an "earlier agent" (a forked process running its
// own Supervisor) starts a service and is killed with SIGKILL, as init would see a crashed
// guest agent; the service is reparented to this test process (a child subreaper, as init
// is in the VM) and a new Supervisor adopts it, or refuses to when it is not the recorded
// process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <thread>

#include "cordon/error.hpp"
#include "cordon/guest/child_process.hpp"
#include "cordon/guest/service_record.hpp"
#include "cordon/guest/supervisor.hpp"
#include "cordon/quiet_asio.hpp"  // GCC 12 false positive in Asio (see the header)
#include "test_util.hpp"

using namespace std::chrono_literals;
using cordon::guest::ServiceSpec;
using cordon::guest::ServiceState;
using cordon::guest::Supervisor;
using cordon::guest::test::run_until;
using cordon::guest::test::TempDir;

namespace {

ServiceSpec ticker(std::string name = "ticker") {
    ServiceSpec s;
    s.name = std::move(name);
    // One numbered line every 20 ms; `sh` stays the process (no exec), so its identity holds.
    s.argv = {"/bin/sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.02; done"};
    s.backoff_initial = 50ms;
    s.backoff_max = 200ms;
    s.stop_timeout = 2s;
    return s;
}

bool alive_not_zombie(pid_t pid) {
    auto id = cordon::guest::read_proc_identity(pid);
    return id && !id->gone();
}

// The largest N of the "tick N" lines in `lines` (-1 if none).
long last_tick(const std::vector<std::string>& lines) {
    long best = -1;
    for (const auto& l : lines) {
        if (l.rfind("tick ", 0) == 0)
            best = std::max(best, std::stol(l.substr(5)));
    }
    return best;
}

class SupervisorAdopt : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0); }
    void TearDown() override {
        // Reap what was reparented to us (adopted processes that exited, their children).
        for (pid_t p : orphans_) {
            ::kill(p, SIGKILL);
            ::waitpid(p, nullptr, 0);
        }
        while (::waitpid(-1, nullptr, WNOHANG) > 0) {
        }
        ::prctl(PR_SET_CHILD_SUBREAPER, 0);
    }

    // Runs `spec` under a Supervisor in a forked "agent" until it runs (and `extra` more),
    // then kills that agent with SIGKILL. Returns the service's pid, now our orphan.
    pid_t run_earlier_agent(const ServiceSpec& spec,
                            std::function<bool(Supervisor&)> until = nullptr) {
        int p[2];
        EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
        std::cout.flush();
        const pid_t agent = ::fork();
        if (agent == 0) {
            ::close(p[0]);
            boost::asio::io_context io;
            Supervisor sup(io);
            sup.set_state_dir(dir_.path().string());
            sup.add(spec);
            sup.start(spec.name);
            run_until(io, [&] {
                return sup.status(spec.name).state == ServiceState::running &&
                       (!until || until(sup));
            });
            const int pid = sup.status(spec.name).pid;
            [[maybe_unused]] auto n = ::write(p[1], &pid, sizeof pid);
            for (;;) io.run_for(100ms);  // reads the output until it is killed
        }
        ::close(p[1]);
        int pid = 0;
        const auto n = ::read(p[0], &pid, sizeof pid);
        ::close(p[0]);
        EXPECT_EQ(n, static_cast<ssize_t>(sizeof pid));
        ::kill(agent, SIGKILL);
        ::waitpid(agent, nullptr, 0);
        if (pid > 0)
            orphans_.push_back(pid);
        return pid;
    }

    // We reaped it: TearDown must not signal the pid again (it may be reused).
    void reaped(pid_t pid) {
        orphans_.erase(std::remove(orphans_.begin(), orphans_.end(), pid), orphans_.end());
    }

    TempDir dir_;
    std::vector<pid_t> orphans_;
};

}  // namespace

TEST_F(SupervisorAdopt, AdoptsWhatAnEarlierAgentStartedAndItsOutputKeepsFlowing) {
    const pid_t pid = run_earlier_agent(ticker(), [](Supervisor& s) {
        return last_tick(s.logs("ticker")) >= 3;  // the earlier agent read some output
    });
    ASSERT_GT(pid, 0);
    // No agent for a while: the service keeps writing into the FIFO (no SIGPIPE, no block).
    std::this_thread::sleep_for(500ms);
    ASSERT_TRUE(alive_not_zombie(pid)) << "the service died while no agent read its output";

    boost::asio::io_context io;
    Supervisor sup(io);
    sup.set_state_dir(dir_.path().string());
    sup.add(ticker());
    EXPECT_EQ(sup.status("ticker").starts, 1u) << "the start count was not carried over";
    const auto check = sup.check_adoptable("ticker");
    ASSERT_TRUE(check.ok) << check.reason;
    EXPECT_EQ(check.pid, pid);
    int hooked = 0;
    sup.set_start_hook([&](const std::string&, int p) { hooked = p; });
    const auto a = sup.adopt("ticker");
    ASSERT_TRUE(a.ok) << a.reason;
    EXPECT_EQ(hooked, pid);
    const auto st = sup.status("ticker");
    EXPECT_EQ(st.state, ServiceState::running);
    EXPECT_TRUE(st.adopted);
    EXPECT_EQ(st.pid, pid);
    EXPECT_EQ(st.restarts, 0u);
    // What was written while no agent ran is read first (it waited in the FIFO), and
    // new lines keep coming.
    ASSERT_TRUE(run_until(io, [&] { return last_tick(sup.logs("ticker")) >= 0; }));
    const auto first_lines = sup.logs("ticker");
    long first = -1;
    for (const auto& l : first_lines) {
        if (l.rfind("tick ", 0) == 0) {
            first = std::stol(l.substr(5));
            break;
        }
    }
    EXPECT_GE(first, 3) << "lines the earlier agent had read came again";
    ASSERT_TRUE(run_until(io, [&] { return last_tick(sup.logs("ticker")) >= first + 60; }));
    // Numbered lines arrive without a gap: nothing was lost while no agent ran.
    long prev = -1;
    for (const auto& l : sup.logs("ticker")) {
        if (l.rfind("tick ", 0) != 0)
            continue;
        const long n = std::stol(l.substr(5));
        if (prev >= 0) {
            EXPECT_EQ(n, prev + 1);
        }
        prev = n;
    }
    const auto lines = sup.logs("ticker");
    EXPECT_NE(
        std::find(lines.begin(), lines.end(),
                  "[supervisor] adopted pid " + std::to_string(pid) + " from an earlier agent"),
        lines.end());
    EXPECT_TRUE(alive_not_zombie(pid));
    // The FIFO's buffer was enlarged.
    const int fd = ::open((dir_.path() / "ticker.out").c_str(), O_RDONLY | O_NONBLOCK);
    ASSERT_GE(fd, 0);
    EXPECT_GE(::fcntl(fd, F_GETPIPE_SZ), 1 << 20);
    ::close(fd);
}

TEST_F(SupervisorAdopt, StopSignalsTheAdoptedProcessThroughItsPidfd) {
    const pid_t pid = run_earlier_agent(ticker());
    ASSERT_GT(pid, 0);
    boost::asio::io_context io;
    Supervisor sup(io);
    sup.set_state_dir(dir_.path().string());
    sup.add(ticker());
    ASSERT_TRUE(sup.adopt("ticker").ok);
    bool done = false;
    sup.stop("ticker", [&] { done = true; });
    ASSERT_TRUE(run_until(io, [&] { return done; }));
    const auto st = sup.status("ticker");
    EXPECT_EQ(st.state, ServiceState::stopped);
    EXPECT_FALSE(st.adopted);
    EXPECT_EQ(st.last_exit, "exited (status unknown: adopted process)");
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);  // we are its reaper, as init is in the VM
    reaped(pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
    // No restart after a stop.
    run_until(
        io, [] { return false; }, 200ms);
    EXPECT_EQ(sup.status("ticker").state, ServiceState::stopped);
}

TEST_F(SupervisorAdopt, ExitOfTheAdoptedProcessRestartsTheServiceAndCountsIt) {
    const pid_t pid = run_earlier_agent(ticker());
    ASSERT_GT(pid, 0);
    boost::asio::io_context io;
    Supervisor sup(io);
    sup.set_state_dir(dir_.path().string());
    sup.add(ticker());
    ASSERT_TRUE(sup.adopt("ticker").ok);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    ASSERT_TRUE(run_until(io, [&] {
        const auto st = sup.status("ticker");
        return st.state == ServiceState::running && st.pid != pid;
    }));
    ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
    reaped(pid);
    const auto st = sup.status("ticker");
    EXPECT_EQ(st.restarts, 1u);
    EXPECT_EQ(st.starts, 2u);
    EXPECT_FALSE(st.adopted);
    EXPECT_EQ(st.last_exit, "exited (status unknown: adopted process)");
    // The new run's output reaches the ring through the same FIFO.
    const auto before = sup.logs("ticker").size();
    ASSERT_TRUE(run_until(io, [&] { return sup.logs("ticker").size() > before + 5; }));
    // The record follows the new run, so a third agent would adopt that one.
    const auto rec = cordon::guest::read_service_record(dir_.path().string(), "ticker");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->pid, st.pid);
    EXPECT_EQ(rec->starts, 2u);
}

TEST_F(SupervisorAdopt, ADeadOrZombiePidIsRefused) {
    const pid_t pid = run_earlier_agent(ticker());
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    for (int i = 0; i < 200 && alive_not_zombie(pid); ++i) std::this_thread::sleep_for(10ms);
    boost::asio::io_context io;
    Supervisor sup(io);
    sup.set_state_dir(dir_.path().string());
    sup.add(ticker());
    auto a = sup.adopt("ticker");  // a zombie: exited, not reaped yet
    EXPECT_FALSE(a.ok);
    EXPECT_TRUE(a.recorded);
    EXPECT_NE(a.reason.find("has exited"), std::string::npos) << a.reason;
    ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
    reaped(pid);
    a = sup.adopt("ticker");  // gone
    EXPECT_FALSE(a.ok);
    EXPECT_NE(a.reason.find("is gone"), std::string::npos) << a.reason;
    EXPECT_EQ(sup.status("ticker").state, ServiceState::idle);
    // Starting it normally still works, and counts on from the record.
    sup.start("ticker");
    ASSERT_TRUE(run_until(io, [&] { return sup.status("ticker").state == ServiceState::running; }));
    EXPECT_EQ(sup.status("ticker").restarts, 1u);
}

TEST_F(SupervisorAdopt, APidReusedByAnotherProgramIsRefused) {
    const pid_t pid = run_earlier_agent(ticker());
    ASSERT_GT(pid, 0);
    const std::string dir = dir_.path().string();
    auto rec = cordon::guest::read_service_record(dir, "ticker");
    ASSERT_TRUE(rec);
    // The recorded pid now belongs to another program: point the record at a `sleep`
    // started a few clock ticks later (start times count 10 ms ticks).
    std::this_thread::sleep_for(50ms);
    cordon::guest::SpawnOptions o;
    o.argv = {"sleep", "600"};
    auto other = cordon::guest::ChildProcess::spawn(o);
    rec->pid = other.pid();
    cordon::guest::write_service_record(dir, "ticker", *rec);
    boost::asio::io_context io;
    Supervisor sup(io);
    sup.set_state_dir(dir);
    sup.add(ticker());
    const auto a = sup.adopt("ticker");
    EXPECT_FALSE(a.ok);
    EXPECT_NE(a.reason.find("reused"), std::string::npos) << a.reason;
    EXPECT_TRUE(alive_not_zombie(other.pid())) << "the other program was touched";
    // Same start time but another command name or executable is refused too.
    auto id = cordon::guest::read_proc_identity(pid);
    ASSERT_TRUE(id);
    auto same = *rec;
    same.pid = pid;
    same.start_time = id->start_time;
    same.comm = id->comm;
    same.exe = id->exe;
    EXPECT_EQ(cordon::guest::identity_mismatch(same, id), "");
    auto renamed = same;
    renamed.comm = "dockerd";
    EXPECT_NE(cordon::guest::identity_mismatch(renamed, id).find("now runs 'sh'"),
              std::string::npos);
    auto moved = same;
    moved.exe = "/usr/bin/dockerd";
    EXPECT_NE(cordon::guest::identity_mismatch(moved, id).find("recorded /usr/bin/dockerd"),
              std::string::npos);
}

TEST_F(SupervisorAdopt, AChangedConfigurationOrCommandLineIsRefused) {
    const std::string conf = (dir_.path() / "service.conf").string();
    std::ofstream(conf) << "{\"mode\": \"a\"}\n";
    auto spec = ticker();
    spec.config_files = {conf};
    const pid_t pid = run_earlier_agent(spec);
    ASSERT_GT(pid, 0);
    boost::asio::io_context io;
    Supervisor sup(io);
    sup.set_state_dir(dir_.path().string());
    sup.add(spec);
    std::ofstream(conf) << "{\"mode\": \"b\"}\n";  // e.g. an isolation switch under way
    auto a = sup.check_adoptable("ticker");
    EXPECT_FALSE(a.ok);
    EXPECT_NE(a.reason.find(conf + " changed since it started"), std::string::npos) << a.reason;
    std::ofstream(conf) << "{\"mode\": \"a\"}\n";
    a = sup.check_adoptable("ticker");
    EXPECT_TRUE(a.ok) << a.reason;

    Supervisor other(io);
    other.set_state_dir(dir_.path().string());
    auto changed = spec;
    changed.argv.back() += " # another version";
    other.add(changed);
    a = other.check_adoptable("ticker");
    EXPECT_FALSE(a.ok);
    EXPECT_NE(a.reason.find("another command line"), std::string::npos) << a.reason;
    EXPECT_TRUE(alive_not_zombie(pid));
}

TEST_F(SupervisorAdopt, NothingRecordedOrNoStateDirIsRefusedClearly) {
    boost::asio::io_context io;
    Supervisor plain(io);
    plain.add(ticker());
    EXPECT_NE(plain.check_adoptable("ticker").reason.find("no state folder"), std::string::npos);
    Supervisor sup(io);
    sup.set_state_dir(dir_.path().string());
    sup.add(ticker());
    const auto a = sup.check_adoptable("ticker");
    EXPECT_FALSE(a.ok);
    EXPECT_FALSE(a.recorded);
    EXPECT_NE(a.reason.find("no earlier start"), std::string::npos) << a.reason;
    std::ofstream(cordon::guest::service_record_file(dir_.path().string(), "ticker"))
        << "{not json";
    EXPECT_NE(sup.check_adoptable("ticker").reason.find("not a JSON object"), std::string::npos);
    EXPECT_THROW(sup.check_adoptable("nope"), cordon::Error);
}

TEST_F(SupervisorAdopt, EveryRunsOutputIsReadThroughTheFifo) {
    // Each run prints its own line and exits: the FIFO sees EOF between runs and the
    // supervisor must read again when the next run holds it.
    boost::asio::io_context io;
    Supervisor sup(io);
    sup.set_state_dir(dir_.path().string());
    ServiceSpec s;
    s.name = "short";
    s.argv = {"/bin/sh", "-c", "echo run-$$; exit 3"};
    s.backoff_initial = 20ms;
    s.backoff_max = 40ms;
    sup.add(s);
    sup.start("short");
    auto runs = [&] {
        auto l = sup.logs("short");
        return std::count_if(l.begin(), l.end(),
                             [](const std::string& x) { return x.rfind("run-", 0) == 0; });
    };
    ASSERT_TRUE(run_until(
        io, [&] { return runs() >= 4; }, 10s))
        << runs();
    EXPECT_EQ(sup.status("short").last_exit, "exited with status 3");
    bool done = false;
    sup.stop_all([&] { done = true; });
    ASSERT_TRUE(run_until(io, [&] { return done; }));
}

#pragma once
// What the engine-start and engine-recovery tests share: a temporary engine layout, the
// agent's two services as real `sleep` processes under a real Supervisor, an "earlier
// agent" forked to bring them up (and then die), and the reaping of its orphans, since this
// process is a child subreaper as init is in the VM.
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cordon/guest/service_record.hpp"
#include "cordon/guest/supervisor.hpp"
#include "engine_service.hpp"
#include "test_util.hpp"  // tests/unit/guest-system: run_until

namespace cordon::agent::test {

using cordon::guest::test::run_until;

inline bool alive_not_zombie(pid_t pid) {
    auto id = cordon::guest::read_proc_identity(pid);
    return id && !id->gone();
}

class EngineAgentFixture : public ::testing::Test {
  protected:
    // The layout under a new /tmp/<prefix>-XXXXXX; `sleeps` are the arguments of the
    // containerd and dockerd stand-ins (distinct per suite, so leftovers are told apart).
    void make_layout(const std::string& prefix, std::pair<std::string, std::string> sleeps) {
        sleeps_ = std::move(sleeps);
        ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
        std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
        dir_ = ::mkdtemp(tmpl.data());
        std::filesystem::create_directories(dir_ + "/run");
        std::filesystem::create_directories(dir_ + "/state");
        paths_.dockerd_socket = dir_ + "/run/dockerd.sock";
        paths_.state_dir = dir_ + "/state";
        paths_.daemon_json = dir_ + "/run/daemon.json";
        paths_.base_daemon_json = dir_ + "/base-daemon.json";
        paths_.docker_root = dir_ + "/docker";
        std::ofstream(paths_.base_daemon_json) << "{\"storage-driver\": \"overlay2\"}\n";
    }
    void TearDown() override {
        // The earlier agents' services were reparented to us: kill what still runs, reap all.
        for (pid_t p : orphans_) {
            if (alive_not_zombie(p))
                ::kill(p, SIGKILL);
            ::waitpid(p, nullptr, 0);
        }
        ::prctl(PR_SET_CHILD_SUBREAPER, 0);
        std::error_code ec;
        if (!dir_.empty())
            std::filesystem::remove_all(dir_, ec);
    }

    std::string run_dir() const { return dir_ + "/run"; }
    std::vector<std::pair<std::string, std::string>> names() const {
        return {{"containerd", "sleep"}, {"dockerd", "sleep"}};
    }
    // The agent's two services (real processes: `sleep` with distinct arguments).
    void add_services(cordon::guest::Supervisor& sup) const {
        cordon::guest::ServiceSpec c;
        c.name = "containerd";
        c.argv = {"sleep", sleeps_.first};
        sup.add(c);
        cordon::guest::ServiceSpec d;
        d.name = "dockerd";
        d.argv = {"sleep", sleeps_.second};
        d.config_files = {paths_.daemon_json};
        sup.add(d);
    }
    // An agent's preparation: the supervisor's state dir, the services, daemon.json.
    void prepare(cordon::guest::Supervisor& sup, std::unique_ptr<EngineService>& engine,
                 boost::asio::io_context& io) const {
        sup.set_state_dir(run_dir() + "/services");
        engine = std::make_unique<EngineService>(io, sup, paths_, nullptr);
        engine->prepare_boot("");
        add_services(sup);
        sup.set_start_hook([this](const std::string& name, int pid) {
            cordon::guest::record_service_pid(run_dir(), name, pid);
        });
    }

    // The earlier agent, in a forked process: brings the engine up, reports its services'
    // pids, then runs `then` (which should not return: the process dies there, by the
    // test's kill or its own). Returns {agent pid, {containerd pid, dockerd pid}}; the
    // services become orphans of this process, reaped at TearDown.
    std::pair<pid_t, std::pair<pid_t, pid_t>> fork_earlier_agent(
        const std::function<void(boost::asio::io_context&, cordon::guest::Supervisor&)>& then) {
        int p[2];
        EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
        std::cout.flush();
        const pid_t agent = ::fork();
        if (agent == 0) {
            ::close(p[0]);
            boost::asio::io_context io;
            cordon::guest::Supervisor sup(io);
            std::unique_ptr<EngineService> engine;
            prepare(sup, engine, io);
            bool started = false;
            engine->start_services(run_dir(), names(), std::chrono::seconds(1),
                                   [&](const EngineService::StartPath&) { started = true; });
            run_until(io, [&] {
                return started &&
                       sup.status("containerd").state == cordon::guest::ServiceState::running &&
                       sup.status("dockerd").state == cordon::guest::ServiceState::running;
            });
            const int pids[2] = {sup.status("containerd").pid, sup.status("dockerd").pid};
            [[maybe_unused]] auto n = ::write(p[1], pids, sizeof pids);
            then(io, sup);
            ::_exit(3);  // `then` returned: the test sees an exit, not a kill
        }
        ::close(p[1]);
        int pids[2] = {0, 0};
        EXPECT_EQ(::read(p[0], pids, sizeof pids), static_cast<ssize_t>(sizeof pids));
        ::close(p[0]);
        orphans_.push_back(pids[0]);
        orphans_.push_back(pids[1]);
        return {agent, {pids[0], pids[1]}};
    }

    // The new agent's decision, run to its end.
    EngineService::StartPath start_new_agent(boost::asio::io_context& io,
                                             cordon::guest::Supervisor& sup,
                                             std::unique_ptr<EngineService>& engine) {
        prepare(sup, engine, io);
        std::optional<EngineService::StartPath> path;
        engine->start_services(run_dir(), names(), std::chrono::seconds(2),
                               [&](const EngineService::StartPath& p) { path = p; });
        EXPECT_TRUE(run_until(
            io, [&] { return path.has_value(); }, std::chrono::seconds(20)));
        return path.value_or(EngineService::StartPath{});
    }

    std::string dir_;
    cordon::engine::EnginePaths paths_;
    std::vector<pid_t> orphans_;
    std::pair<std::string, std::string> sleeps_{"601", "602"};
};

}  // namespace cordon::agent::test

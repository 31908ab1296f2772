// EngineService::start_services: how a restarted guest agent brings the engine up. An
// "earlier agent" (a forked process with its own Supervisor) starts two real processes
// standing in for containerd and dockerd, records them as the agent does, and is killed
// with SIGKILL; this process (a child subreaper, as init is in the VM) then runs the new
// agent's decision: adopt, or stop and restart, and why. dockerd's /_ping is answered by a
// real HTTP responder on the unix socket the decision pings.
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
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "cordon/guest/leftovers.hpp"
#include "cordon/guest/service_record.hpp"
#include "engine_service.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cordon::agent::EngineService;
using cordon::guest::ServiceSpec;
using cordon::guest::ServiceState;
using cordon::guest::Supervisor;

namespace {

bool run_until(asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout = 10s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < end) {
        io.run_for(10ms);
        if (io.stopped())
            io.restart();
    }
    return done();
}

bool alive_not_zombie(pid_t pid) {
    auto id = cordon::guest::read_proc_identity(pid);
    return id && !id->gone();
}

// Answers every request on a unix socket with "200 OK", as dockerd's /_ping does.
class PingResponder {
  public:
    PingResponder(asio::io_context& io, const std::string& path) : acceptor_(io) {
        ::unlink(path.c_str());
        acceptor_.open();
        acceptor_.bind(asio::local::stream_protocol::endpoint(path));
        acceptor_.listen();
        accept();
    }
    int answered = 0;

  private:
    void accept() {
        acceptor_.async_accept(
            [this](boost::system::error_code ec, asio::local::stream_protocol::socket s) {
                if (ec)
                    return;
                auto sock = std::make_shared<asio::local::stream_protocol::socket>(std::move(s));
                auto buf = std::make_shared<asio::streambuf>();
                asio::async_read_until(
                    *sock, *buf, "\r\n\r\n",
                    [this, sock, buf](boost::system::error_code e, std::size_t) {
                        if (e)
                            return;
                        ++answered;
                        auto reply = std::make_shared<std::string>(
                            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                            "2\r\n\r\nOK");
                        asio::async_write(*sock, asio::buffer(*reply),
                                          [sock, reply](boost::system::error_code, std::size_t) {});
                    });
                accept();
            });
    }
    asio::local::stream_protocol::acceptor acceptor_;
};

class EngineStart : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
        char tmpl[] = "/tmp/cordon-engine-start-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        fs::create_directories(dir_ + "/run");
        fs::create_directories(dir_ + "/state");
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
        fs::remove_all(dir_, ec);
    }

    std::string run_dir() const { return dir_ + "/run"; }
    std::vector<std::pair<std::string, std::string>> names() const {
        return {{"containerd", "sleep"}, {"dockerd", "sleep"}};
    }
    // The agent's two services (real processes: `sleep` with distinct arguments).
    void add_services(Supervisor& sup) const {
        ServiceSpec c;
        c.name = "containerd";
        c.argv = {"sleep", "601"};
        sup.add(c);
        ServiceSpec d;
        d.name = "dockerd";
        d.argv = {"sleep", "602"};
        d.config_files = {paths_.daemon_json};
        sup.add(d);
    }
    // An agent's preparation: the supervisor's state dir, the services, daemon.json.
    void prepare(Supervisor& sup, std::unique_ptr<EngineService>& engine,
                 asio::io_context& io) const {
        sup.set_state_dir(run_dir() + "/services");
        engine = std::make_unique<EngineService>(io, sup, paths_, nullptr);
        engine->prepare_boot("");
        add_services(sup);
        sup.set_start_hook([this](const std::string& name, int pid) {
            cordon::guest::record_service_pid(run_dir(), name, pid);
        });
    }

    // The earlier agent: brings the engine up, then dies by SIGKILL. Returns the pids of
    // its containerd and dockerd, now orphans of this process.
    std::pair<pid_t, pid_t> run_earlier_agent() {
        int p[2];
        EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
        std::cout.flush();
        const pid_t agent = ::fork();
        if (agent == 0) {
            ::close(p[0]);
            asio::io_context io;
            Supervisor sup(io);
            std::unique_ptr<EngineService> engine;
            prepare(sup, engine, io);
            bool started = false;
            engine->start_services(run_dir(), names(), 1s,
                                   [&](const EngineService::StartPath&) { started = true; });
            run_until(io, [&] {
                return started && sup.status("containerd").state == ServiceState::running &&
                       sup.status("dockerd").state == ServiceState::running;
            });
            const int pids[2] = {sup.status("containerd").pid, sup.status("dockerd").pid};
            [[maybe_unused]] auto n = ::write(p[1], pids, sizeof pids);
            for (;;) io.run_for(100ms);
        }
        ::close(p[1]);
        int pids[2] = {0, 0};
        EXPECT_EQ(::read(p[0], pids, sizeof pids), static_cast<ssize_t>(sizeof pids));
        ::close(p[0]);
        ::kill(agent, SIGKILL);
        ::waitpid(agent, nullptr, 0);
        orphans_.push_back(pids[0]);
        orphans_.push_back(pids[1]);
        return {pids[0], pids[1]};
    }

    // The new agent's decision, run to its end.
    EngineService::StartPath start_new_agent(asio::io_context& io, Supervisor& sup,
                                             std::unique_ptr<EngineService>& engine) {
        prepare(sup, engine, io);
        std::optional<EngineService::StartPath> path;
        engine->start_services(run_dir(), names(), 2s,
                               [&](const EngineService::StartPath& p) { path = p; });
        EXPECT_TRUE(run_until(io, [&] { return path.has_value(); }));
        return path.value_or(EngineService::StartPath{});
    }

    std::string dir_;
    cordon::engine::EnginePaths paths_;
    std::vector<pid_t> orphans_;
};

}  // namespace

TEST_F(EngineStart, TheFirstStartOfABootStartsTheEngine) {
    asio::io_context io;
    Supervisor sup(io);
    std::unique_ptr<EngineService> engine;
    const auto p = start_new_agent(io, sup, engine);
    EXPECT_EQ(p.path, "started") << p.reason;
    EXPECT_EQ(sup.status("dockerd").state, ServiceState::running);
    EXPECT_EQ(sup.status("dockerd").restarts, 0u);
}

TEST_F(EngineStart, ARestartedAgentAdoptsAnEngineThatRunsAsRecordedAndAnswers) {
    const auto [containerd, dockerd] = run_earlier_agent();
    asio::io_context io;
    PingResponder ping(io, paths_.dockerd_socket);
    Supervisor sup(io);
    std::unique_ptr<EngineService> engine;
    const auto p = start_new_agent(io, sup, engine);
    EXPECT_EQ(p.path, "adopted") << p.reason;
    EXPECT_EQ(p.summary, "engine adopted from the previous agent");
    EXPECT_GE(ping.answered, 1);
    EXPECT_TRUE(sup.status("containerd").adopted);
    EXPECT_TRUE(sup.status("dockerd").adopted);
    EXPECT_EQ(sup.status("containerd").pid, containerd);
    EXPECT_EQ(sup.status("dockerd").pid, dockerd);
    EXPECT_EQ(sup.status("dockerd").restarts, 0u);
    EXPECT_TRUE(alive_not_zombie(containerd));
    EXPECT_TRUE(alive_not_zombie(dockerd));
}

TEST_F(EngineStart, AChangedDaemonJsonRestartsTheEngine) {
    const auto [containerd, dockerd] = run_earlier_agent();
    // The configuration the new agent writes differs from what dockerd started with.
    std::ofstream(paths_.base_daemon_json)
        << "{\"storage-driver\": \"overlay2\", \"debug\": true}\n";
    asio::io_context io;
    PingResponder ping(io, paths_.dockerd_socket);
    Supervisor sup(io);
    std::unique_ptr<EngineService> engine;
    const auto p = start_new_agent(io, sup, engine);
    EXPECT_EQ(p.path, "restarted");
    EXPECT_NE(p.reason.find("daemon.json changed since it started"), std::string::npos) << p.reason;
    EXPECT_EQ(ping.answered, 0) << "a refused engine need not be asked";
    // The leftovers were stopped, new processes run, and the restart is counted.
    EXPECT_FALSE(alive_not_zombie(containerd));
    EXPECT_FALSE(alive_not_zombie(dockerd));
    EXPECT_NE(sup.status("dockerd").pid, dockerd);
    EXPECT_FALSE(sup.status("dockerd").adopted);
    EXPECT_EQ(sup.status("dockerd").restarts, 1u);
}

TEST_F(EngineStart, AnIsolationSwitchUnderWayRestartsTheEngine) {
    const auto [containerd, dockerd] = run_earlier_agent();
    const std::string marker = paths_.daemon_json + ".switching";
    std::ofstream(marker) << "started by agent pid 1\n";  // what the switch leaves while it runs
    asio::io_context io;
    PingResponder ping(io, paths_.dockerd_socket);
    Supervisor sup(io);
    std::unique_ptr<EngineService> engine;
    const auto p = start_new_agent(io, sup, engine);
    EXPECT_TRUE(engine->interrupted_switch());
    EXPECT_EQ(p.path, "restarted");
    EXPECT_NE(p.reason.find("isolation switch"), std::string::npos) << p.reason;
    EXPECT_FALSE(fs::exists(marker));
    EXPECT_FALSE(alive_not_zombie(dockerd));
    EXPECT_EQ(sup.status("dockerd").state, ServiceState::running);
}

TEST_F(EngineStart, ADockerdThatDoesNotAnswerIsNotAdopted) {
    const auto [containerd, dockerd] = run_earlier_agent();
    asio::io_context io;  // nothing listens on dockerd's socket
    Supervisor sup(io);
    std::unique_ptr<EngineService> engine;
    const auto p = start_new_agent(io, sup, engine);
    EXPECT_EQ(p.path, "restarted");
    EXPECT_NE(p.reason.find("did not answer /_ping"), std::string::npos) << p.reason;
    EXPECT_FALSE(alive_not_zombie(dockerd));
    EXPECT_FALSE(alive_not_zombie(containerd));
    EXPECT_EQ(sup.status("containerd").state, ServiceState::running);
}

TEST_F(EngineStart, ADeadDockerdIsRestartedAndTheLiveContainerdStoppedWithIt) {
    const auto [containerd, dockerd] = run_earlier_agent();
    ASSERT_EQ(::kill(dockerd, SIGKILL), 0);
    ASSERT_EQ(::waitpid(dockerd, nullptr, 0), dockerd);
    orphans_.pop_back();
    asio::io_context io;
    PingResponder ping(io, paths_.dockerd_socket);
    Supervisor sup(io);
    std::unique_ptr<EngineService> engine;
    const auto p = start_new_agent(io, sup, engine);
    EXPECT_EQ(p.path, "restarted");
    EXPECT_NE(p.reason.find("dockerd: pid " + std::to_string(dockerd) + " is gone"),
              std::string::npos)
        << p.reason;
    EXPECT_FALSE(alive_not_zombie(containerd)) << "adopt both or neither";
    EXPECT_EQ(sup.status("dockerd").state, ServiceState::running);
}

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
#include "engine_fixture.hpp"
#include "engine_service.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cordon::agent::EngineService;
using cordon::guest::ServiceSpec;
using cordon::guest::ServiceState;
using cordon::guest::Supervisor;
using cordon::agent::test::alive_not_zombie;
using cordon::agent::test::run_until;

namespace {

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

class EngineStart : public cordon::agent::test::EngineAgentFixture {
  protected:
    void SetUp() override { make_layout("cordon-engine-start", {"601", "602"}); }

    // The earlier agent: brings the engine up, then dies by SIGKILL. Returns the pids of
    // its containerd and dockerd, now orphans of this process.
    std::pair<pid_t, pid_t> run_earlier_agent() {
        const auto [agent, pids] = fork_earlier_agent([](asio::io_context& io, Supervisor&) {
            for (;;) io.run_for(100ms);
        });
        ::kill(agent, SIGKILL);
        ::waitpid(agent, nullptr, 0);
        return pids;
    }
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

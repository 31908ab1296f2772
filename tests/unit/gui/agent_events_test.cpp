// The controller follows the guest agent's pushed events: a real AgentEventWatcher on
// a real unix socket served by a real RPC server that answers events.watch like the
// guest agent (a snapshot, then one notification per change).
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <gtest/gtest.h>
#include <unistd.h>

#include <QSignalSpy>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <thread>

#include "cordon/host/host_error.hpp"
#include "cordon/rpc/rpc.hpp"
#include "gui_test_main.hpp"
#include "vm_controller.hpp"

using namespace cordon::gui;
using namespace cordon::gui::test;
using nlohmann::json;
namespace asio = boost::asio;

namespace {

// A guest agent's control socket with events.watch, on its own thread.
class EventSource {
  public:
    explicit EventSource(std::filesystem::path path) : path_(std::move(path)) {
        server_ = std::make_unique<cordon::rpc::Server>(io_, "rpc");
        server_->register_async_method("events.watch", [this](std::shared_ptr<cordon::rpc::Call> c) {
            c->notify("event", {{"type", "snapshot"}, {"engine", {{"state", "ready"}}}});
            watchers_.push_back(std::move(c));
        });
        ::unlink(path_.c_str());
        acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(
            io_, asio::local::stream_protocol::endpoint(path_.string()));
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~EventSource() {
        asio::post(io_, [this] {
            for (auto& w : watchers_) w->reply(json::object());
            watchers_.clear();
            acceptor_.reset();
            server_.reset();
            work_.reset();
        });
        thread_.join();
    }
    void emit_event(json ev) {
        asio::post(io_, [this, ev] {
            for (auto& w : watchers_) w->notify("event", ev);
        });
    }
    // Ends every watch, like a guest agent that goes away.
    void drop() {
        asio::post(io_, [this] {
            for (auto& w : watchers_) w->reply(json::object());
            watchers_.clear();
        });
    }

  private:
    void accept() {
        acceptor_->async_accept([this](boost::system::error_code ec,
                                       asio::local::stream_protocol::socket s) {
            if (ec)
                return;
            server_->serve(std::move(s));
            accept();
        });
    }
    std::filesystem::path path_;
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
    std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor_;
    std::unique_ptr<cordon::rpc::Server> server_;
    std::vector<std::shared_ptr<cordon::rpc::Call>> watchers_;
    std::thread thread_;
};

// A running VM whose status is counted; its events come from the socket above.
class EventingBackend final : public Backend {
  public:
    explicit EventingBackend(std::filesystem::path socket) : socket_(std::move(socket)) {}
    std::atomic<int> statusCalls{0};
    std::atomic<bool> libvirtGone{false};  // status() fails as with libvirtd stopped

    cordon::host::VmStatus status() override {
        ++statusCalls;
        if (libvirtGone) {
            throw cordon::host::HostError(cordon::host::ErrorKind::libvirt_unreachable,
                                          "cannot connect to libvirt", "qemu:///system",
                                          "start libvirtd");
        }
        cordon::host::VmStatus s;
        s.name = "cordon";
        s.uri = "qemu:///system";
        s.defined = true;
        s.domain.state = cordon::host::DomainState::running;
        s.agent_reachable = true;
        s.agent_info = {{"cpus", 2}};
        return s;
    }
    cordon::host::StartResult start(const cordon::host::Progress&) override { return {}; }
    cordon::host::StopResult stop(const cordon::host::Progress&) override { return {}; }
    json callAgent(const std::string&, const json&, std::chrono::milliseconds) override {
        return {{"enabled", true}, {"uid_map", "0 100000 65536"}};
    }
    std::unique_ptr<cordon::host::AgentEventWatcher> watchAgentEvents(
        cordon::host::AgentEventWatcher::EventHandler on_event,
        cordon::host::AgentEventWatcher::LinkHandler on_link) override {
        return std::make_unique<cordon::host::AgentEventWatcher>(
            socket_, std::move(on_event), std::move(on_link), std::chrono::milliseconds(100));
    }
    std::vector<cordon::host::docker::Container> containers() override { return {}; }
    std::string readLog(const std::string&, std::size_t) override { return {}; }
    cordon::host::VmPaths paths() const override { return cordon::host::vm_paths("cordon"); }
    std::string uri() const override { return "qemu:///system"; }
    void setSettings(const cordon::host::Settings&) override {}

  private:
    std::filesystem::path socket_;
};

}  // namespace

TEST(AgentEvents, PushedEventsRefreshAtOnceAndSlowThePoll) {
    ::unsetenv("CORDON_GUI_NO_EVENTS");
    const auto dir = tempDir("agent-events");
    const auto sock = dir / "control.sock";
    EventSource source(sock);
    auto backend = std::make_shared<EventingBackend>(sock);
    VmController vm(backend);
    vm.setPollInterval(5000);
    QSignalSpy events(&vm, &VmController::agentEvent);
    ASSERT_TRUE(waitFor([&] { return vm.agentEventsActive(); }, 10000));
    EXPECT_EQ(vm.pollInterval(), 60000) << "with pushed events the poll slows down";
    ASSERT_TRUE(waitFor([&] { return events.count() >= 1; }, 5000));
    EXPECT_EQ(events.at(0).at(0).toString(), "snapshot");
    ASSERT_TRUE(waitFor([&] { return vm.idle(); }, 5000));

    const int before = backend->statusCalls.load();
    source.emit_event({{"type", "engine"}, {"state", "starting"}, {"previous", "ready"}});
    ASSERT_TRUE(waitFor([&] { return events.count() >= 2; }, 5000));
    EXPECT_EQ(events.at(1).at(0).toString(), "engine");
    EXPECT_EQ(events.at(1).at(1).toString(), "starting");
    EXPECT_TRUE(waitFor([&] { return backend->statusCalls.load() > before; }, 5000))
        << "an event refreshes the status at once (the poll is at 60 s)";

    // Heartbeats keep the link alive without refreshing.
    ASSERT_TRUE(waitFor([&] { return vm.idle(); }, 5000));
    const int quiet = backend->statusCalls.load();
    source.emit_event({{"type", "heartbeat"}});
    ASSERT_TRUE(waitFor([&] { return events.count() >= 3; }, 5000));
    QTest::qWait(300);
    EXPECT_EQ(backend->statusCalls.load(), quiet);

    // The guest goes away: back to the normal poll until the watch is up again.
    QSignalSpy link(&vm, &VmController::agentEventsLinkChanged);
    source.drop();
    ASSERT_TRUE(waitFor([&] { return !vm.agentEventsActive(); }, 5000));
    EXPECT_EQ(vm.pollInterval(), 5000);
    ASSERT_TRUE(waitFor([&] { return vm.agentEventsActive(); }, 5000)) << "it reconnects";
    EXPECT_GE(link.count(), 2);
}

// libvirtd goes away while the guest agent still pushes events (it does not need libvirtd):
// the window says so, polls at the normal rate instead of once a minute until libvirt
// answers, and is back to Running with no error by itself.
TEST(AgentEvents, WhileLibvirtIsGoneThePollStaysFastAndTheWindowRecoversByItself) {
    ::unsetenv("CORDON_GUI_NO_EVENTS");
    const auto dir = tempDir("agent-events-libvirt");
    const auto sock = dir / "control.sock";
    EventSource source(sock);
    auto backend = std::make_shared<EventingBackend>(sock);
    VmController vm(backend);
    vm.setPollInterval(200);
    ASSERT_TRUE(waitFor([&] { return vm.agentEventsActive(); }, 10000));
    ASSERT_TRUE(waitFor([&] { return vm.state() == VmState::running && vm.idle(); }, 5000));
    EXPECT_EQ(vm.pollInterval(), 60000);

    backend->libvirtGone = true;
    vm.refresh();  // what libvirt's connection-closed callback does
    ASSERT_TRUE(waitFor([&] { return vm.state() == VmState::unavailable; }, 5000));
    EXPECT_TRUE(vm.lastError().text().contains("cannot connect to libvirt"))
        << vm.lastError().text().toStdString();
    EXPECT_EQ(vm.pollInterval(), 200) << "nothing pushes libvirtd's return: the poll must look";
    EXPECT_TRUE(vm.agentEventsActive());

    backend->libvirtGone = false;  // libvirtd is back; no event says so
    const bool back =
        waitFor([&] { return vm.state() == VmState::running && vm.lastError().empty(); }, 3000);
    EXPECT_TRUE(back) << "still " << vm.stateText().toStdString() << ": "
                      << vm.lastError().text().toStdString();
    EXPECT_EQ(vm.pollInterval(), 60000) << "with libvirt and the agent's events back, slow again";
}

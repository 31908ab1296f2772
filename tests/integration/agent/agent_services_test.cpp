// The guest agent's services as the host reaches them: the test plays QEMU (it serves
// the channel's unix socket) and runs the agent's real shell service, event hub and
// RPC server on a guest-role channel session; the real cordon-hostagent process bridges
// shell.sock and control.sock; the host library's run_shell, AgentEventWatcher and
// agent client are the clients. Real sockets, real processes, a real shell (/bin/sh).
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "agent_log.hpp"
#include "cordon/channel/session.hpp"
#include "cordon/host/agent_client.hpp"
#include "cordon/host/agent_events.hpp"
#include "cordon/host/host_error.hpp"
#include "cordon/host/shell_client.hpp"
#include "cordon/log.hpp"
#include "cordon/rpc/rpc.hpp"
#include "cordon/shell/protocol.hpp"
#include "cordon/subprocess.hpp"
#include "events.hpp"
#include "shell_service.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// The guest side, on its own io thread: a channel session per host connection,
// "shell" -> the agent's shell service, "rpc" -> an RPC server with events.watch and
// methods that refuse with the agent's codes.
class Guest {
  public:
    explicit Guest(fs::path channel) : channel_(std::move(channel)) {
        rpc_ = std::make_unique<cordon::rpc::Server>(io_, "rpc");
        hub_ = std::make_unique<cordon::agent::EventHub>(
            io_, [this] { return state_; }, 50ms, 1s);
        rpc_->register_async_method("events.watch", [this](std::shared_ptr<cordon::rpc::Call> c) {
            hub_->watch(std::move(c));
        });
        rpc_->register_method("isolation", [](const json&, cordon::rpc::Call&) -> json {
            throw cordon::rpc::CallError("locked", "isolation is locked on by the administrator",
                                         "isolation", "ask your administrator");
        });
        rpc_->register_method("busy", [](const json&, cordon::rpc::Call&) -> json {
            throw cordon::rpc::CallError("busy", "an isolation switch is already in progress",
                                         "busy");
        });
        state_.engine_state = "ready";
        state_.isolation = true;
        listen();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~Guest() {
        asio::post(io_, [this] {
            if (session_)
                session_->close("test over");
            acceptor_.reset();
            hub_.reset();
            rpc_.reset();
            work_.reset();
        });
        thread_.join();
    }
    template <typename F>
    auto on_io(F f) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto fut = task.get_future();
        asio::post(io_, [&task] { task(); });
        return fut.get();
    }
    void set(const std::function<void(cordon::agent::EventState&)>& change) {
        on_io([&] {
            change(state_);
            return 0;
        });
    }
    std::size_t watchers() {
        return on_io([this] { return hub_->watchers(); });
    }

  private:
    void listen() {
        ::unlink(channel_.c_str());
        acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(
            io_, asio::local::stream_protocol::endpoint(channel_.string()));
        accept();
    }
    void accept() {
        acceptor_->async_accept([this](boost::system::error_code ec,
                                       asio::local::stream_protocol::socket s) {
            if (ec)
                return;
            cordon::channel::SessionOptions so;
            so.role = cordon::channel::Role::guest;
            so.agent_version = "cordon-guest-agent test";
            session_ = cordon::channel::Session::create(io_, cordon::UniqueFd(s.release()), so);
            session_->set_stream_handler(
                [this](std::shared_ptr<cordon::channel::Stream> st, const std::string& svc) {
                    if (svc == "shell")
                        cordon::agent::serve_shell(io_, std::move(st), shell_opts());
                    else if (svc == "rpc")
                        rpc_->serve(std::move(st));
                    else
                        st->reset("no such service");
                });
            session_->start([](boost::system::error_code, const cordon::channel::PeerInfo&) {});
            accept();
        });
    }
    static cordon::agent::ShellOptions shell_opts() {
        cordon::agent::ShellOptions o;
        o.home = "/";
        return o;
    }

    fs::path channel_;
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
    std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor_;
    std::shared_ptr<cordon::channel::Session> session_;
    std::unique_ptr<cordon::rpc::Server> rpc_;
    std::unique_ptr<cordon::agent::EventHub> hub_;
    cordon::agent::EventState state_;
    std::thread thread_;
};

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (pred())
            return true;
        std::this_thread::sleep_for(20ms);
    }
    return pred();
}

// A file that stands in for the terminal: what the shell printed.
std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

class AgentServices : public ::testing::Test {
  protected:
    fs::path dir, channel, docker, control, shell, pid;
    std::unique_ptr<Guest> guest;
    cordon::Child hostagent;

    void SetUp() override {
        char tmpl[] = "/tmp/cordon-agentsvc-XXXXXX";
        dir = ::mkdtemp(tmpl);
        channel = dir / "channel.sock";
        docker = dir / "docker.sock";
        control = dir / "control.sock";
        shell = dir / "shell.sock";
        pid = dir / "hostagent.pid";
        guest = std::make_unique<Guest>(channel);
        cordon::SpawnOptions so;
        so.capture_output = false;
        hostagent = cordon::Child::spawn({CORDON_HOSTAGENT_PATH, "--channel", channel.string(),
                                          "--docker-socket", docker.string(), "--control-socket",
                                          control.string(), "--pid-file", pid.string(),
                                          "--log-level", "warn"},
                                         so);
        ASSERT_TRUE(wait_until([&] { return fs::exists(shell) && fs::exists(control); }, 10s))
            << "the host agent did not create shell.sock";
    }
    void TearDown() override {
        hostagent.terminate(3000ms);
        guest.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    struct Run {
        int code = -1;
        std::string out, err;
    };
    // run_shell with stdin from `input`, stdout/stderr into files.
    Run run(cordon::host::ShellRequest req, const std::string& input) {
        const fs::path in = dir / "in", out = dir / "out", err = dir / "err";
        std::ofstream(in, std::ios::binary) << input;
        cordon::UniqueFd in_fd(::open(in.c_str(), O_RDONLY | O_CLOEXEC));
        cordon::UniqueFd out_fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        cordon::UniqueFd err_fd(::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        req.in_fd = in_fd.get();
        req.out_fd = out_fd.get();
        req.err_fd = err_fd.get();
        Run r;
        r.code = cordon::host::run_shell(shell, req);
        r.out = slurp(out);
        r.err = slurp(err);
        return r;
    }
};

}  // namespace

TEST_F(AgentServices, PipedShellRunsTheCommandsAndReturnsTheExitStatus) {
    auto r = run({}, "echo hello\necho oops >&2\nexit 7\n");
    EXPECT_EQ(r.code, 7);
    EXPECT_EQ(r.out, "hello\n");
    EXPECT_EQ(r.err, "oops\n");
}

TEST_F(AgentServices, EndOfInputEndsTheShellWithTheLastStatus) {
    auto r = run({}, "true\nfalse\n");
    EXPECT_EQ(r.code, 1);
    auto ok = run({}, "");
    EXPECT_EQ(ok.code, 0);
}

TEST_F(AgentServices, LargeInputAndOutputDoNotDeadlock) {
    // 2 MiB through cat and back: both directions full at once.
    std::string big(2 * 1024 * 1024, 'x');
    for (std::size_t i = 0; i < big.size(); i += 100) big[i] = '\n';
    cordon::host::ShellRequest req;
    req.argv = {"cat"};
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run(req, big);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cerr << "[measure] 2 MiB through cat over the shell service: " << s << " s ("
              << 2.0 / s << " MiB/s each way)\n";
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out.size(), big.size());
    EXPECT_TRUE(r.out == big);
}

TEST_F(AgentServices, SignalDeathIs128PlusTheSignal) {
    cordon::host::ShellRequest req;
    req.argv = {"/bin/sh", "-c", "kill -9 $$"};
    EXPECT_EQ(run(req, "").code, 137);
}

TEST_F(AgentServices, AProgramThatCannotRunIsAGuestError) {
    cordon::host::ShellRequest req;
    req.argv = {"/no/such/program"};
    try {
        run(req, "");
        FAIL() << "no error";
    } catch (const cordon::host::HostError& e) {
        EXPECT_EQ(e.kind(), cordon::host::ErrorKind::rpc);
        EXPECT_NE(std::string(e.what()).find("cannot run /no/such/program"), std::string::npos)
            << e.what();
    }
}

TEST_F(AgentServices, TerminalGetsTheSizeAtStartAndOnResize) {
    cordon::host::ShellRequest req;
    req.tty = true;
    req.rows = 33;
    req.cols = 101;
    req.argv = {"/bin/sh", "-c", "stty size; read x; stty size"};
    int w[2], in[2];
    ASSERT_EQ(::pipe2(w, O_CLOEXEC | O_NONBLOCK), 0);
    ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
    cordon::UniqueFd wake_r(w[0]), wake_w(w[1]), in_r(in[0]), in_w(in[1]);
    const fs::path out = dir / "tty-out";
    cordon::UniqueFd out_fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    req.in_fd = in_r.get();
    req.out_fd = out_fd.get();
    req.wake_fd = wake_r.get();
    std::atomic<int> wakes{0};
    req.on_wake = [&] {
        ++wakes;
        return cordon::host::ShellRequest::Wake{40, 120, 0};
    };
    // Like a person: once the first size shows, resize the window (SIGWINCH), then type.
    // A jthread: joined even when run_shell throws.
    std::jthread user([&] {
        if (!wait_until([&] { return slurp(out).find("33 101") != std::string::npos; }, 10s))
            return;
        [[maybe_unused]] auto a = ::write(wake_w.get(), "w", 1);
        std::this_thread::sleep_for(100ms);
        [[maybe_unused]] auto b = ::write(in_w.get(), "go\n", 3);
    });
    const int code = cordon::host::run_shell(shell, req);
    user.join();
    const std::string text = slurp(out);
    EXPECT_EQ(code, 0) << text;
    EXPECT_EQ(wakes.load(), 1);
    const auto first = text.find("33 101");
    const auto second = text.find("40 120");
    EXPECT_NE(first, std::string::npos) << text;
    EXPECT_NE(second, std::string::npos) << text;
    EXPECT_LT(first, second) << text;
}

TEST_F(AgentServices, AHostThatGoesAwayHangsTheShellUp) {
    cordon::host::ShellRequest req;
    req.argv = {"/bin/sh", "-c", "echo $$; exec sleep 1000"};
    const fs::path out = dir / "pid-out";
    cordon::UniqueFd out_fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    cordon::UniqueFd wake_r(p[0]), wake_w(p[1]);
    req.in_fd = -1;
    req.out_fd = out_fd.get();
    req.wake_fd = wake_r.get();
    req.on_wake = [] { return cordon::host::ShellRequest::Wake{0, 0, 130}; };
    std::future<int> done = std::async(std::launch::async, [&] { return cordon::host::run_shell(shell, req); });
    ASSERT_TRUE(wait_until([&] { return slurp(out).find('\n') != std::string::npos; }, 10s));
    const pid_t child = std::stoi(slurp(out));
    ASSERT_EQ(::kill(child, 0), 0) << "the shell runs";
    ASSERT_EQ(::write(wake_w.get(), "x", 1), 1);  // like Ctrl-C on vmctl: the client leaves
    EXPECT_EQ(done.get(), 130);
    EXPECT_TRUE(wait_until([&] { return ::kill(child, 0) != 0 && errno == ESRCH; }, 10s))
        << "the shell outlived its host";
}

namespace {

// Writes `bytes` raw to the shell socket and returns everything the guest answers until it
// closes the connection.
std::string raw_shell_exchange(const std::string& shell_socket, const std::string& bytes) {
    cordon::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, shell_socket.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    std::string got;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n <= 0)
            break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

}  // namespace

TEST_F(AgentServices, BadShellMessagesAreRefusedWithoutCrashing) {
    // A raw client speaking nonsense on shell.sock: the guest resets the stream.
    const std::string got = raw_shell_exchange(
        shell, cordon::shell::encode(cordon::shell::MsgType::stdin_data, "x") + "garbage");
    cordon::shell::Decoder d;
    d.feed(got);
    auto m = d.next();
    ASSERT_TRUE(m.has_value()) << "no answer";
    EXPECT_EQ(m->type, cordon::shell::MsgType::error);
    EXPECT_NE(m->payload.find("START"), std::string::npos) << m->payload;
    // The service still works afterwards.
    EXPECT_EQ(run({}, "exit 4\n").code, 4);
}

TEST_F(AgentServices, AStartWithWrongTypesIsAnErrorNamingTheKeyNotACrash) {
    // Before parse_start, {"tty":"yes"} threw a JSON type error inside the agent's loop.
    for (const char* start : {R"({"tty":"yes"})", R"({"rows":1e9,"tty":true})",
                              R"({"argv":["sh",{"x":1}]})", R"({"term":"a\nb"})"}) {
        const std::string got =
            raw_shell_exchange(shell, cordon::shell::encode(cordon::shell::MsgType::start, start));
        cordon::shell::Decoder d;
        d.feed(got);
        auto m = d.next();
        ASSERT_TRUE(m.has_value()) << "no answer to " << start;
        EXPECT_EQ(m->type, cordon::shell::MsgType::error) << start;
        EXPECT_NE(m->payload.find("invalid shell START"), std::string::npos) << m->payload;
    }
    EXPECT_EQ(run({}, "exit 5\n").code, 5) << "the agent did not survive";
}

TEST_F(AgentServices, EventWatcherGetsTheSnapshotThenEachChange) {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<cordon::host::AgentEvent> events;
    std::atomic<bool> up{false};
    auto watcher = std::make_unique<cordon::host::AgentEventWatcher>(
        control,
        [&](const cordon::host::AgentEvent& e) {
            std::lock_guard lock(mu);
            events.push_back(e);
            cv.notify_all();
        },
        [&](bool u, const std::string&) { up = u; }, 200ms);
    auto wait_type = [&](const std::string& type, std::size_t count = 1) {
        std::unique_lock lock(mu);
        return cv.wait_for(lock, 10s, [&] {
            return static_cast<std::size_t>(std::count_if(events.begin(), events.end(), [&](auto& e) {
                       return e.type == type;
                   })) >= count;
        });
    };
    ASSERT_TRUE(wait_type("snapshot"));
    EXPECT_TRUE(up.load());
    {
        std::lock_guard lock(mu);
        EXPECT_EQ(events[0].data["engine"]["state"], "ready");
        EXPECT_EQ(events[0].data["isolation"], true);
    }
    const auto t0 = std::chrono::steady_clock::now();
    guest->set([](auto& s) { s.engine_state = "starting"; });
    ASSERT_TRUE(wait_type("engine"));
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::cerr << "[measure] guest state change -> host event: " << ms << " ms (sampling 50 ms)\n";
    guest->set([](auto& s) {
        s.isolation = false;
        s.dockerd_restarts = 1;
    });
    ASSERT_TRUE(wait_type("isolation"));
    ASSERT_TRUE(wait_type("dockerd_restart"));
    ASSERT_TRUE(wait_type("heartbeat"));  // every second here
    {
        std::lock_guard lock(mu);
        for (const auto& e : events) {
            if (e.type == "engine") {
                EXPECT_EQ(e.data["state"], "starting");
                EXPECT_EQ(e.data["previous"], "ready");
            }
            if (e.type == "isolation") {
                EXPECT_EQ(e.data["enabled"], false);
            }
        }
    }
    EXPECT_EQ(guest->watchers(), 1u);
    watcher.reset();
    EXPECT_TRUE(wait_until([&] { return guest->watchers() == 0; }, 5s))
        << "the guest keeps a watch whose host left";
}

TEST_F(AgentServices, EventWatcherReconnectsAfterTheHostAgentRestarts) {
    std::atomic<int> snapshots{0}, downs{0};
    cordon::host::AgentEventWatcher watcher(
        control,
        [&](const cordon::host::AgentEvent& e) {
            if (e.type == "snapshot")
                ++snapshots;
        },
        [&](bool u, const std::string&) {
            if (!u)
                ++downs;
        },
        200ms);
    ASSERT_TRUE(wait_until([&] { return snapshots == 1; }, 10s));
    hostagent.terminate(3000ms);
    ASSERT_TRUE(wait_until([&] { return downs >= 1; }, 10s));
    EXPECT_FALSE(watcher.linked());
    cordon::SpawnOptions so;
    so.capture_output = false;
    hostagent = cordon::Child::spawn({CORDON_HOSTAGENT_PATH, "--channel", channel.string(),
                                      "--docker-socket", docker.string(), "--control-socket",
                                      control.string(), "--pid-file", pid.string(), "--log-level",
                                      "warn"},
                                     so);
    EXPECT_TRUE(wait_until([&] { return snapshots == 2; }, 20s));
    EXPECT_TRUE(watcher.linked());
}

TEST_F(AgentServices, RpcErrorCodesReachTheHostLibrary) {
    auto client = cordon::host::connect_agent(control);
    try {
        client->call("isolation", {{"enabled", false}}, 10s);
        FAIL() << "no error";
    } catch (const cordon::host::HostError& e) {
        EXPECT_EQ(e.kind(), cordon::host::ErrorKind::locked);
        EXPECT_EQ(e.rpc_code(), "locked");
        EXPECT_EQ(e.hint(), "ask your administrator");
    }
    try {
        client->call("busy", json::object(), 10s);
        FAIL() << "no error";
    } catch (const cordon::host::HostError& e) {
        EXPECT_EQ(e.kind(), cordon::host::ErrorKind::busy);
        EXPECT_EQ(e.rpc_code(), "busy");
    }
    try {
        client->call("no.such.method", json::object(), 10s);
        FAIL() << "no error";
    } catch (const cordon::host::HostError& e) {
        EXPECT_EQ(e.kind(), cordon::host::ErrorKind::rpc);
        EXPECT_EQ(e.rpc_code(), "unknown_method");
    }
}

TEST(AgentLog, KeepsTheAgentsOwnLinesInARing) {
    cordon::agent::AgentLog ring(3);
    for (int i = 0; i < 5; ++i) cordon::log::warn("agent", "line {}", i);
    auto lines = ring.tail(0);
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_NE(lines[0].find("warn agent: line 2"), std::string::npos) << lines[0];
    EXPECT_NE(lines[2].find("warn agent: line 4"), std::string::npos) << lines[2];
    EXPECT_EQ(ring.tail(1).size(), 1u);
    EXPECT_EQ(ring.total(), 5u);
}

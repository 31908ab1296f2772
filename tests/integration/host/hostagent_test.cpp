// The real cordon-hostagent process. The test plays QEMU (it serves the channel's
// unix socket) and the guest agent (a guest-role channel Session with an RPC server
// for "rpc" and a tiny HTTP responder for "docker"), using the real channel library.
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "cordon/channel/session.hpp"
#include "cordon/host/hostagent_control.hpp"
#include "cordon/host/process.hpp"
#include "cordon/rpc/rpc.hpp"
#include "cordon/subprocess.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cordon::rpc::json;
using Socket = asio::local::stream_protocol::socket;

namespace {

// The guest: serves the channel socket like QEMU and answers like the guest agent.
class FakeGuest {
  public:
    explicit FakeGuest(fs::path channel) : channel_(std::move(channel)) {
        thread_ = std::thread([this] { run(); });
    }
    ~FakeGuest() {
        asio::post(io_, [this] {
            if (session_)
                session_->close("test over");
            if (acceptor_)
                acceptor_->close();
            work_.reset();
        });
        thread_.join();
    }
    // Like QEMU going away: the socket file disappears and the connection drops.
    void drop() {
        std::promise<void> done;
        asio::post(io_, [this, &done] {
            if (acceptor_)
                acceptor_->close();
            acceptor_.reset();
            ::unlink(channel_.c_str());
            if (session_)
                session_->close("guest reboot");
            session_.reset();
            done.set_value();
        });
        done.get_future().wait();
    }
    void listen_again() {
        std::promise<void> done;
        asio::post(io_, [this, &done] {
            listen();
            done.set_value();
        });
        done.get_future().wait();
    }
    int connections() const { return connections_.load(); }

  private:
    void run() {
        rpc_ = std::make_unique<cordon::rpc::Server>(io_, "fake-guest.rpc");
        rpc_->register_method("ping", [](const json&, cordon::rpc::Call&) {
            return json{{"pong", true}};
        });
        rpc_->register_method("info", [](const json&, cordon::rpc::Call&) {
            return json{{"agent_version", "fake"}};
        });
        listen();
        io_.run();
        rpc_.reset();
    }
    void listen() {
        ::unlink(channel_.c_str());
        acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(
            io_, asio::local::stream_protocol::endpoint(channel_.string()));
        accept();
    }
    void accept() {
        acceptor_->async_accept([this](boost::system::error_code ec, Socket s) {
            if (ec)
                return;
            ++connections_;
            cordon::channel::SessionOptions o;
            o.role = cordon::channel::Role::guest;
            o.agent_version = "fake-guest 1";
            session_ = cordon::channel::Session::create(io_, cordon::UniqueFd(s.release()), o);
            session_->set_stream_handler(
                [this](std::shared_ptr<cordon::channel::Stream> st, const std::string& svc) {
                    if (svc == "rpc") {
                        rpc_->serve(st);
                    } else if (svc == "docker") {
                        serve_http(st);
                    } else {
                        st->reset("unknown service");
                    }
                });
            session_->start([](boost::system::error_code, const cordon::channel::PeerInfo&) {});
            accept();
        });
    }
    // Reads a request head, answers like dockerd's /_ping.
    void serve_http(std::shared_ptr<cordon::channel::Stream> st) {
        auto buf = std::make_shared<std::array<char, 4096>>();
        auto got = std::make_shared<std::string>();
        auto self = std::make_shared<std::function<void()>>();
        *self = [st, buf, got, self] {
            st->async_read_some(
                asio::buffer(*buf),
                [st, buf, got, self](boost::system::error_code ec, std::size_t n) {
                    if (ec)
                        return;
                    got->append(buf->data(), n);
                    if (got->find("\r\n\r\n") == std::string::npos) {
                        (*self)();
                        return;
                    }
                    auto resp = std::make_shared<std::string>(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                        "2\r\nConnection: close\r\n\r\nOK");
                    st->async_write(asio::buffer(*resp),
                                    [st, resp, self](boost::system::error_code, std::size_t) {
                                        st->shutdown_send();
                                        *self = nullptr;  // break the cycle
                                    });
                });
        };
        (*self)();
    }

    fs::path channel_;
    asio::io_context io_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
        asio::make_work_guard(io_)};
    std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor_;
    std::shared_ptr<cordon::channel::Session> session_;
    std::unique_ptr<cordon::rpc::Server> rpc_;
    std::atomic<int> connections_{0};
    std::thread thread_;
};

std::string http_ping(const fs::path& sock) {
    auto r = cordon::run(
        {"curl", "-s", "--max-time", "20", "--unix-socket", sock.string(), "http://x/_ping"}, 30s);
    return r.out;
}

bool wait_for(const std::function<bool()>& f, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (f())
            return true;
        std::this_thread::sleep_for(50ms);
    }
    return f();
}

class HostAgentProcess : public ::testing::Test {
  protected:
    fs::path dir;
    cordon::host::VmPaths paths;
    void SetUp() override {
        char tmpl[] = "/tmp/cordon-ha-XXXXXX";
        dir = ::mkdtemp(tmpl);
        paths.vm_name = "test";
        paths.runtime_dir = dir;
        paths.state_dir = dir;
        paths.channel_socket = dir / "channel.sock";
        paths.docker_socket = dir / "docker.sock";
        paths.control_socket = dir / "control.sock";
        paths.hostagent_pid = dir / "hostagent.pid";
        paths.hostagent_log = dir / "hostagent.log";
    }
    void TearDown() override {
        cordon::host::stop_hostagent(paths, 3s);
        std::error_code ec;
        if (HasFailure()) {
            std::ifstream log(paths.hostagent_log);
            std::cerr << "--- hostagent.log\n"
                      << std::string(std::istreambuf_iterator<char>(log), {});
        }
        fs::remove_all(dir, ec);
    }
    pid_t start_agent() {
        pid_t pid = cordon::host::start_hostagent(paths, CORDON_HOSTAGENT_PATH);
        EXPECT_TRUE(wait_for(
            [&] { return fs::exists(paths.control_socket) && fs::exists(paths.docker_socket); },
            10s));
        return pid;
    }
    json ping(std::chrono::milliseconds timeout = 20s) {
        auto c = cordon::rpc::BlockingClient::connect(paths.control_socket.string());
        return c.call("ping", json::object(), timeout);
    }
};

}  // namespace

TEST_F(HostAgentProcess, ForwardsRpcAndDockerConnectionsAsChannelStreams) {
    FakeGuest guest(paths.channel_socket);
    pid_t pid = start_agent();
    EXPECT_EQ(cordon::host::hostagent_state(paths).pid, pid);
    EXPECT_TRUE(cordon::host::hostagent_state(paths).alive);
    EXPECT_EQ(ping()["pong"], true);
    EXPECT_EQ(http_ping(paths.docker_socket), "OK");
    // Many connections at once, each its own stream.
    std::vector<std::future<std::string>> many;
    for (int i = 0; i < 8; ++i)
        many.push_back(
            std::async(std::launch::async, [&] { return http_ping(paths.docker_socket); }));
    for (auto& f : many) EXPECT_EQ(f.get(), "OK");
    EXPECT_EQ(guest.connections(), 1) << "one channel connection carries every stream";
}

TEST_F(HostAgentProcess, SocketsAreOnlyForTheUser) {
    FakeGuest guest(paths.channel_socket);
    start_agent();
    for (const auto& p : {paths.docker_socket, paths.control_socket}) {
        struct stat st {};
        ASSERT_EQ(::lstat(p.c_str(), &st), 0);
        EXPECT_TRUE(S_ISSOCK(st.st_mode));
        EXPECT_EQ(st.st_mode & 0777, 0600u) << p;
        EXPECT_EQ(st.st_uid, ::getuid());
    }
}

TEST_F(HostAgentProcess, WaitsForTheChannelAndReconnectsAfterAGuestReboot) {
    // No guest yet: the agent starts anyway and a client waits for the channel.
    start_agent();
    auto early = std::async(std::launch::async, [&] { return ping(30s); });
    std::this_thread::sleep_for(500ms);
    FakeGuest guest(paths.channel_socket);
    EXPECT_EQ(early.get()["pong"], true);
    // The guest goes away (QEMU restart, reboot) and comes back.
    guest.drop();
    std::this_thread::sleep_for(300ms);
    guest.listen_again();
    EXPECT_TRUE(wait_for([&] { return guest.connections() >= 2; }, 10s))
        << "the agent did not reconnect";
    EXPECT_EQ(ping()["pong"], true);
    EXPECT_EQ(http_ping(paths.docker_socket), "OK");
}

TEST_F(HostAgentProcess, RemovesStaleSocketsAndRefusesASecondAgent) {
    // A socket file left by a process that died (nobody serves it).
    {
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, paths.docker_socket.c_str());
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        ::close(fd);
    }
    ASSERT_TRUE(fs::exists(paths.docker_socket));
    FakeGuest guest(paths.channel_socket);
    pid_t first = start_agent();
    EXPECT_EQ(http_ping(paths.docker_socket), "OK");
    // A second agent for the same VM exits with an error and leaves the first intact.
    auto second =
        cordon::run({CORDON_HOSTAGENT_PATH, "--channel", paths.channel_socket.string(),
                     "--docker-socket", paths.docker_socket.string(), "--control-socket",
                     paths.control_socket.string(), "--pid-file", paths.hostagent_pid.string()},
                    10s);
    EXPECT_EQ(second.exit_code, 3) << second.err;
    EXPECT_NE(second.err.find("another host agent"), std::string::npos) << second.err;
    EXPECT_EQ(cordon::host::hostagent_state(paths).pid, first);
    EXPECT_EQ(ping()["pong"], true);
}

TEST_F(HostAgentProcess, SigtermRemovesSocketsAndPidFile) {
    FakeGuest guest(paths.channel_socket);
    pid_t pid = start_agent();
    EXPECT_TRUE(cordon::host::stop_hostagent(paths, 5s));
    EXPECT_FALSE(cordon::host::hostagent_state(paths).alive);
    EXPECT_FALSE(cordon::host::process_alive(pid)) << "the agent process is still there";
    EXPECT_FALSE(fs::exists(paths.docker_socket));
    EXPECT_FALSE(fs::exists(paths.control_socket));
    EXPECT_FALSE(fs::exists(paths.hostagent_pid));
    EXPECT_TRUE(fs::exists(paths.channel_socket))
        << "the channel socket is QEMU's, not the agent's";
}

TEST_F(HostAgentProcess, AKilledAgentLeavesNothingAfterStop) {
    FakeGuest guest(paths.channel_socket);
    pid_t pid = start_agent();
    ::kill(pid, SIGKILL);
    ASSERT_TRUE(wait_for([&] { return !cordon::host::hostagent_state(paths).alive; }, 5s));
    EXPECT_TRUE(fs::exists(paths.docker_socket)) << "SIGKILL leaves the socket";
    cordon::host::stop_hostagent(paths);
    EXPECT_FALSE(fs::exists(paths.docker_socket));
    EXPECT_FALSE(fs::exists(paths.control_socket));
    EXPECT_FALSE(fs::exists(paths.hostagent_pid));
    // And a new agent starts cleanly on the same paths.
    start_agent();
    EXPECT_EQ(ping()["pong"], true);
}

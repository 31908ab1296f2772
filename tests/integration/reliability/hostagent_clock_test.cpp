// The real cordon-hostagent pushes the host's time to the guest: the test plays QEMU (it
// serves the channel's unix socket) and the guest agent (a guest-role Session with an RPC
// server answering time.sync), using the real channel library.
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <gtest/gtest.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "cordon/channel/session.hpp"
#include "cordon/rpc/rpc.hpp"
#include "cordon/subprocess.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cordon::rpc::json;

namespace {

std::int64_t realtime_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct SyncSeen {
    std::int64_t host_ns = 0;      // what the host agent sent
    std::int64_t received_ns = 0;  // our clock when it arrived
};

// Serves the channel socket like QEMU; answers ping and time.sync like the guest agent.
// `delay` holds each time.sync answer back (a paused VM).
class FakeGuest {
  public:
    explicit FakeGuest(fs::path channel) : channel_(std::move(channel)) {
        thread_ = std::thread([this] { run(); });
        std::unique_lock lock(mu_);
        listening_cv_.wait(lock, [this] { return listening_; });
    }
    ~FakeGuest() {
        asio::post(io_, [this] {
            if (session_)
                session_->close("test over");
            acceptor_.reset();
            work_.reset();
        });
        thread_.join();
    }
    std::vector<SyncSeen> syncs() {
        std::lock_guard lock(mu_);
        return syncs_;
    }
    void set_first_answer_delay(std::chrono::milliseconds d) { first_delay_ = d; }

  private:
    void run() {
        rpc_ = std::make_unique<cordon::rpc::Server>(io_, "fake-guest.rpc");
        rpc_->register_method("ping", [](const json&, cordon::rpc::Call&) {
            return json{{"pong", true}};
        });
        rpc_->register_async_method("time.sync", [this](std::shared_ptr<cordon::rpc::Call> call) {
            SyncSeen s{call->params().value("unix_ns", std::int64_t{0}), realtime_ns()};
            std::size_t n;
            {
                std::lock_guard lock(mu_);
                syncs_.push_back(s);
                n = syncs_.size();
            }
            auto answer = [call, s] {
                call->reply(
                    json{{"offset_ms", static_cast<double>(s.received_ns - s.host_ns) / 1e6},
                         {"stepped", false}});
            };
            if (n == 1 && first_delay_.count() > 0) {
                auto t = std::make_shared<asio::steady_timer>(io_, first_delay_);
                t->async_wait([t, answer](boost::system::error_code) { answer(); });
            } else {
                answer();
            }
        });
        ::unlink(channel_.c_str());
        acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(
            io_, asio::local::stream_protocol::endpoint(channel_.string()));
        accept();
        {
            std::lock_guard lock(mu_);
            listening_ = true;
        }
        listening_cv_.notify_all();
        io_.run();
        session_.reset();
        rpc_.reset();
    }
    void accept() {
        acceptor_->async_accept(
            [this](boost::system::error_code ec, asio::local::stream_protocol::socket s) {
                if (ec)
                    return;
                cordon::channel::SessionOptions o;
                o.role = cordon::channel::Role::guest;
                o.agent_version = "fake-guest 1";
                session_ = cordon::channel::Session::create(io_, cordon::UniqueFd(s.release()), o);
                session_->set_stream_handler(
                    [this](std::shared_ptr<cordon::channel::Stream> st, const std::string& svc) {
                        if (svc == "rpc")
                            rpc_->serve(st);
                        else
                            st->reset("unknown service");
                    });
                session_->start([](boost::system::error_code, const cordon::channel::PeerInfo&) {});
                accept();
            });
    }

    fs::path channel_;
    asio::io_context io_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
        asio::make_work_guard(io_)};
    std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor_;
    std::shared_ptr<cordon::channel::Session> session_;
    std::unique_ptr<cordon::rpc::Server> rpc_;
    std::mutex mu_;
    std::condition_variable listening_cv_;
    bool listening_ = false;
    std::vector<SyncSeen> syncs_;
    std::chrono::milliseconds first_delay_{0};
    std::thread thread_;
};

class HostAgentClock : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/cordon-clock-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
    }
    void TearDown() override {
        agent_.terminate(5s);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    void start_agent(int interval_s) {
        cordon::SpawnOptions o;
        o.capture_output = false;
        agent_ = cordon::Child::spawn(
            {CORDON_HOSTAGENT_PATH, "--vm", "clock-test", "--channel", (dir_ / "ch.sock").string(),
             "--docker-socket", (dir_ / "docker.sock").string(), "--control-socket",
             (dir_ / "control.sock").string(), "--pid-file", (dir_ / "agent.pid").string(),
             "--clock-sync-interval", std::to_string(interval_s)},
            o);
    }
    template <class Pred>
    bool wait_until(Pred pred, std::chrono::milliseconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end) {
            if (pred())
                return true;
            std::this_thread::sleep_for(20ms);
        }
        return pred();
    }
    fs::path dir_;
    cordon::Child agent_;
};

}  // namespace

TEST_F(HostAgentClock, PushesTheHostTimeWhenTheChannelComesUpAndPeriodically) {
    FakeGuest guest(dir_ / "ch.sock");
    const auto t0 = std::chrono::steady_clock::now();
    start_agent(1);
    ASSERT_TRUE(wait_until([&] { return !guest.syncs().empty(); }, 10s))
        << "no time.sync after the channel came up";
    const double first_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(first_s, 5.0);
    // The time it carries is the host's now (within the transit of a local socket).
    const SyncSeen s = guest.syncs().front();
    EXPECT_LT(std::llabs(s.received_ns - s.host_ns), 500'000'000LL);
    // Periodically: 1 s interval here.
    ASSERT_TRUE(wait_until([&] { return guest.syncs().size() >= 4; }, 10s))
        << guest.syncs().size() << " syncs";
}

TEST_F(HostAgentClock, SyncsAgainAtOnceWhenAnAnswerWasLate) {
    // The first answer is held 3 s, as if the VM was paused while the request waited: the
    // time it carried is stale, so the host agent must send a fresh one right away rather
    // than after its (long) interval.
    FakeGuest guest(dir_ / "ch.sock");
    guest.set_first_answer_delay(3s);
    start_agent(600);
    ASSERT_TRUE(wait_until([&] { return !guest.syncs().empty(); }, 10s));
    ASSERT_TRUE(wait_until([&] { return guest.syncs().size() >= 2; }, 8s))
        << "no second time.sync after a late answer";
    const auto all = guest.syncs();
    const double gap_s = static_cast<double>(all[1].received_ns - all[0].received_ns) / 1e9;
    EXPECT_GE(gap_s, 2.5);  // after the late answer...
    EXPECT_LT(gap_s, 5.0);  // ...and at once, not after 600 s
}

TEST_F(HostAgentClock, ZeroIntervalTurnsItOff) {
    FakeGuest guest(dir_ / "ch.sock");
    start_agent(0);
    std::this_thread::sleep_for(3s);
    EXPECT_TRUE(guest.syncs().empty());
}

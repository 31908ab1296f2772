// The guest's time.sync handler over a real RPC connection (a socketpair). It never
// steps the clock here: the test runs on the host, so every time it sends is the host's
// own (offset ~0) or refused before any clock is touched.
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include "clock_sync.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <time.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <thread>

#include "cordon/rpc/rpc.hpp"

namespace asio = boost::asio;
using cordon::agent::ClockSync;
using cordon::rpc::json;
using namespace std::chrono_literals;

namespace {

std::int64_t realtime_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

class TimeSync : public ::testing::Test {
  protected:
    void SetUp() override {
        int fds[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        server_ = std::make_unique<cordon::rpc::Server>(io_, "test.rpc");
        clock_.register_methods(*server_);
        asio::local::stream_protocol::socket s(io_);
        s.assign(asio::local::stream_protocol(), fds[0]);
        server_->serve(std::move(s));
        client_ = std::make_unique<cordon::rpc::BlockingClient>(cordon::UniqueFd(fds[1]));
        thread_ = std::thread([this] { io_.run(); });
    }
    void TearDown() override {
        client_.reset();
        io_.stop();
        thread_.join();
    }
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_{asio::make_work_guard(io_)};
    ClockSync clock_;
    std::unique_ptr<cordon::rpc::Server> server_;
    std::unique_ptr<cordon::rpc::BlockingClient> client_;
    std::thread thread_;
};

std::string error_code_of(cordon::rpc::BlockingClient& c, const json& params) {
    try {
        c.call("time.sync", params, 5s);
    } catch (const cordon::rpc::CallError& e) {
        return e.code();
    }
    return "";
}

}  // namespace

TEST(ClockSyncRule, StepsOnlyAtOrAboveTheThreshold) {
    EXPECT_FALSE(ClockSync::should_step(0));
    EXPECT_FALSE(ClockSync::should_step(99.9));
    EXPECT_FALSE(ClockSync::should_step(-99.9));
    EXPECT_TRUE(ClockSync::should_step(100));
    EXPECT_TRUE(ClockSync::should_step(-75'000));
    EXPECT_DOUBLE_EQ(ClockSync::offset_ms(2'000'000'000, 1'000'000'000), 1000.0);
    EXPECT_DOUBLE_EQ(ClockSync::offset_ms(1'000'000'000, 1'500'000'000), -500.0);
}

TEST_F(TimeSync, TheHostsOwnTimeIsLeftAlone) {
    const json r = client_->call("time.sync", {{"unix_ns", realtime_ns()}}, 5s);
    EXPECT_FALSE(r.value("stepped", true)) << r.dump();
    EXPECT_LT(std::abs(r.value("offset_ms", 1e9)), 100.0) << r.dump();
    const json info = clock_.info();
    EXPECT_EQ(info.value("syncs", 0), 1);
    EXPECT_EQ(info.value("steps", 1), 0);
    EXPECT_TRUE(info["last_sync_uptime_s"].is_number());
    EXPECT_LT(std::llabs(info.value("unix_ns", std::int64_t{0}) - realtime_ns()), 1'000'000'000LL);
}

TEST_F(TimeSync, BadParamsAreRefusedBeforeTheClockIsTouched) {
    EXPECT_EQ(error_code_of(*client_, json::object()), "invalid_params");
    EXPECT_EQ(error_code_of(*client_, {{"unix_ns", "now"}}), "invalid_params");
    EXPECT_EQ(error_code_of(*client_, {{"unix_ns", 1.5e18}}), "invalid_params");
    EXPECT_EQ(error_code_of(*client_, {{"unix_ns", 0}}), "invalid_params");  // 1970
    EXPECT_EQ(error_code_of(*client_, {{"unix_ns", -5}}), "invalid_params");
    EXPECT_EQ(error_code_of(*client_, {{"unix_ns", 9'000'000'000'000'000'000LL}}),
              "invalid_params");  // 2255
    EXPECT_EQ(clock_.info().value("syncs", 1), 0);
}

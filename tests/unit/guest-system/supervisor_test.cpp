#include "cordon/guest/supervisor.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <fstream>

#include "cordon/error.hpp"
#include "cordon/quiet_asio.hpp"  // GCC 12 false positive in Asio (see the header)
#include "test_util.hpp"

using namespace std::chrono_literals;
using cordon::guest::ServiceSpec;
using cordon::guest::ServiceState;
using cordon::guest::Supervisor;
using cordon::guest::test::run_until;
using cordon::guest::test::TempDir;

namespace {
ServiceSpec spec(std::string name, std::string script) {
    ServiceSpec s;
    s.name = std::move(name);
    s.argv = {"/bin/sh", "-c", std::move(script)};
    s.backoff_initial = 50ms;
    s.backoff_max = 400ms;
    s.stop_timeout = 2s;
    return s;
}
}  // namespace

TEST(Supervisor, CapturesOutputIntoTheRingBuffer) {
    boost::asio::io_context io;
    Supervisor sup(io);
    sup.add(spec("echo", "echo out-line; echo err-line >&2; exec sleep 60"));
    sup.start("echo");
    ASSERT_TRUE(run_until(io, [&] { return sup.logs("echo").size() >= 2; }));
    auto lines = sup.logs("echo");
    EXPECT_NE(std::find(lines.begin(), lines.end(), "out-line"), lines.end());
    EXPECT_NE(std::find(lines.begin(), lines.end(), "err-line"), lines.end());
    auto st = sup.status("echo");
    EXPECT_EQ(st.state, ServiceState::running);
    EXPECT_GT(st.pid, 0);
    EXPECT_EQ(st.restarts, 0u);
}

TEST(Supervisor, RestartsWithExponentialBackoff) {
    TempDir tmp;
    const std::string stamps = tmp.file("stamps");
    boost::asio::io_context io;
    Supervisor sup(io);
    // Each run appends a timestamp (ms) and fails at once.
    sup.add(spec("crash", "date +%s%3N >> " + stamps + "; echo crashing; exit 1"));
    sup.start("crash");
    auto exits = [&] {
        auto l = sup.logs("crash");
        return std::count(l.begin(), l.end(), "[supervisor] exited with status 1");
    };
    ASSERT_TRUE(run_until(
        io, [&] { return exits() >= 5; }, 10s));
    auto st = sup.status("crash");
    EXPECT_EQ(st.last_exit, "exited with status 1");
    std::ifstream in(stamps);
    std::vector<long long> t;
    long long v;
    while (in >> v) t.push_back(v);
    ASSERT_GE(t.size(), 5u);
    // Delays 50, 100, 200, 400 ms: each gap at least the backoff, and growing.
    EXPECT_GE(t[1] - t[0], 45);
    EXPECT_GE(t[2] - t[1], 95);
    EXPECT_GE(t[3] - t[2], 195);
    EXPECT_GE(t[4] - t[3], 395);
    auto lines = sup.logs("crash");
    EXPECT_GE(std::count(lines.begin(), lines.end(), "crashing"), 4);
    EXPECT_GE(std::count(lines.begin(), lines.end(), "[supervisor] exited with status 1"), 4);
}

TEST(Supervisor, BackoffIsCappedAtTheMaximum) {
    boost::asio::io_context io;
    Supervisor sup(io);
    auto s = spec("crash", "exit 2");
    s.backoff_max = 100ms;
    sup.add(s);
    sup.start("crash");
    ASSERT_TRUE(run_until(
        io, [&] { return sup.status("crash").restarts >= 6; }, 5s));
    EXPECT_LE(sup.status("crash").next_start_in, 100ms);
}

TEST(Supervisor, MissingProgramIsReportedAndRetried) {
    boost::asio::io_context io;
    Supervisor sup(io);
    ServiceSpec s;
    s.name = "ghost";
    s.argv = {"/nonexistent/ghostd"};
    s.backoff_initial = 20ms;
    sup.add(s);
    sup.start("ghost");
    ASSERT_TRUE(run_until(io, [&] { return !sup.status("ghost").last_error.empty(); }));
    auto st = sup.status("ghost");
    EXPECT_NE(st.last_error.find("/nonexistent/ghostd"), std::string::npos);
    EXPECT_EQ(st.state, ServiceState::backoff);
    EXPECT_EQ(st.starts, 0u);
}

TEST(Supervisor, WaitsForRequiredPaths) {
    TempDir tmp;
    const std::string flag = tmp.file("ready");
    boost::asio::io_context io;
    Supervisor sup(io);
    auto s = spec("late", "echo started; exec sleep 60");
    s.wait_for = {flag};
    s.wait_poll = 10ms;
    sup.add(s);
    sup.start("late");
    run_until(
        io, [] { return false; }, 100ms);
    EXPECT_EQ(sup.status("late").state, ServiceState::waiting);
    EXPECT_EQ(sup.status("late").waiting_for, flag);
    std::ofstream(flag) << "x";
    ASSERT_TRUE(run_until(io, [&] { return sup.status("late").state == ServiceState::running; }));
}

TEST(Supervisor, StopsInReverseOrderWithSigtermThenSigkill) {
    TempDir tmp;
    const std::string order = tmp.file("order");
    boost::asio::io_context io;
    Supervisor sup(io);
    sup.add(spec("first",
                 "trap 'echo first >> " + order + "; exit 0' TERM; while :; do sleep 0.05; done"));
    auto stubborn =
        spec("second", "trap 'echo second >> " + order + "' TERM; while :; do sleep 0.05; done");
    stubborn.stop_timeout = 300ms;
    sup.add(stubborn);
    sup.start_all();
    ASSERT_TRUE(run_until(io, [&] {
        return sup.status("first").state == ServiceState::running &&
               sup.status("second").state == ServiceState::running;
    }));
    run_until(
        io, [] { return false; }, 200ms);  // let the shells install their traps
    bool done = false;
    const auto t0 = std::chrono::steady_clock::now();
    sup.stop_all([&] { done = true; });
    ASSERT_TRUE(run_until(
        io, [&] { return done; }, 10s));
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 300ms);  // the stubborn one needed SIGKILL after its timeout
    EXPECT_EQ(sup.status("first").state, ServiceState::stopped);
    EXPECT_EQ(sup.status("second").state, ServiceState::stopped);
    EXPECT_NE(sup.status("second").last_exit.find("signal 9"), std::string::npos);
    std::ifstream in(order);
    std::string a, b;
    in >> a >> b;
    EXPECT_EQ(a, "second");  // reverse order: second was asked first
    EXPECT_EQ(b, "first");
    // No restart after stop.
    run_until(
        io, [] { return false; }, 200ms);
    EXPECT_EQ(sup.status("first").state, ServiceState::stopped);
}

TEST(Supervisor, UnknownServiceAndBadSpecsAreErrors) {
    boost::asio::io_context io;
    Supervisor sup(io);
    EXPECT_THROW(sup.logs("nope"), cordon::Error);
    EXPECT_THROW(sup.status("nope"), cordon::Error);
    EXPECT_THROW(sup.start("nope"), cordon::Error);
    EXPECT_THROW(sup.add(ServiceSpec{}), cordon::Error);
    sup.add(spec("a", "true"));
    EXPECT_THROW(sup.add(spec("a", "true")), cordon::Error);
}

TEST(Supervisor, StartHookSeesEveryStart) {
    boost::asio::io_context io;
    Supervisor sup(io);
    sup.add(spec("x", "exit 0"));
    int starts = 0;
    sup.set_start_hook([&](const std::string& name, int pid) {
        EXPECT_EQ(name, "x");
        EXPECT_GT(pid, 0);
        ++starts;
    });
    sup.start("x");
    ASSERT_TRUE(run_until(io, [&] { return starts >= 2; }));
}

// A refusal before start (the engine's mount guard unavailable) keeps the service down with
// the reason, and is asked again at each retry; an answer of "" lets it start.
TEST(Supervisor, BeforeStartCanRefuseAStartWithItsReason) {
    boost::asio::io_context io;
    Supervisor sup(io);
    int asked = 0;
    auto s = spec("guarded", "exec sleep 60");
    s.before_start = [&asked] { return ++asked < 3 ? std::string("no guard yet") : std::string(); };
    sup.add(s);
    sup.start("guarded");
    ASSERT_TRUE(run_until(io, [&] { return asked == 1; }));
    EXPECT_NE(sup.status("guarded").state, ServiceState::running);
    EXPECT_EQ(sup.status("guarded").last_error, "no guard yet");
    ASSERT_TRUE(
        run_until(io, [&] { return sup.status("guarded").state == ServiceState::running; }));
    EXPECT_EQ(asked, 3);
    EXPECT_EQ(sup.status("guarded").starts, 1u);
}

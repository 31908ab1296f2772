#include "cordon/loop_watchdog.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <mutex>
#include <thread>
#include <vector>

namespace {
using namespace std::chrono_literals;

struct Lines {
    std::mutex m;
    std::vector<std::string> v;
    void add(const std::string& l) {
        std::lock_guard g(m);
        v.push_back(l);
    }
    std::vector<std::string> get() {
        std::lock_guard g(m);
        return v;
    }
};

// An io_context run by a thread of its own until the end of the scope.
struct LoopThread {
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard =
        boost::asio::make_work_guard(io);
    std::thread thread{[this] { io.run(); }};
    ~LoopThread() {
        guard.reset();
        io.stop();
        thread.join();
    }
};

cordon::LoopWatchdog::Options options(Lines& lines) {
    cordon::LoopWatchdog::Options o;
    o.threshold = 200ms;
    o.probe_every = 20ms;
    o.component = "test";
    o.also = [&lines](const std::string& l) { lines.add(l); };
    return o;
}

}  // namespace

TEST(LoopWatchdog, ABlockedLoopIsReportedWithWhereItWaitsAndWhenItRunsAgain) {
    Lines lines;
    LoopThread loop;
    auto& io = loop.io;
    {
        cordon::LoopWatchdog dog(io, options(lines));
        std::this_thread::sleep_for(100ms);  // a few probes run: the loop thread is known
        // A handler that blocks in the kernel (nanosleep) for 5 thresholds.
        boost::asio::post(io, [] { std::this_thread::sleep_for(1s); });
        std::this_thread::sleep_for(1300ms);
        EXPECT_EQ(dog.stalls(), 1u);
    }
    const auto got = lines.get();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_NE(got[0].find("has run nothing for"), std::string::npos) << got[0];
    // The thread was sleeping: its state is S (wchan/stack need privileges; state does not).
    EXPECT_NE(got[0].find("state S"), std::string::npos) << got[0];
    EXPECT_NE(got[1].find("runs again after"), std::string::npos) << got[1];
}

TEST(LoopWatchdog, GivesUpOnceAfterALongStall) {
    Lines lines;
    LoopThread loop;
    auto& io = loop.io;
    std::atomic<int> gave_up{0};
    {
        auto o = options(lines);
        o.give_up_after = 500ms;
        o.give_up = [&] { ++gave_up; };
        cordon::LoopWatchdog dog(io, o);
        std::this_thread::sleep_for(100ms);
        boost::asio::post(io,
                          [] { std::this_thread::sleep_for(300ms); });  // a stall, not long enough
        std::this_thread::sleep_for(500ms);
        EXPECT_EQ(gave_up.load(), 0);
        boost::asio::post(io, [] { std::this_thread::sleep_for(1200ms); });
        std::this_thread::sleep_for(1500ms);
    }
    EXPECT_EQ(gave_up.load(), 1);
    bool said = false;
    for (const auto& l : lines.get())
        said |= l.find("giving up on this process") != std::string::npos;
    EXPECT_TRUE(said);
}

TEST(LoopWatchdog, ABusyButResponsiveLoopIsNotReported) {
    Lines lines;
    LoopThread loop;
    auto& io = loop.io;
    {
        cordon::LoopWatchdog dog(io, options(lines));
        // 40 handlers of 20 ms each: always busy, never 200 ms without running a handler.
        for (int i = 0; i < 40; ++i) {
            boost::asio::post(io, [] { std::this_thread::sleep_for(20ms); });
            std::this_thread::sleep_for(20ms);
        }
        EXPECT_EQ(dog.stalls(), 0u);
    }
    EXPECT_TRUE(lines.get().empty());
}

TEST(LoopWatchdog, DescribesAThreadFromProc) {
    const std::string d = cordon::LoopWatchdog::describe_thread(static_cast<int>(::gettid()));
    EXPECT_NE(d.find("state R"), std::string::npos) << d;  // this thread, running
    EXPECT_NE(cordon::LoopWatchdog::describe_thread(999999999).find("nothing readable"),
              std::string::npos);
}

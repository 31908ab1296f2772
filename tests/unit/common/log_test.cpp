#include "cordon/log.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "cordon/unique_fd.hpp"

namespace {
using namespace std::chrono_literals;

// stderr pointed at a pipe for the test's duration.
struct StderrToPipe {
    cordon::UniqueFd read_end, saved;
    bool restored = false;
    StderrToPipe() {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe2");
        read_end = cordon::UniqueFd(p[0]);
        saved = cordon::UniqueFd(::dup(STDERR_FILENO));
        ::dup2(p[1], STDERR_FILENO);
        ::close(p[1]);
    }
    ~StderrToPipe() { restore(); }
    // Points stderr back: the pipe's only write end closes, so a reader sees EOF.
    void restore() {
        if (!std::exchange(restored, true))
            ::dup2(saved.get(), STDERR_FILENO);
    }
    // Everything written until restore(), read by a thread while `writes` runs and then
    // the log's queue drains (a reader that stopped early would leave the writer blocked).
    std::string collect(const std::function<void()>& writes) {
        std::string out;
        std::thread reader([&] {
            char buf[65536];
            for (ssize_t n; (n = ::read(read_end.get(), buf, sizeof buf)) > 0;)
                out.append(buf, static_cast<size_t>(n));
        });
        writes();
        cordon::log::set_stderr_queue(0);  // drains, then writes go straight to stderr
        restore();
        reader.join();
        return out;
    }
};

}  // namespace

TEST(LogStderrQueue, ABlockedStderrDoesNotBlockTheLoggerAndDropsAreCounted) {
    StderrToPipe pipe;
    ::fcntl(pipe.read_end.get(), F_SETPIPE_SZ, 4096);
    cordon::log::set_stderr_queue(100);
    // Far more than the pipe (4 KiB) and the queue (100 lines) hold, with nobody reading.
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 2000; ++i)
        cordon::log::warn("test", "line {} {}", i, std::string(100, 'x'));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "the logger waited for stderr";
    // Now read: the writer thread drains, then reports what it dropped.
    const std::string got = pipe.collect([] {});
    EXPECT_NE(got.find("warn test: line 0 "), std::string::npos);
    EXPECT_NE(got.find("lines were dropped: stderr did not keep up"), std::string::npos);
    EXPECT_EQ(got.find("line 1999 "), std::string::npos)
        << "the last lines came after the queue was full";
}

TEST(LogStderrQueue, EveryLineArrivesInOrderWhenStderrKeepsUp) {
    StderrToPipe pipe;
    cordon::log::set_stderr_queue(1000);
    const std::string got = pipe.collect([] {
        for (int i = 0; i < 200; ++i) cordon::log::warn("test", "n{}", i);
    });
    std::size_t at = 0;
    for (int i = 0; i < 200; ++i) {
        const auto pos = got.find("warn test: n" + std::to_string(i) + "\n", at);
        ASSERT_NE(pos, std::string::npos) << "line " << i;
        at = pos;
    }
    EXPECT_EQ(got.find("dropped"), std::string::npos);
}

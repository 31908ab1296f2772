#include <gtest/gtest.h>
#include <signal.h>

#include "cordon/error.hpp"
#include "cordon/subprocess.hpp"

using namespace std::chrono_literals;

TEST(Subprocess, CapturesOutputAndExitCode) {
    auto r = cordon::run({"sh", "-c", "echo out; echo err >&2; exit 3"}, 5s);
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err\n");
    EXPECT_FALSE(r.ok());
}

TEST(Subprocess, FeedsStdinAndSetsEnvironment) {
    cordon::SpawnOptions o;
    o.stdin_data = std::string(200000, 'x');
    o.env_overrides = {"CORDON_TEST_VAR=hello"};
    auto r = cordon::run({"sh", "-c", "wc -c; echo $CORDON_TEST_VAR"}, 5s, o);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.out, "200000\nhello\n");
}

TEST(Subprocess, TimeoutKillsTheChild) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = cordon::run({"sleep", "30"}, 300ms);
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.signal, SIGKILL);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(Subprocess, MissingProgramIsAClearError) {
    try {
        cordon::run({"cordon-no-such-program"}, 1s);
        FAIL();
    } catch (const cordon::Error& e) {
        EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos);
    }
}

TEST(Subprocess, DestroyingARunningChildKillsIt) {
    pid_t pid;
    {
        auto c = cordon::Child::spawn({"sleep", "30"});
        pid = c.pid();
        EXPECT_TRUE(c.running());
    }
    EXPECT_EQ(::kill(pid, 0), -1);
}

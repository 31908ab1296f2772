#include "cordon/guest/child_process.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "cordon/error.hpp"

using cordon::guest::ChildProcess;
using cordon::guest::describe_wait_status;
using cordon::guest::SpawnOptions;

namespace {
SpawnOptions cmd(std::vector<std::string> argv) {
    SpawnOptions o;
    o.argv = std::move(argv);
    return o;
}
}  // namespace

TEST(ChildProcess, ReportsTheExitStatus) {
    auto child = ChildProcess::spawn(cmd({"/bin/sh", "-c", "exit 3"}));
    const int status = child.wait();
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 3);
    EXPECT_EQ(describe_wait_status(status), "exited with status 3");
}

TEST(ChildProcess, FindsProgramsInPathAndPassesEnvironment) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    SpawnOptions o;
    o.argv = {"sh", "-c", "printf '%s' \"$CORDON_TEST_VALUE\""};
    o.env = {"CORDON_TEST_VALUE=forty-two"};
    o.output_fd = fds[1];
    auto child = ChildProcess::spawn(o);
    close(fds[1]);
    child.wait();
    char buf[64] = {};
    const auto n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "forty-two");
}

TEST(ChildProcess, MissingProgramIsAClearError) {
    try {
        ChildProcess::spawn(cmd({"/nonexistent/cordon-test-program"}));
        FAIL() << "spawn should have thrown";
    } catch (const cordon::Error& e) {
        EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos)
            << e.what();
        EXPECT_EQ(e.subject(), "/nonexistent/cordon-test-program");
    }
    EXPECT_THROW(ChildProcess::spawn(cmd({})), cordon::Error);
}

TEST(ChildProcess, DestructorKillsAndReapsARunningChild) {
    pid_t pid = 0;
    {
        auto child = ChildProcess::spawn(cmd({"/bin/sleep", "60"}));
        pid = child.pid();
        ASSERT_GT(pid, 0);
        EXPECT_EQ(kill(pid, 0), 0);
        EXPECT_FALSE(child.try_reap());
    }
    // Reaped: the pid no longer names our child.
    EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
}

TEST(ChildProcess, SignalsReachTheChild) {
    auto child = ChildProcess::spawn(cmd({"/bin/sleep", "60"}));
    EXPECT_TRUE(child.signal(SIGTERM));
    const int status = child.wait();
    ASSERT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGTERM);
    EXPECT_NE(describe_wait_status(status).find("killed by signal 15"), std::string::npos);
    EXPECT_FALSE(child.signal(SIGTERM));  // reaped: no-op
}

TEST(ChildProcess, StartsInTheWorkingFolderAskedFor) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    SpawnOptions o = cmd({"/bin/sh", "-c", "pwd"});
    o.cwd = "/tmp";
    o.output_fd = fds[1];
    auto child = ChildProcess::spawn(o);
    close(fds[1]);
    child.wait();
    char buf[64] = {};
    const auto n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "/tmp\n");
}

TEST(ChildProcess, AMissingCgroupOrFolderFailsTheSpawnWithWhatFailed) {
    SpawnOptions in_cgroup = cmd({"/bin/true"});
    in_cgroup.cgroup = "/nonexistent/cordon-test-cgroup";
    try {
        ChildProcess::spawn(in_cgroup);
        FAIL() << "spawn should have thrown";
    } catch (const cordon::Error& e) {
        EXPECT_NE(std::string(e.what()).find("cordon-test-cgroup/cgroup.procs"), std::string::npos)
            << e.what();
    }
    SpawnOptions in_folder = cmd({"/bin/true"});
    in_folder.cwd = "/nonexistent/cordon-test-folder";
    try {
        ChildProcess::spawn(in_folder);
        FAIL() << "spawn should have thrown";
    } catch (const cordon::Error& e) {
        EXPECT_NE(std::string(e.what()).find("in /nonexistent/cordon-test-folder: No such file"),
                  std::string::npos)
            << e.what();
    }
}

// stop_leftover_services: what a killed guest agent left running is stopped by the next
// one, but only a process whose pid file and command name both match (a reused pid is
// never hit). Real processes (`sleep`) stand in for dockerd.
#include "cordon/guest/leftovers.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cordon/subprocess.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cordon::guest::record_service_pid;
using cordon::guest::service_pid_file;
using cordon::guest::stop_leftover_services;

namespace {

class Leftovers : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/cordon-leftovers-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    cordon::Child sleeper() {
        cordon::SpawnOptions o;
        o.capture_output = false;
        return cordon::Child::spawn({"sleep", "600"}, o);
    }
    std::string dir_;
};

bool alive_not_zombie(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line))
        return false;
    return line.find(") Z") == std::string::npos;
}

}  // namespace

TEST_F(Leftovers, AMatchingLeftoverIsKilledAndItsPidFileRemoved) {
    auto child = sleeper();
    record_service_pid(dir_, "dockerd", child.pid());
    ASSERT_TRUE(fs::exists(service_pid_file(dir_, "dockerd")));
    auto found = stop_leftover_services(dir_, {{"dockerd", "/usr/bin/sleep"}}, 5s);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].name, "dockerd");
    EXPECT_EQ(found[0].pid, child.pid());
    EXPECT_TRUE(found[0].stopped);
    EXPECT_FALSE(alive_not_zombie(child.pid()));
    EXPECT_FALSE(fs::exists(service_pid_file(dir_, "dockerd")));
}

TEST_F(Leftovers, AProcessOfAnotherNameIsLeftAlone) {
    auto child = sleeper();
    record_service_pid(dir_, "dockerd", child.pid());  // the pid now belongs to "sleep"
    auto found = stop_leftover_services(dir_, {{"dockerd", "dockerd"}}, 1s);
    EXPECT_TRUE(found.empty());
    EXPECT_TRUE(alive_not_zombie(child.pid()));
    child.terminate(1s);
}

TEST_F(Leftovers, MissingOrBrokenPidFilesFindNothing) {
    EXPECT_TRUE(stop_leftover_services(dir_, {{"dockerd", "dockerd"}}, 1s).empty());
    fs::create_directories(dir_ + "/services");
    std::ofstream(service_pid_file(dir_, "containerd")) << "not a pid\n";
    std::ofstream(service_pid_file(dir_, "dockerd")) << "1\n";  // init: never
    EXPECT_TRUE(
        stop_leftover_services(dir_, {{"dockerd", "init"}, {"containerd", "containerd"}}, 1s)
            .empty());
}

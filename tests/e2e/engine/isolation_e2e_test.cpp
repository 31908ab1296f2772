// Root in a container maps to an unprivileged VM user with isolation on, and to
// root with it off; the switch is live and images and volumes follow it.
// A real VM under libvirt, the real docker CLI through the host agent and proxy.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "client_conformance.hpp"
#include "cordon_e2e.hpp"

using cordon::e2e::describe;
using cordon::e2e::VmEnvironment;
using namespace std::chrono_literals;

namespace {

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// "0     100000      65536" -> "0 100000 65536"
std::string squeeze(const std::string& s) {
    std::string out;
    bool space = false;
    for (char c : trim(s)) {
        if (c == ' ' || c == '\t') {
            space = !out.empty();
            continue;
        }
        if (space)
            out += ' ';
        space = false;
        out += c;
    }
    return out;
}

std::string uid_map(const VmEnvironment& vm) {
    auto r = vm.docker({"run", "--rm", vm.test_image(), "cat", "/proc/self/uid_map"});
    EXPECT_TRUE(r.ok()) << describe(r);
    return squeeze(r.out);
}

void set_isolation(const VmEnvironment& vm, bool on) {
    auto r = vm.vmctl({"isolation", on ? "on" : "off", "--yes"}, 600s);
    ASSERT_TRUE(r.ok()) << describe(r);
    auto st = vm.vmctl({"isolation", "status", "--json"}, 60s);
    ASSERT_TRUE(st.ok()) << describe(st);
    auto j = nlohmann::json::parse(st.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << st.out;
    EXPECT_EQ(j.value("enabled", !on), on) << st.out;
}

}  // namespace

class Isolation : public ::testing::Test {
  protected:
    void SetUp() override {
        CORDON_REQUIRE_VM();
        VmEnvironment::get().ensure_test_image();
    }
};

TEST_F(Isolation, StatusReportsTheVmUserAndRange) {
    auto& vm = VmEnvironment::get();
    set_isolation(vm, true);
    auto st = vm.vmctl({"isolation", "status", "--json"}, 60s);
    ASSERT_TRUE(st.ok()) << describe(st);
    auto j = nlohmann::json::parse(st.out);
    EXPECT_EQ(j["user"], "cordon");
    EXPECT_EQ(j["uid_range"]["start"], 100000);
    EXPECT_EQ(j["uid_range"]["count"], 65536);
    EXPECT_FALSE(j.value("engine_version", "").empty());
    EXPECT_FALSE(j["locked"].get<bool>());
}

TEST_F(Isolation, RootMapsToTheVmUserWhenOnAndToRootWhenOff) {
    auto& vm = VmEnvironment::get();
    set_isolation(vm, true);
    EXPECT_EQ(uid_map(vm), "0 100000 65536");
    set_isolation(vm, false);
    EXPECT_EQ(uid_map(vm), "0 0 4294967295");
    // Twice each way: images stay usable.
    set_isolation(vm, true);
    EXPECT_EQ(uid_map(vm), "0 100000 65536");
}

// Issue 20: the client libraries work through the socket with isolation off too (the
// proxy then only parses and audits; the proxy suite runs them with it on).
TEST_F(Isolation, ClientLibrariesWorkThroughTheSocketWithIsolationOff) {
    auto& vm = VmEnvironment::get();
    set_isolation(vm, false);
    vm.ensure_test_image();
    // dockerode (its own hijacked streams and body fields) is the one run with it off; the
    // Python SDK covers the same calls with it on in the proxy suite (CI time).
    cordon::e2e::clients::run_dockerode(vm, false);
    set_isolation(vm, true);
}

TEST_F(Isolation, FilesContainerRootWritesInAVolumeBelongToTheMappedUser) {
    auto& vm = VmEnvironment::get();
    set_isolation(vm, true);
    auto create = vm.docker({"volume", "create", "e2e-owner"});
    ASSERT_TRUE(create.ok()) << describe(create);
    auto w = vm.docker(
        {"run", "--rm", "-v", "e2e-owner:/data", vm.test_image(), "sh", "-c", "echo hi > /data/f"});
    ASSERT_TRUE(w.ok()) << describe(w);
    auto st = vm.vm_exec("stat -c %u /var/lib/docker/100000.100000/volumes/e2e-owner/_data/f");
    ASSERT_TRUE(st.ok()) << describe(st);
    EXPECT_EQ(trim(st.out), "100000");
    // Inside the container, the same file is root's.
    auto in = vm.docker(
        {"run", "--rm", "-v", "e2e-owner:/data", vm.test_image(), "stat", "-c", "%u", "/data/f"});
    ASSERT_TRUE(in.ok()) << describe(in);
    EXPECT_EQ(trim(in.out), "0");
}

TEST_F(Isolation, ARunningContainerNeedsConfirmationBeforeTheSwitch) {
    auto& vm = VmEnvironment::get();
    set_isolation(vm, true);
    auto run = vm.docker({"run", "-d", "--name", "e2e-sleeper", vm.test_image(), "sleep", "600"});
    ASSERT_TRUE(run.ok()) << describe(run);
    auto refused = vm.vmctl({"isolation", "off"}, 120s);
    EXPECT_FALSE(refused.ok());
    EXPECT_NE((refused.out + refused.err).find("e2e-sleeper"), std::string::npos)
        << describe(refused);
    EXPECT_EQ(squeeze(vm.docker({"inspect", "-f", "{{.State.Running}}", "e2e-sleeper"}).out),
              "true");
    set_isolation(vm, false);  // with --yes: stops it
    vm.docker({"rm", "-f", "e2e-sleeper"});
    set_isolation(vm, true);
}

TEST_F(Isolation, VolumeDataFollowsTheSwitchAndSurvivesARestart) {
    auto& vm = VmEnvironment::get();
    set_isolation(vm, true);
    ASSERT_TRUE(vm.docker({"volume", "create", "e2e-keep"}).ok());
    auto w = vm.docker({"run", "--rm", "-v", "e2e-keep:/data", vm.test_image(), "sh", "-c",
                        "echo kept > /data/file && chmod 600 /data/file"});
    ASSERT_TRUE(w.ok()) << describe(w);
    set_isolation(vm, false);
    auto r1 =
        vm.docker({"run", "--rm", "-v", "e2e-keep:/data", vm.test_image(), "cat", "/data/file"});
    ASSERT_TRUE(r1.ok()) << describe(r1);
    EXPECT_EQ(trim(r1.out), "kept");
    set_isolation(vm, true);
    auto restart = vm.vmctl({"restart"}, 900s);
    ASSERT_TRUE(restart.ok()) << describe(restart);
    auto r2 =
        vm.docker({"run", "--rm", "-v", "e2e-keep:/data", vm.test_image(), "cat", "/data/file"});
    if (!r2.ok()) {
        // Seen once in CI on a machine running two other VMs: the first run after a restart
        // lost its connections (EOF). Keep the evidence, then require a second run to work.
        std::cerr << "first run after the restart failed: " << describe(r2) << "\n--- engine log\n"
                  << vm.vmctl({"logs", "engine"}, 60s).out << "\n--- agent info\n"
                  << vm.vmctl({"status", "--json"}, 60s).out << "\n--- host agent log\n"
                  << vm.vmctl({"logs", "hostagent", "-n", "60"}, 60s).out << "\n--- console\n"
                  << vm.vmctl({"logs", "console", "-n", "120"}, 60s).out << std::endl;
        // The channel must come back by itself (the host reconnects; a stuck guest agent
        // is ended by its watchdog after 60 s and restarted by init).
        const auto t0 = std::chrono::steady_clock::now();
        bool back = false;
        while (!back && std::chrono::steady_clock::now() - t0 < 150s) {
            back = vm.vmctl({"status", "--json"}, 30s).out.find("\"reachable\": true") !=
                   std::string::npos;
            if (!back)
                std::this_thread::sleep_for(2s);
        }
        std::cerr << "the guest agent is " << (back ? "reachable again" : "still unreachable")
                  << " after "
                  << std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::steady_clock::now() - t0)
                         .count()
                  << " s" << std::endl;
        r2 = vm.docker(
            {"run", "--rm", "-v", "e2e-keep:/data", vm.test_image(), "cat", "/data/file"});
    }
    ASSERT_TRUE(r2.ok()) << describe(r2);
    EXPECT_EQ(trim(r2.out), "kept");
    EXPECT_EQ(uid_map(vm), "0 100000 65536");  // the choice persisted across the restart
}

// Issue 9: an isolation switch killed half-way (kill -9 of the guest agent after its first
// volume moved, paused there by the agent's test hook) is finished by the restarted agent:
// the volumes' data is there, re-owned, in the mode the switch was going to.
TEST_F(Isolation, ASwitchKilledHalfWayIsFinishedByTheRestartedAgent) {
    auto& vm = VmEnvironment::get();
    set_isolation(vm, true);
    const auto t0 = std::chrono::steady_clock::now();
    auto w = vm.docker(
        {"run", "--rm", "-v", "e2e-j1:/a", "-v", "e2e-j2:/b", vm.test_image(), "sh", "-c",
         "echo e2e-j1 > /a/file && echo e2e-j2 > /b/file && chmod 600 /a/file /b/file && sync"});
    ASSERT_TRUE(w.ok()) << describe(w);
    const auto took = [&] {
        return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                t0)
            .count();
    };
    std::cout << "[ info ] volumes written after " << took() << " s\n";
    // The switch holds after its first moved volume (the agent's test hook); a watcher in
    // the VM kills the agent there, so nothing polls the slow TCG guest meanwhile.
    const std::string pause = "/run/cordon/isolation-switch.pause";
    auto k =
        vm.vm_exec("echo 'volume moved' > " + pause +
                   " && setsid sh -c 'i=0; while [ ! -e /run/cordon/isolation-switch.paused ] && "
                   "[ $i -lt 1200 ]; do sleep 0.5; i=$((i+1)); done; "
                   "kill -9 $(pidof cordon-guest-agent)' </dev/null >/dev/null 2>&1 &");
    ASSERT_TRUE(k.ok()) << describe(k);
    auto off = std::async(std::launch::async, [&] {
        return vm.vmctl({"isolation", "off", "--yes"}, 600s);
    });
    ASSERT_EQ(off.wait_for(600s), std::future_status::ready);
    const auto killed = std::chrono::steady_clock::now();
    const auto since = [&] {
        return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                killed)
            .count();
    };
    std::cout << "[ info ] switch killed after its first volume after " << took() << " s\n";
    const auto switched = off.get();
    EXPECT_FALSE(switched.ok()) << "the switch was not killed: " << describe(switched);
    EXPECT_NE(switched.err.find("connection closed"), std::string::npos) << describe(switched);
    // The restarted agent says what it finished.
    std::string reason;
    for (int i = 0; i < 150 && reason.find("isolation switch") == std::string::npos; ++i) {
        auto st = nlohmann::json::parse(vm.vmctl({"status", "--json"}, 60s).out, nullptr, false);
        if (st.is_object()) {
            const auto info = st["guest_agent"].value("info", nlohmann::json::object());
            if (info.is_object() && info.contains("engine") && info["engine"].contains("start"))
                reason = info["engine"]["start"].value("reason", "");
        }
        if (reason.find("isolation switch") == std::string::npos)
            std::this_thread::sleep_for(2s);
    }
    vm.vm_exec("rm -f " + pause);
    EXPECT_NE(reason.find("finished an interrupted isolation switch"), std::string::npos) << reason;
    std::cout << "[ info ] agent restarted " << since() << " s after the kill: " << reason << "\n";
    // dockerd starts after the recovery; the saved images load once it answers.
    bool images = false;
    for (int i = 0; i < 150 && !images; ++i) {
        images = vm.docker({"image", "inspect", "-f", "{{.Id}}", vm.test_image()}, 60s).ok();
        if (!images)
            std::this_thread::sleep_for(2s);
    }
    EXPECT_TRUE(images) << "the images saved by the killed switch were not loaded";
    std::cout << "[ info ] engine with the images back " << since() << " s after the kill\n";
    auto st = vm.vmctl({"isolation", "status", "--json"}, 60s);
    auto j = nlohmann::json::parse(st.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << describe(st);
    EXPECT_FALSE(j.value("enabled", true)) << st.out;
    EXPECT_EQ(j["interrupted_switch"].value("state", ""), "finished") << st.out;
    // In the plain data root, owned by VM root again (container root with isolation off).
    auto owners = vm.vm_exec(
        "stat -c '%u:%g %n' /var/lib/docker/volumes/e2e-j1/_data/file "
        "/var/lib/docker/volumes/e2e-j2/_data/file");
    EXPECT_EQ(trim(owners.out),
              "0:0 /var/lib/docker/volumes/e2e-j1/_data/file\n"
              "0:0 /var/lib/docker/volumes/e2e-j2/_data/file")
        << describe(owners);
    // The engine in force runs without remapping and sees the data.
    auto r = vm.docker({"run", "--rm", "-v", "e2e-j1:/a", "-v", "e2e-j2:/b", vm.test_image(), "sh",
                        "-c", "cat /a/file /b/file && cat /proc/self/uid_map"});
    ASSERT_TRUE(r.ok()) << describe(r);
    const auto data_end = r.out.find("e2e-j1\ne2e-j2\n");
    ASSERT_EQ(data_end, 0u) << describe(r);
    EXPECT_EQ(squeeze(r.out.substr(14)), "0 0 4294967295") << describe(r);
    std::cout << "[ info ] the case took " << took() << " s\n";
    // Last case of the suite: the VM stays with isolation off (every case sets the mode it needs).
}

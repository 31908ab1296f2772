// Faults injected into a running Cordon VM (issue 9, item 1): each test kills or breaks
// one part and asserts that Cordon recovers, says what happened, and loses no data.
// One real VM (libvirt + QEMU), the real docker CLI through the host agent and proxy.
// The cases run in this order on purpose: the last one destroys the VM and restarts it.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <future>
#include <iostream>
#include <sstream>

#include "reliability_support.hpp"

using namespace cordon::e2e;
using namespace cordon::e2e::reliability;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool contains_ci(std::string hay, std::string needle) {
    for (auto& c : hay) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& c : needle) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return hay.find(needle) != std::string::npos;
}

class Faults : public ::testing::Test {
  protected:
    void SetUp() override {
        CORDON_REQUIRE_VM();
        VmEnvironment::get().ensure_test_image();
    }
};

}  // namespace

TEST_F(Faults, DockerdKilledIsRestartedAndStatusCountsIt) {
    auto& vm = VmEnvironment::get();
    const int before = status_json(vm)["service_restarts"].value("dockerd", -1);
    ASSERT_GE(before, 0) << "vmctl status --json has no dockerd restart count";
    auto k = vm.vm_exec("kill -9 $(pidof dockerd)");
    ASSERT_TRUE(k.ok()) << describe(k);
    const auto t0 = Clock::now();
    int after = before;
    bool docker_ok = false;
    while (seconds_since(t0) < 180) {
        after = status_json(vm)["service_restarts"].value("dockerd", -1);
        if (after > before && (docker_ok = vm.docker({"version"}, 30s).ok()))
            break;
        std::this_thread::sleep_for(500ms);
    }
    std::cout << "[ numbers ] dockerd answered again " << seconds_since(t0) << " s after kill -9\n";
    EXPECT_EQ(after, before + 1);
    EXPECT_TRUE(docker_ok) << "docker did not answer after dockerd was restarted";
    // `vmctl status` gives the agent 3 s: under TCG on a loaded host, ask again.
    cordon::ProcessResult human;
    for (int i = 0; i < 10; ++i) {
        human = vm.vmctl({"status"}, 60s);
        if (human.out.find("guest agent: answering") != std::string::npos)
            break;
        std::this_thread::sleep_for(2s);
    }
    EXPECT_NE(human.out.find("dockerd " + std::to_string(before + 1)), std::string::npos)
        << human.out;
    auto r = vm.docker({"run", "--rm", vm.test_image(), "echo", "after-dockerd-restart"});
    EXPECT_TRUE(r.ok()) << describe(r);
}

namespace {

// What must not change when a restarted agent adopts the engine: the container (its id,
// its init's pid and PID namespace, its start time) and the engine's processes.
struct EngineSnapshot {
    std::string container;  // id, running, pid, started at
    std::string pid_ns;     // the container init's PID namespace
    std::string engine;     // pidof dockerd; pidof containerd
};

// vmctl exec, retried while libvirtd is away (exit 6: other tests on this machine
// restart it; the VM and its agents do not need it, but vmctl looks the VM up there).
cordon::ProcessResult exec_in_vm(const VmEnvironment& vm, const std::string& command) {
    cordon::ProcessResult r;
    for (int i = 0; i < 30; ++i) {
        r = vm.vm_exec(command);
        if (r.exit_code != 6)
            break;
        std::this_thread::sleep_for(2s);
    }
    return r;
}

std::string engine_pids(const VmEnvironment& vm) {
    return trim(exec_in_vm(vm, "pidof dockerd; pidof containerd").out);
}

EngineSnapshot snapshot(const VmEnvironment& vm, const std::string& container) {
    EngineSnapshot s;
    s.container = trim(
        vm.docker({"inspect", "-f",
                   "{{.Id}} {{.State.Running}} {{.State.Pid}} {{.State.StartedAt}}", container},
                  60s)
            .out);
    std::istringstream words(s.container);
    std::string id, running, pid;
    words >> id >> running >> pid;
    s.pid_ns = trim(exec_in_vm(vm, "readlink /proc/" + pid + "/ns/pid").out);
    s.engine = engine_pids(vm);
    return s;
}

// Kills the guest agent 1 s after the exec RPC that asks for it has answered (from a
// detached shell). Returns the moment of the kill.
Clock::time_point kill_guest_agent(const VmEnvironment& vm) {
    auto k = exec_in_vm(
        vm,
        "setsid sh -c 'sleep 1; kill -9 $(pidof cordon-guest-agent)' </dev/null >/dev/null 2>&1 &");
    EXPECT_TRUE(k.ok()) << describe(k);
    return Clock::now() + 1s;
}

// vmctl status --json with the guest agent's part: retried while vmctl cannot answer
// (libvirtd restarted by another test on this machine, the agent not answering yet).
json full_status(const VmEnvironment& vm) {
    json st;
    for (int i = 0; i < 30; ++i) {
        auto r = vm.vmctl({"status", "--json"}, 60s);
        st = json::parse(r.out, nullptr, false);
        if (st.is_object() && st.contains("service_restarts") && st.contains("paths"))
            return st;
        std::this_thread::sleep_for(2s);
    }
    ADD_FAILURE() << "vmctl status --json gave no full status: " << st.dump();
    return json{{"service_restarts", json::object()}, {"paths", json::object()}};
}

int dockerd_restarts(const VmEnvironment& vm) {
    return full_status(vm)["service_restarts"].value("dockerd", -1);
}

// The guest agent's info (control.sock), retried while it cannot answer.
json guest_info(const VmEnvironment& vm) {
    std::string error;
    for (int i = 0; i < 20; ++i) {
        try {
            const std::string control = full_status(vm)["paths"].value("control_socket", "");
            return cordon::rpc::BlockingClient::connect(control).call("info", json::object(), 10s);
        } catch (const std::exception& e) {
            error = e.what();
        }
        std::this_thread::sleep_for(2s);
    }
    ADD_FAILURE() << "the guest agent's info: " << error;
    return json::object();
}

// The engine section of the guest agent's info once the new agent has decided.
json engine_start(const VmEnvironment& vm) {
    json start;
    for (int i = 0; i < 40; ++i) {
        try {
            start = guest_info(vm)["engine"].value("start", json::object());
        } catch (const std::exception&) {
        }
        if (start.contains("path"))
            break;
        std::this_thread::sleep_for(500ms);
    }
    return start;
}

}  // namespace

TEST_F(Faults, GuestAgentKilledIsRestartedAndAdoptsTheRunningEngine) {
    auto& vm = VmEnvironment::get();
    auto w = vm.docker({"run", "--rm", "-v", "rel-agent:/d", vm.test_image(), "sh", "-c",
                        "echo keep-1 > /d/keep && sync"});
    ASSERT_TRUE(w.ok()) << describe(w);
    // A container that must live through the agent's death.
    auto lr = vm.docker({"run", "-d", "--name", "rel-survivor", vm.test_image(), "sleep", "1000"});
    ASSERT_TRUE(lr.ok()) << describe(lr);
    const EngineSnapshot before = snapshot(vm, "rel-survivor");
    ASSERT_NE(before.container.find(" true "), std::string::npos) << before.container;
    ASSERT_FALSE(before.pid_ns.empty());
    const int restarts0 = dockerd_restarts(vm);
    ASSERT_GE(restarts0, 0);
    const json info0 = guest_info(vm);
    // A call in flight: its connection runs through the agent that is about to die.
    auto inflight = std::async(std::launch::async, [&] {
        return vm.docker({"run", "--rm", "--name", "rel-inflight", vm.test_image(), "sleep", "120"},
                         300s);
    });
    const auto wait_start = Clock::now();
    while (trim(vm.docker({"ps", "-q", "--filter", "name=rel-inflight"}, 30s).out).empty() &&
           seconds_since(wait_start) < 90)
        std::this_thread::sleep_for(500ms);
    const auto killed = kill_guest_agent(vm);
    auto r = inflight.get();
    const double failed_after = seconds_since(killed);
    std::cout << "[ numbers ] the in-flight docker run ended " << failed_after
              << " s after the kill: " << trim(r.err) << "\n";
    EXPECT_FALSE(r.ok()) << "the in-flight call should have failed: " << describe(r);
    EXPECT_FALSE(r.timed_out) << "the in-flight call hung instead of failing";
    EXPECT_LT(failed_after, 60) << describe(r);

    const double back = wait_for_docker(vm, 180s);
    const double back_after_kill = seconds_since(killed);
    std::cout << "[ numbers ] docker answered again " << back_after_kill
              << " s after the guest agent's kill (engine adopted)\n";
    ASSERT_GE(back, 0) << "docker did not answer within 180 s after the guest agent was killed\n"
                       << vm.vmctl({"status"}, 60s).out;
    // The restart path took 15-61 s here; adoption answers in a few (TCG, loaded host).
    EXPECT_LE(back_after_kill, 20) << "docker came back too slowly for an adopted engine";
    const json start = engine_start(vm);
    std::cout << "[ numbers ] engine start: " << start.dump() << "\n";
    EXPECT_EQ(start.value("path", ""), "adopted") << start.dump(2);
    cordon::ProcessResult human;
    for (int i = 0; i < 30; ++i) {  // libvirtd may be restarted by other tests meanwhile
        human = vm.vmctl({"status"}, 60s);
        if (human.out.find("guest agent: answering") != std::string::npos)
            break;
        std::this_thread::sleep_for(2s);
    }
    EXPECT_NE(human.out.find("engine adopted from the previous agent"), std::string::npos)
        << human.out;

    // The container was not touched: same id, same init, same PID namespace; same engine.
    const EngineSnapshot after = snapshot(vm, "rel-survivor");
    EXPECT_EQ(after.container, before.container);
    EXPECT_EQ(after.pid_ns, before.pid_ns);
    EXPECT_EQ(after.engine, before.engine) << "dockerd or containerd was restarted";
    EXPECT_EQ(dockerd_restarts(vm), restarts0) << "an adoption is not a dockerd restart";
    const json info1 = guest_info(vm);
    EXPECT_GT(info1.value("uptime_s", 0.0), info0.value("uptime_s", 0.0)) << "the VM rebooted";
    EXPECT_EQ(info1["boot_count"], info0["boot_count"]) << "an agent restart is not a boot";
    for (const auto& svc : info1["services"]) {
        EXPECT_EQ(svc.value("state", ""), "running") << svc.dump();
        EXPECT_TRUE(svc.value("adopted", false)) << svc.dump();
    }
    auto c = vm.docker({"run", "--rm", "-v", "rel-agent:/d", vm.test_image(), "cat", "/d/keep"});
    ASSERT_TRUE(c.ok()) << describe(c);
    EXPECT_EQ(trim(c.out), "keep-1");
    // One engine, not two.
    auto n = exec_in_vm(vm, "pidof dockerd | wc -w; pidof containerd | wc -w");
    EXPECT_EQ(trim(n.out), "1\n1") << describe(n);
    // dockerd's output still reaches the agent's log ring (through its FIFO).
    cordon::ProcessResult logs;
    for (int i = 0; i < 30; ++i) {
        logs = vm.vmctl({"logs", "dockerd"}, 60s);
        if (logs.exit_code != 6)
            break;
        std::this_thread::sleep_for(2s);
    }
    EXPECT_NE(logs.out.find("adopted pid"), std::string::npos) << describe(logs);
    const auto mark = logs.out.find("adopted pid");
    std::cout << "[ numbers ] dockerd log lines read after the adoption: "
              << (mark == std::string::npos ? 0
                                            : std::count(logs.out.begin() + static_cast<long>(mark),
                                                         logs.out.end(), '\n') -
                                                  1)
              << "\n";
    vm.docker({"rm", "-f", "rel-survivor", "rel-inflight"}, 60s);
    vm.docker({"volume", "rm", "rel-agent"}, 60s);
}

TEST_F(Faults, GuestAgentKilledAfterTheEngineConfigChangedRestartsTheEngine) {
    auto& vm = VmEnvironment::get();
    auto w = vm.docker({"run", "--rm", "-v", "rel-agent2:/d", vm.test_image(), "sh", "-c",
                        "echo keep-2 > /d/keep && sync"});
    ASSERT_TRUE(w.ok()) << describe(w);
    const std::string engine_before = engine_pids(vm);
    // The configuration the new agent writes no longer matches what dockerd started with
    // (as after an isolation switch the dead agent had begun): adopting would be wrong.
    auto t = exec_in_vm(vm,
                        "cp /etc/docker/daemon.json /run/cordon-test-daemon.json && "
                        "sed -i 's/\"iptables\": false,/\"iptables\": false, \"debug\": false,/' "
                        "/etc/docker/daemon.json && "
                        "grep -c debug /etc/docker/daemon.json");
    ASSERT_TRUE(t.ok() && trim(t.out) == "1") << describe(t);
    const auto killed = kill_guest_agent(vm);
    std::this_thread::sleep_for(1500ms);
    const double back = wait_for_docker(vm, 240s);
    const double back_after_kill = seconds_since(killed);
    std::cout << "[ numbers ] docker answered again " << back_after_kill
              << " s after the guest agent's kill (engine restarted: config changed)\n";
    ASSERT_GE(back, 0) << vm.vmctl({"status"}, 60s).out;
    const json start = engine_start(vm);
    std::cout << "[ numbers ] engine start: " << start.dump() << "\n";
    EXPECT_EQ(start.value("path", ""), "restarted") << start.dump(2);
    EXPECT_NE(start.value("reason", "").find("daemon.json changed"), std::string::npos)
        << start.dump(2);
    auto n = exec_in_vm(vm, "pidof dockerd | wc -w; pidof containerd | wc -w; pidof dockerd");
    const std::string counts = trim(n.out);
    EXPECT_EQ(counts.substr(0, 3), "1\n1") << describe(n);
    EXPECT_EQ(engine_before.find(counts.substr(counts.rfind('\n') + 1)), std::string::npos)
        << "dockerd was not restarted: " << engine_before << " / " << counts;
    auto c = vm.docker({"run", "--rm", "-v", "rel-agent2:/d", vm.test_image(), "cat", "/d/keep"});
    ASSERT_TRUE(c.ok()) << describe(c);
    EXPECT_EQ(trim(c.out), "keep-2");
    auto restore = exec_in_vm(vm,
                              "cp /run/cordon-test-daemon.json /etc/docker/daemon.json && "
                              "rm /run/cordon-test-daemon.json");
    EXPECT_TRUE(restore.ok()) << describe(restore);
    vm.docker({"volume", "rm", "rel-agent2"}, 60s);
}

TEST_F(Faults, HostAgentKilledIsReportedAndRestartedWithoutReboot) {
    auto& vm = VmEnvironment::get();
    const json st0 = status_json(vm);
    const pid_t pid = st0["host_agent"].value("pid", 0);
    ASSERT_GT(pid, 0) << st0.dump(2);
    const json info0 = agent_info(vm);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) {
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        std::getline(stat, line);
        if (line.find(") Z") != std::string::npos)
            break;  // a zombie nobody reaps yet
        std::this_thread::sleep_for(50ms);
    }
    const json st1 = status_json(vm);
    EXPECT_EQ(st1.value("state", ""), "running");
    EXPECT_FALSE(st1["host_agent"].value("alive", true));
    EXPECT_TRUE(st1["host_agent"].value("stale_socket", false)) << st1.dump(2);
    auto human = vm.vmctl({"status"}, 60s);
    EXPECT_NE(human.out.find("not running"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("vmctl start"), std::string::npos) << human.out;
    auto dead = vm.docker({"version"}, 30s);
    EXPECT_FALSE(dead.ok()) << "docker.sock still answers without a host agent";

    const auto t0 = Clock::now();
    auto start = vm.vmctl({"start"}, 300s);
    ASSERT_TRUE(start.ok()) << describe(start);
    const double restart_s = seconds_since(t0);
    auto v = vm.docker({"version", "--format", "{{.Server.Version}}"}, 60s);
    std::cout << "[ numbers ] vmctl start reconnected in " << restart_s << " s; docker answers "
              << seconds_since(t0) << " s after it began\n";
    EXPECT_TRUE(v.ok()) << "docker does not answer right after vmctl start: " << describe(v);
    EXPECT_NE(start.out.find("reconnected"), std::string::npos) << start.out;
    const json st2 = status_json(vm);
    EXPECT_TRUE(st2["host_agent"].value("alive", false));
    EXPECT_FALSE(st2["host_agent"].value("stale_socket", true));
    const json info1 = agent_info(vm);
    EXPECT_GT(info1.value("uptime_s", 0.0), info0.value("uptime_s", 0.0)) << "the VM rebooted";
    EXPECT_EQ(info1["boot_count"], info0["boot_count"]);
}

TEST_F(Faults, DataDiskFullGivesDockerAClearErrorAndTheAgentStaysUp) {
    auto& vm = VmEnvironment::get();
    // fallocate takes the blocks without writing them (instant, and the qcow2 stays small):
    // one big file, then 1 MiB and 4 KiB pieces until nothing is left.
    auto fill = vm.vm_exec(
        "f=$(stat -f -c %f /data); s=$(stat -f -c %S /data); big=$(( (f - 4096) * s )); "
        "[ $big -gt 0 ] && fallocate -l $big /data/cordon-test-fill; "
        "i=0; while fallocate -l 1048576 /data/cordon-test-fill-m$i 2>/dev/null; do i=$((i+1)); "
        "done; "
        "j=0; while [ $j -lt 5000 ] && fallocate -l 4096 /data/cordon-test-fill-k$j 2>/dev/null; "
        "do j=$((j+1)); done; "
        // ext4 keeps a pool of clusters (at most 4096) for its own metadata that no one
        // can allocate: full means a 4 KiB allocation fails.
        "if fallocate -l 4096 /data/cordon-test-fill-probe 2>/dev/null; then echo not-full; else "
        "echo full; fi");
    ASSERT_TRUE(fill.ok()) << describe(fill);
    EXPECT_EQ(trim(fill.out), "full") << "the data disk is not full";

    auto r = vm.docker(
        {"run", "--rm", "-v", "rel-full:/d", vm.test_image(), "sh", "-c", "echo x > /d/x"}, 180s);
    std::cout << "[ numbers ] docker with a full disk: " << trim(r.err) << "\n";
    EXPECT_FALSE(r.ok());
    EXPECT_FALSE(r.timed_out);
    EXPECT_TRUE(contains_ci(r.err + r.out, "no space left on device")) << describe(r);
    // The agent, the channel and the engine are still up.
    const json st = status_json(vm);
    EXPECT_TRUE(st["guest_agent"].value("reachable", false)) << st.dump(2);
    EXPECT_EQ(st["guest_agent"]["info"]["engine"].value("state", ""), "ready") << st.dump(2);
    EXPECT_TRUE(vm.docker({"version"}, 60s).ok());

    auto clean = vm.vm_exec("rm -f /data/cordon-test-fill*; stat -f -c %f /data");
    ASSERT_TRUE(clean.ok()) << describe(clean);
    auto ok = vm.docker({"run", "--rm", "-v", "rel-full:/d", vm.test_image(), "sh", "-c",
                         "echo x > /d/x && cat /d/x"});
    EXPECT_TRUE(ok.ok()) << describe(ok);
    EXPECT_EQ(trim(ok.out), "x");
    vm.docker({"volume", "rm", "rel-full"}, 60s);
}

TEST_F(Faults, LibvirtdRestartedWhileTheVmRunsLeavesItRunning) {
    auto& vm = VmEnvironment::get();
    const json info0 = agent_info(vm);
    auto pg = cordon::run({"pgrep", "-x", "libvirtd"}, 10s);
    ASSERT_TRUE(pg.ok()) << "libvirtd is not running: " << describe(pg);
    const pid_t pid = static_cast<pid_t>(std::stol(pg.out));
    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    for (int i = 0; i < 300 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(100ms);
    // While libvirtd is away: vmctl says so, the VM and Docker keep working.
    auto down = vm.vmctl({"status"}, 60s);
    EXPECT_EQ(down.exit_code, 6) << describe(down);  // libvirt_unreachable
    EXPECT_TRUE(vm.docker({"version"}, 60s).ok()) << "Docker stopped working without libvirtd";
    auto up =
        cordon::run({"bash", std::string(CORDON_SOURCE_DIR) + "/scripts/start-libvirtd"}, 120s);
    ASSERT_TRUE(up.ok()) << describe(up);
    const json st = status_json(vm);
    EXPECT_EQ(st.value("state", ""), "running") << st.dump(2);
    EXPECT_TRUE(st["host_agent"].value("alive", false));
    EXPECT_TRUE(st["guest_agent"].value("reachable", false));
    const json info1 = agent_info(vm);
    EXPECT_GT(info1.value("uptime_s", 0.0), info0.value("uptime_s", 0.0)) << "the VM rebooted";
    auto r = vm.docker({"run", "--rm", vm.test_image(), "true"});
    EXPECT_TRUE(r.ok()) << describe(r);
}

TEST_F(Faults, DestroyedDuringVolumeWritesKeepsSyncedDataAndSaysWhatHappened) {
    auto& vm = VmEnvironment::get();
    const std::string name = vm_name(vm);
    auto w = vm.docker({"run", "--rm", "-v", "rel-destroy:/d", vm.test_image(), "sh", "-c",
                        "seq 1 20000 > /d/synced && sync"});
    ASSERT_TRUE(w.ok()) << describe(w);
    auto writer =
        vm.docker({"run", "-d", "--name", "rel-writer", "-v", "rel-destroy:/d", vm.test_image(),
                   "sh", "-c", "i=0; while true; do echo $i >> /d/log; i=$((i+1)); done"});
    ASSERT_TRUE(writer.ok()) << describe(writer);
    std::this_thread::sleep_for(3s);
    auto d = virsh({"destroy", name});
    ASSERT_TRUE(d.ok()) << describe(d);

    const json st = status_json(vm);
    EXPECT_EQ(st.value("state", ""), "stopped") << st.dump(2);
    EXPECT_TRUE(st.value("stopped_from_outside", false)) << st.dump(2);
    auto human = vm.vmctl({"status"}, 60s);
    EXPECT_NE(human.out.find("stopped from outside"), std::string::npos) << human.out;

    auto start = vm.vmctl({"start"}, 600s);
    ASSERT_TRUE(start.ok()) << describe(start) << "\n--- console\n"
                            << vm.vmctl({"logs", "console"}, 30s).out;
    ASSERT_GE(wait_for_docker(vm, 240s), 0);
    const json info = agent_info(vm);
    const json& disk = info["data_disk"];
    std::cout << "[ numbers ] data disk after the destroy: " << disk.dump() << "\n";
    EXPECT_TRUE(disk.value("ok", false)) << disk.dump(2);
    EXPECT_TRUE(disk.value("previous_run_unclean", false))
        << "the journal replay was not reported: " << disk.dump(2);
    EXPECT_NE(disk.value("check", "").find("e2fsck -p exit"), std::string::npos) << disk.dump(2);

    auto c = vm.docker({"run", "--rm", "-v", "rel-destroy:/d", vm.test_image(), "sh", "-c",
                        "busybox wc -l < /d/synced; busybox tail -n 1 /d/synced; head -n 1 "
                        "/d/synced; cat /d/log > /dev/null && echo log-readable"});
    ASSERT_TRUE(c.ok()) << describe(c);
    EXPECT_EQ(trim(c.out), "20000\n20000\n1\nlog-readable");
    vm.docker({"rm", "-f", "rel-writer"}, 60s);
    vm.docker({"volume", "rm", "rel-destroy"}, 60s);
}

// vmctl shell / logs agent / audit, and the host library's agent events and RPC error
// codes, against one real VM (libvirt + QEMU, the real image, the real docker CLI).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cordon/host/agent_events.hpp"
#include "cordon/host/host_error.hpp"
#include "cordon/host/paths.hpp"
#include "cordon/host/process.hpp"
#include "cordon/host/settings.hpp"
#include "cordon/host/virt.hpp"
#include "cordon/host/vm.hpp"
#include "cordon_e2e.hpp"

using cordon::e2e::describe;
using cordon::e2e::VmEnvironment;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

cordon::ProcessResult shell(const std::vector<std::string>& args, const std::string& input) {
    cordon::SpawnOptions o;
    o.stdin_data = input;
    std::vector<std::string> argv{"shell"};
    argv.insert(argv.end(), args.begin(), args.end());
    return VmEnvironment::get().vmctl(argv, 120s, o);
}

class Vmctl : public ::testing::Test {
  protected:
    void SetUp() override { CORDON_REQUIRE_VM(); }
};

// Events from a watcher, for waiting on them.
struct EventLog {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<cordon::host::AgentEvent> events;
    bool up = false;
    bool wait_for(const std::function<bool()>& pred, std::chrono::seconds timeout) {
        std::unique_lock lock(mu);
        return cv.wait_for(lock, timeout, pred);
    }
    bool has(const std::string& type, const std::string& key = {}, const std::string& value = {}) {
        for (const auto& e : events) {
            if (e.type != type)
                continue;
            if (key.empty() || (e.data.contains(key) && e.data[key].is_string() &&
                                e.data[key].get<std::string>() == value))
                return true;
        }
        return false;
    }
};

}  // namespace

TEST_F(Vmctl, ShellReadsPipedCommandsAsRootAndReturnsTheExitStatus) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = shell({}, "id -u\necho \"hello from $(hostname)\"\nexit 5\n");
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cerr << "[measure] vmctl shell, 3 piped commands: " << s << " s\n";
    EXPECT_EQ(r.exit_code, 5) << describe(r);
    EXPECT_EQ(r.out.rfind("0\nhello from ", 0), 0u) << describe(r);
}

TEST_F(Vmctl, ShellRunsACommandWithSeparateStderr) {
    auto r = shell({"--", "sh", "-c", "echo out; echo err >&2; exit 3"}, "");
    EXPECT_EQ(r.exit_code, 3) << describe(r);
    EXPECT_EQ(r.out, "out\n") << describe(r);
    EXPECT_NE(r.err.find("err\n"), std::string::npos) << describe(r);
    auto ok = shell({"--", "true"}, "");
    EXPECT_EQ(ok.exit_code, 0) << describe(ok);
}

TEST_F(Vmctl, ShellWithATerminalGetsAPtyOfTheDefaultSize) {
    // -t without a local terminal: a pty in the guest, 24x80 as nothing says otherwise.
    auto r = shell({"-t", "--", "sh", "-c", "tty; stty size"}, "");
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find("/dev/pts/"), std::string::npos) << describe(r);
    EXPECT_NE(r.out.find("24 80"), std::string::npos) << describe(r);
}

TEST_F(Vmctl, InteractiveShellOnARealTerminalRestoresTheTerminal) {
    // script(1) gives vmctl a real terminal: raw mode, a pty in the guest, the exit
    // status, and afterwards the local terminal back in its cooked mode.
    auto& env = VmEnvironment::get();
    env.apply_env();
    const std::string inner =
        cordon::e2e::vmctl_path() + " shell; rc=$?; echo; echo LOCAL; stty -a; exit $rc";
    cordon::SpawnOptions o;
    o.stdin_data = "tty\necho remote-$((6*7))\nexit 3\n";
    auto r = cordon::run({"script", "-qec", inner, "/dev/null"}, 120s, o);
    EXPECT_EQ(r.exit_code, 3) << describe(r);
    const auto local = r.out.find("LOCAL");
    ASSERT_NE(local, std::string::npos) << describe(r);
    const std::string remote = r.out.substr(0, local), after = r.out.substr(local);
    EXPECT_NE(remote.find("/dev/pts/"), std::string::npos) << remote;
    EXPECT_NE(remote.find("remote-42"), std::string::npos) << remote;
    EXPECT_NE(after.find(" icanon"), std::string::npos) << after;
    EXPECT_EQ(after.find("-icanon"), std::string::npos) << "raw mode was not undone: " << after;
    EXPECT_EQ(after.find("-echo "), std::string::npos) << after;
}

TEST_F(Vmctl, ShellOfAMissingProgramIsAGuestError) {
    auto r = shell({"--", "/no/such/program"}, "");
    EXPECT_EQ(r.exit_code, 13) << describe(r);
    EXPECT_NE(r.err.find("cannot run /no/such/program"), std::string::npos) << describe(r);
}

TEST_F(Vmctl, LogsAgentShowsTheAgentsOwnLog) {
    auto r = VmEnvironment::get().vmctl({"logs", "agent", "--json", "--tail", "0"}, 60s);
    ASSERT_TRUE(r.ok()) << describe(r);
    auto j = json::parse(r.out);
    ASSERT_TRUE(j["lines"].is_array());
    bool started = false, shell_seen = false;
    for (const auto& l : j["lines"]) {
        const std::string line = l.get<std::string>();
        started = started || line.find("cordon-guest-agent") != std::string::npos;
        shell_seen = shell_seen || line.find("shell:") != std::string::npos;
    }
    EXPECT_TRUE(started) << r.out.substr(0, 2000);
    EXPECT_TRUE(shell_seen) << "the shells of the tests above are logged";
}

TEST_F(Vmctl, AuditListsARefusedRequest) {
    auto& vm = VmEnvironment::get();
    vm.ensure_test_image();
    auto refused = vm.docker({"run", "--rm", "--privileged", vm.test_image(), "true"});
    ASSERT_FALSE(refused.ok()) << describe(refused);

    auto r = vm.vmctl({"audit", "--denied", "--json", "--limit", "50"}, 60s);
    ASSERT_TRUE(r.ok()) << describe(r);
    auto j = json::parse(r.out);
    bool found = false;
    for (const auto& e : j["entries"]) {
        EXPECT_EQ(e.value("decision", ""), "deny") << e.dump();
        if (e.value("target", "").find("/containers/create") != std::string::npos &&
            e.value("message", "").find("rivileged") != std::string::npos)
            found = true;
    }
    EXPECT_TRUE(found) << r.out;
    EXPECT_GE(j.value("denied", 0), 1) << r.out;

    auto human = vm.vmctl({"audit", "--limit", "20"}, 60s);
    ASSERT_TRUE(human.ok()) << describe(human);
    EXPECT_NE(human.out.find("DENY"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("/containers/create"), std::string::npos) << human.out;
}

TEST_F(Vmctl, ALockedIsolationSwitchCarriesTheGuestsErrorCode) {
    auto& env = VmEnvironment::get();
    env.apply_env();
    auto layered = cordon::host::LayeredSettings::load(cordon::host::SettingsFiles::standard());
    auto hv = cordon::host::make_libvirt();
    cordon::host::Vm vm(*hv, layered.effective());
    const json state = vm.call_agent("isolation", json::object());
    const bool on = state.value("enabled", true);
    try {
        vm.call_agent("isolation",
                      {{"enabled", !on},
                       {"confirmed", true},
                       {"admin_lock", {{"locked", true}, {"enabled", on}, {"source", "e2e"}}}});
        ADD_FAILURE() << "a switch against the lock succeeded";
    } catch (const cordon::host::HostError& e) {
        EXPECT_EQ(e.kind(), cordon::host::ErrorKind::locked) << e.what();
        EXPECT_EQ(e.rpc_code(), "locked") << e.what();
    }
    // Unlock again for the tests that follow (a status call carries the lock too).
    const json after =
        vm.call_agent("isolation", {{"admin_lock", {{"locked", false}, {"enabled", true}}}});
    EXPECT_FALSE(after.value("locked", true)) << after.dump();
    EXPECT_EQ(after.value("enabled", !on), on) << "the refused switch changed nothing";
}

TEST_F(Vmctl, TheHostLibrarySeesPushedEventsWhenDockerdRestarts) {
    auto& env = VmEnvironment::get();
    env.apply_env();
    auto layered = cordon::host::LayeredSettings::load(cordon::host::SettingsFiles::standard());
    const auto paths = cordon::host::vm_paths(layered.effective().vm_name);
    EventLog log;
    cordon::host::AgentEventWatcher watcher(
        paths.control_socket,
        [&](const cordon::host::AgentEvent& e) {
            std::lock_guard lock(log.mu);
            log.events.push_back(e);
            log.cv.notify_all();
        },
        [&](bool up, const std::string&) {
            std::lock_guard lock(log.mu);
            log.up = up;
            log.cv.notify_all();
        });
    ASSERT_TRUE(log.wait_for([&] { return log.up && log.has("snapshot"); }, 60s));
    {
        std::lock_guard lock(log.mu);
        const auto& snap = log.events.front().data;
        EXPECT_EQ(snap["engine"].value("state", ""), "ready") << snap.dump();
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto kill = env.vm_exec("kill $(pidof dockerd)");
    ASSERT_TRUE(kill.ok()) << describe(kill);
    EXPECT_TRUE(log.wait_for([&] { return log.has("engine", "state", "starting"); }, 120s))
        << "no engine event after dockerd died";
    const double first =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_TRUE(log.wait_for([&] { return log.has("dockerd_restart"); }, 180s));
    EXPECT_TRUE(log.wait_for([&] { return log.has("engine", "state", "ready"); }, 300s))
        << "dockerd did not come back";
    std::cerr << "[measure] dockerd killed -> engine event on the host: " << first << " s\n";
}

// Ctrl-C during `vmctl start` of a second VM: exit 130, the domain it started is not
// running, its host agent is gone.
TEST_F(Vmctl, CtrlCDuringStartLeavesNothingHalfStarted) {
    auto& env = VmEnvironment::get();
    env.apply_env();
    const std::string name = "cordon-e2e-cancel-" + std::to_string(::getpid());
    const auto paths = cordon::host::vm_paths(name);
    cordon::SpawnOptions so;
    cordon::Child start =
        cordon::Child::spawn({cordon::e2e::vmctl_path(), "--vm", name, "start"}, so);
    // The host agent's pid file appears once the domain runs and the agent is started.
    const auto deadline = std::chrono::steady_clock::now() + 300s;
    while (!std::filesystem::exists(paths.hostagent_pid) &&
           std::chrono::steady_clock::now() < deadline && start.running())
        std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(std::filesystem::exists(paths.hostagent_pid)) << "the start never got that far";
    std::this_thread::sleep_for(300ms);
    const pid_t agent = std::stoi([&] {
        std::ifstream in(paths.hostagent_pid);
        std::string s;
        std::getline(in, s);
        return s;
    }());
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(::kill(start.pid(), SIGINT), 0);
    auto r = start.wait(60s);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cerr << "[measure] Ctrl-C -> vmctl start exited: " << s << " s\n";
    EXPECT_EQ(r.exit_code, 130) << describe(r);
    EXPECT_NE(r.err.find("cancelled"), std::string::npos) << describe(r);
    auto st = cordon::run({"virsh", "-c", "qemu:///system", "domstate", name}, 30s);
    EXPECT_NE(st.out.find("shut off"), std::string::npos) << describe(st);
    EXPECT_FALSE(cordon::host::process_alive(agent, "")) << "the host agent outlived the cancel";
    auto del = env.vmctl({"--vm", name, "delete", "--yes"}, 120s);
    EXPECT_TRUE(del.ok()) << describe(del);
}

// The administrator's policy settings reach the guest through fw_cfg at the next start,
// and lockVmShell is enforced there: no root shell and no exec in the VM. Last in the
// binary: the VM stays locked until the harness stops it (stop and logs need no shell).
TEST_F(Vmctl, TheAdminsShellLockHoldsInTheGuestAfterARestart) {
    auto& env = VmEnvironment::get();
    // Before: the defaults arrived (the fw_cfg file is always sent) and the shell works.
    auto st = env.vmctl({"status", "--json"}, 60s);
    ASSERT_TRUE(st.ok()) << describe(st);
    auto before = json::parse(st.out, nullptr, false);
    ASSERT_TRUE(before.is_object()) << st.out;
    EXPECT_EQ(before["guest_agent"]["info"]["admin"].value("state", ""), "ok") << st.out;
    EXPECT_FALSE(before["guest_agent"]["info"]["admin"].value("lock_vm_shell", true)) << st.out;
    ASSERT_TRUE(env.vm_exec("true").ok());

    // The socket allowlist below needs isolation on (a suite run alone before this one,
    // e.g. Shares.*, may have left it off).
    auto iso = env.vmctl({"isolation", "status", "--json"}, 60s);
    ASSERT_TRUE(iso.ok()) << describe(iso);
    const auto iso_state = json::parse(iso.out, nullptr, false);
    ASSERT_TRUE(iso_state.is_object()) << iso.out;
    if (!iso_state.value("enabled", false)) {
        auto on = env.vmctl({"isolation", "on", "--yes"}, 600s);
        ASSERT_TRUE(on.ok()) << describe(on);
        env.ensure_test_image();
    }
    // For allowDerivedImages (issue 13 item 7): the test image goes on the socket
    // allowlist by ID; an image committed on top of it (with a docker CLI, for a
    // testcontainers-style flow, issue 14 item 7) is derived from it; an imported one is not.
    auto id = env.docker({"image", "inspect", "--format", "{{.Id}}", env.test_image()});
    ASSERT_TRUE(id.ok()) << describe(id);
    const std::string base_id = id.out.substr(0, id.out.find('\n'));
    env.docker({"rm", "-f", "cordon-e2e-derive"});
    auto made = env.docker({"run", "--name", "cordon-e2e-derive", env.test_image(), "sh", "-c",
                            "echo derived > /marker"});
    ASSERT_TRUE(made.ok()) << describe(made);
    const std::string cli = cordon::e2e::host_docker_cli();
    ASSERT_FALSE(cli.empty());
    auto cp = env.docker({"cp", cli, "cordon-e2e-derive:/bin/docker"});
    ASSERT_TRUE(cp.ok()) << describe(cp);
    auto commit = env.docker({"commit", "cordon-e2e-derive", "cordon-e2e/derived:1"});
    ASSERT_TRUE(commit.ok()) << describe(commit);
    env.docker({"rm", "-f", "cordon-e2e-derive"});
    const std::string tar = ::testing::TempDir() + "cordon-e2e-unrelated.tar";
    {
        const std::string dir = ::testing::TempDir() + "cordon-e2e-unrelated";
        std::filesystem::create_directories(dir);
        std::ofstream(dir + "/marker") << "unrelated\n";
        ASSERT_EQ(std::system(("tar -C " + dir + " -cf " + tar + " .").c_str()), 0);
    }
    auto imported = env.docker({"import", tar, "cordon-e2e/unrelated:1"});
    ASSERT_TRUE(imported.ok()) << describe(imported);

    env.apply_env();
    const char* admin_file = std::getenv("CORDON_ADMIN_SETTINGS");
    ASSERT_NE(admin_file, nullptr);
    std::ofstream(admin_file) << R"({"lockVmShell": true, "allowDerivedImages": true, )"
                              << R"("commandList": {"type": "deny", "commands": ["image.remove"]}, )"
                              << R"("socketMountImages": [")" << base_id << R"("]})";
    auto restart = env.vmctl({"restart"}, 600s);
    ASSERT_TRUE(restart.ok()) << describe(restart);

    st = env.vmctl({"status", "--json"}, 60s);
    ASSERT_TRUE(st.ok()) << describe(st);
    auto after = json::parse(st.out, nullptr, false);
    ASSERT_TRUE(after.is_object()) << st.out;
    EXPECT_EQ(after["guest_agent"]["info"]["admin"].value("state", ""), "ok") << st.out;
    EXPECT_TRUE(after["guest_agent"]["info"]["admin"].value("lock_vm_shell", false)) << st.out;

    auto ex = env.vm_exec("echo reached-the-vm");
    EXPECT_FALSE(ex.ok()) << describe(ex);
    EXPECT_EQ(ex.out.find("reached-the-vm"), std::string::npos) << describe(ex);
    EXPECT_NE((ex.out + ex.err).find("lockVmShell"), std::string::npos) << describe(ex);
    auto sh = shell({"--", "sh", "-c", "echo reached-the-vm"}, "");
    EXPECT_FALSE(sh.ok()) << describe(sh);
    EXPECT_EQ(sh.out.find("reached-the-vm"), std::string::npos) << describe(sh);
    EXPECT_NE((sh.out + sh.err).find("lockVmShell"), std::string::npos) << describe(sh);
    // Docker still works: the lock is on the VM's shell, not on the engine.
    auto v = env.docker({"version", "--format", "{{.Server.Version}}"});
    EXPECT_TRUE(v.ok()) << describe(v);

    // The socket allowlist with allowDerivedImages: the listed image and one built on it
    // get the (locked-down) socket; an unrelated image does not.
    const std::string sock = "/var/run/docker.sock:/var/run/docker.sock";
    auto listed = env.docker({"run", "--rm", "-v", sock, env.test_image(), "sh", "-c",
                              "test -S /var/run/docker.sock"});
    EXPECT_TRUE(listed.ok()) << describe(listed);
    auto derived = env.docker({"run", "--rm", "-v", sock, "cordon-e2e/derived:1", "sh", "-c",
                               "cat /marker && test -S /var/run/docker.sock"});
    EXPECT_TRUE(derived.ok()) << describe(derived);
    EXPECT_EQ(derived.out, "derived\n") << describe(derived);
    // Testcontainers-style: the socket-holding container starts and removes a sibling
    // through the container-facing socket, where the policy and the admin's commandList
    // apply: a privileged sibling and an image removal are refused, naming the rule.
    auto siblings = env.docker(
        {"run", "--rm", "-v", sock, "-e", "DOCKER_CONFIG=/tmp", "cordon-e2e/derived:1", "sh", "-c",
         "docker run --name cordon-e2e-sibling " + env.test_image() +
             " echo sibling-ran && docker rm cordon-e2e-sibling && "
             "! docker run --rm --privileged " + env.test_image() + " true 2> /tmp/priv && "
             "cat /tmp/priv && ! docker rmi " + env.test_image() + " 2> /tmp/rmi && cat /tmp/rmi"});
    EXPECT_TRUE(siblings.ok()) << describe(siblings);
    EXPECT_NE(siblings.out.find("sibling-ran"), std::string::npos) << describe(siblings);
    EXPECT_NE(siblings.out.find("[rule privileged"), std::string::npos) << describe(siblings);
    EXPECT_NE(siblings.out.find("[rule command-list"), std::string::npos) << describe(siblings);
    auto gone = env.docker({"inspect", "cordon-e2e-sibling"});
    EXPECT_FALSE(gone.ok()) << "the sibling was not removed: " << describe(gone);
    auto unrelated = env.docker({"create", "-v", sock, "cordon-e2e/unrelated:1", "/marker"});
    EXPECT_FALSE(unrelated.ok()) << describe(unrelated);
    EXPECT_NE(unrelated.err.find("bind-mount.docker-socket"), std::string::npos)
        << describe(unrelated);
    EXPECT_NE(unrelated.err.find("built FROM one of them"), std::string::npos)
        << describe(unrelated);
}

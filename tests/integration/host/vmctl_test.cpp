// The real vmctl against the real libvirt (qemu:///system as root; TCG here) with the
// real VM image: lifecycle, the host sockets reaching the guest, and the error cases.
// One VM for the whole binary; the tests run in order and build on each other.
// Skips only when the image folder is absent.
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <gtest/gtest.h>

#include <algorithm>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cordon/rpc/rpc.hpp"
#include "cordon/subprocess.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

struct World {
    std::string skip;
    fs::path base;
    fs::path image;
    std::string vm;
    std::vector<std::string> env;
    bool started = false;
};
World g;

std::string describe(const cordon::ProcessResult& r) {
    return "exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") +
           "\n--- stdout\n" + r.out + "\n--- stderr\n" + r.err;
}

cordon::ProcessResult vmctl(std::vector<std::string> args, std::chrono::seconds timeout = 120s) {
    args.insert(args.begin(), CORDON_VMCTL_PATH);
    cordon::SpawnOptions o;
    o.env_overrides = g.env;
    return cordon::run(args, timeout, o);
}

json vmctl_json(std::vector<std::string> args, int expect_exit = 0,
                std::chrono::seconds timeout = 120s) {
    args.insert(args.begin(), "--json");
    auto r = vmctl(args, timeout);
    EXPECT_EQ(r.exit_code, expect_exit) << describe(r);
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << describe(r);
    return j.is_object() ? j : json::object();
}

fs::path runtime_dir() {
    return g.base / "run" / g.vm;
}
fs::path state_dir() {
    return g.base / "state" / g.vm;
}

cordon::ProcessResult docker(std::vector<std::string> args, std::chrono::seconds timeout = 120s) {
    args.insert(args.begin(), "docker");
    cordon::SpawnOptions o;
    o.env_overrides = {"DOCKER_HOST=unix://" + (runtime_dir() / "docker.sock").string(),
                       "DOCKER_CONFIG=" + (g.base / "docker-config").string()};
    return cordon::run(args, timeout, o);
}

// dockerd in the guest comes up after the agent: wait for /_ping through docker.sock.
std::string wait_docker_ping(std::chrono::seconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    std::string last;
    while (std::chrono::steady_clock::now() < end) {
        auto r = cordon::run({"curl", "-s", "--max-time", "10", "--unix-socket",
                              (runtime_dir() / "docker.sock").string(), "http://x/_ping"},
                             20s);
        last = r.out + r.err;
        if (r.ok() && r.out == "OK")
            return "OK";
        std::this_thread::sleep_for(1s);
    }
    return last;
}

bool hostagent_process_exists() {
    auto r = cordon::run({"pgrep", "-f", "cordon-hostagent --vm " + g.vm + " "}, 10s);
    return r.ok();
}

class Vmctl : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        const char* img = std::getenv("CORDON_TEST_IMAGE_DIR");
        g.image = img && *img ? fs::path(img) : fs::path(CORDON_IMAGE_DIR_DEFAULT);
        if (!fs::exists(g.image / "manifest.json")) {
            g.skip = "the VM image is not built (" + g.image.string() +
                     "/manifest.json is missing): build cordon_image";
            return;
        }
        // Start virtlogd + libvirtd when none runs (machines without systemd).
        auto lv =
            cordon::run({"bash", std::string(CORDON_SOURCE_DIR) + "/scripts/start-libvirtd"}, 60s);
        if (!lv.ok()) {
            g.skip.clear();
            ADD_FAILURE() << "scripts/start-libvirtd failed: " << describe(lv);
        }
        char tmpl[] = "/tmp/cordon-it-XXXXXX";
        g.base = ::mkdtemp(tmpl);
        ::chmod(g.base.c_str(), 0755);  // QEMU (libvirt-qemu) must reach the disk and log under it
        g.vm = "cordon-it-" + std::to_string(::getpid());
        g.env = {"CORDON_STATE_DIR=" + (g.base / "state").string(),
                 "CORDON_RUNTIME_DIR=" + (g.base / "run").string(),
                 "CORDON_CACHE_DIR=" + (g.base / "cache").string(),
                 "CORDON_IMAGE_DIR=" + g.image.string(),
                 "XDG_CONFIG_HOME=" + (g.base / "config").string(),
                 "CORDON_ADMIN_SETTINGS=" + (g.base / "admin-settings.json").string(),
                 std::string("CORDON_HOSTAGENT=") + CORDON_HOSTAGENT_PATH};
        auto set = vmctl({"settings", "set", "vm_name", g.vm});
        if (!set.ok())
            ADD_FAILURE() << describe(set);
    }
    static void TearDownTestSuite() {
        if (g.base.empty())
            return;
        vmctl({"stop", "--timeout", "20"}, 300s);
        vmctl({"delete", "--yes"}, 120s);
        std::error_code ec;
        fs::remove_all(g.base, ec);
    }
    void SetUp() override {
        if (!g.skip.empty())
            GTEST_SKIP() << g.skip;
    }
};

}  // namespace

TEST_F(Vmctl, ErrorsBeforeTheFirstStart) {
    // libvirtd unreachable: a URI whose socket does not exist.
    auto down =
        vmctl({"--connect", "qemu+unix:///system?socket=" + (g.base / "no-libvirt-sock").string(),
               "status"});
    EXPECT_EQ(down.exit_code, 6) << describe(down);
    EXPECT_NE(down.err.find("libvirtd is not running"), std::string::npos) << describe(down);
    EXPECT_NE(down.err.find("libvirtd -d"), std::string::npos) << describe(down);
    // The image folder missing.
    auto noimg = vmctl({"start", "--image-dir", (g.base / "no-image").string()});
    EXPECT_EQ(noimg.exit_code, 5) << describe(noimg);
    EXPECT_NE(noimg.err.find("image folder does not exist"), std::string::npos) << describe(noimg);
    // Nothing defined yet.
    json st = vmctl_json({"status"});
    EXPECT_EQ(st["defined"], false);
    EXPECT_EQ(st["running"], false);
    json stop = vmctl_json({"stop"}, 8);
    EXPECT_EQ(stop["error"]["kind"], "vm_not_found");
    vmctl_json({"logs", "engine"}, 8);
    auto virsh = cordon::run({"virsh", "-c", "qemu:///system", "dominfo", g.vm}, 30s);
    EXPECT_FALSE(virsh.ok()) << "a failed start must not leave a domain behind";
}

TEST_F(Vmctl, StartBootsTheRealImageUnderTcg) {
    auto r = vmctl({"--json", "start", "--timeout", "900"}, 1200s);
    ASSERT_EQ(r.exit_code, 0) << describe(r) << "\n--- console\n"
                              << vmctl({"logs", "console", "-n", "60"}).out;
    g.started = true;
    json j = json::parse(r.out);
    EXPECT_EQ(j["already_running"], false);
    EXPECT_EQ(j["accelerator"], "tcg")
        << "KVM cannot boot on these machines; the probe must see that";
    EXPECT_EQ(j["data_disk_created"], true);
    EXPECT_GT(j["seconds_to_ready"].get<double>(), 0.0);
    EXPECT_NE(r.err.find("• "), std::string::npos) << "progress lines go to stderr in --json mode";
    std::cerr << "[ measure ] vmctl start: guest agent answered " << j["seconds_to_ready"]
              << " s after virDomainCreate\n";
    EXPECT_TRUE(fs::exists(state_dir() / "data.qcow2"));
    struct stat st {};
    ASSERT_EQ(::stat((runtime_dir() / "docker.sock").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(Vmctl, StatusReportsTheVmTheAgentsAndTheGuest) {
    ASSERT_TRUE(g.started);
    json j = vmctl_json({"status"});
    EXPECT_EQ(j["state"], "running");
    EXPECT_EQ(j["running"], true);
    EXPECT_EQ(j["accelerator"], "tcg");
    EXPECT_EQ(j["host_agent"]["alive"], true);
    EXPECT_GT(j["host_agent"]["pid"].get<int>(), 0);
    EXPECT_EQ(j["guest_agent"]["reachable"], true) << j.dump(2);
    EXPECT_FALSE(j["guest_agent"]["info"].value("agent_version", "").empty()) << j.dump(2);
    auto human = vmctl({"status"});
    EXPECT_TRUE(human.ok());
    EXPECT_NE(human.out.find("state:       running"), std::string::npos) << human.out;
}

TEST_F(Vmctl, RpcPingThroughControlSocketReachesTheGuest) {
    ASSERT_TRUE(g.started);
    auto c = cordon::rpc::BlockingClient::connect((runtime_dir() / "control.sock").string());
    json r = c.call("ping", json::object(), 30s);
    EXPECT_EQ(r["pong"], true) << r.dump();
    json info = c.call("info", json::object(), 30s);
    EXPECT_TRUE(info.contains("kernel")) << info.dump();
}

TEST_F(Vmctl, DockerPingThroughDockerSocketReachesTheEngine) {
    ASSERT_TRUE(g.started);
    EXPECT_EQ(wait_docker_ping(300s), "OK");
    auto env = vmctl({"docker-env"});
    EXPECT_EQ(env.out,
              "export DOCKER_HOST=unix://" + (runtime_dir() / "docker.sock").string() + "\n");
    auto v = docker({"version", "--format", "{{.Server.Version}}"});
    EXPECT_TRUE(v.ok()) << describe(v);
}

TEST_F(Vmctl, DockerContextPointsAtTheVm) {
    ASSERT_TRUE(g.started);
    std::vector<std::string> env = g.env;
    env.push_back("DOCKER_CONFIG=" + (g.base / "docker-config").string());
    cordon::SpawnOptions o;
    o.env_overrides = env;
    auto created = cordon::run({CORDON_VMCTL_PATH, "--json", "context"}, 60s, o);
    ASSERT_TRUE(created.ok()) << describe(created);
    EXPECT_EQ(json::parse(created.out)["created"], true);
    auto again = cordon::run({CORDON_VMCTL_PATH, "--json", "context"}, 60s, o);
    EXPECT_EQ(json::parse(again.out)["created"], false) << "the second run updates the context";
    auto v = cordon::run(
        {"docker", "--context", "cordon", "version", "--format", "{{.Server.Version}}"}, 120s, o);
    EXPECT_TRUE(v.ok()) << describe(v);
}

TEST_F(Vmctl, StartWhenRunningChangesNothing) {
    ASSERT_TRUE(g.started);
    const int pid = vmctl_json({"status"})["host_agent"]["pid"];
    json j = vmctl_json({"start"});
    EXPECT_EQ(j["already_running"], true);
    EXPECT_EQ(vmctl_json({"status"})["host_agent"]["pid"], pid);
}

TEST_F(Vmctl, StopIsGracefulAndStopWhenStoppedIsHarmless) {
    ASSERT_TRUE(g.started);
    auto vol = docker({"volume", "create", "cordon-it-keep"});
    EXPECT_TRUE(vol.ok()) << describe(vol);
    struct stat before {};
    ::stat((state_dir() / "data.qcow2").c_str(), &before);
    json j = vmctl_json({"stop"}, 0, 300s);
    EXPECT_EQ(j["was_running"], true);
    EXPECT_EQ(j["method"], "agent") << "the guest agent's shutdown RPC should power the VM off";
    std::cerr << "[ measure ] vmctl stop (" << j["method"] << "): " << j["seconds"] << " s\n";
    json st = vmctl_json({"status"});
    EXPECT_EQ(st["state"], "stopped");
    EXPECT_EQ(st["host_agent"]["alive"], false);
    EXPECT_FALSE(hostagent_process_exists()) << "a stray host agent is left";
    EXPECT_FALSE(fs::exists(runtime_dir() / "docker.sock"));
    EXPECT_FALSE(fs::exists(runtime_dir() / "control.sock"));
    EXPECT_FALSE(fs::exists(runtime_dir() / "hostagent.pid"));
    json again = vmctl_json({"stop"});
    EXPECT_EQ(again["was_running"], false);
    EXPECT_EQ(vmctl_json({"logs", "engine"}, 9)["error"]["kind"], "vm_not_running");
    EXPECT_EQ(vmctl_json({"isolation", "status"}, 9)["error"]["kind"], "vm_not_running");
    struct stat after {};
    ASSERT_EQ(::stat((state_dir() / "data.qcow2").c_str(), &after), 0);
    EXPECT_EQ(after.st_ino, before.st_ino);
    // The console log holds what the guest printed on its serial console (the image
    // boots with `quiet`, so mostly its init's lines).
    auto console = vmctl({"logs", "console"});
    EXPECT_TRUE(console.ok()) << describe(console);
    EXPECT_FALSE(console.out.empty()) << "the console log is empty";
    // The host agent's log, read on the host: it says it stopped, and -n keeps the tail.
    auto ha = vmctl({"logs", "hostagent"});
    EXPECT_TRUE(ha.ok()) << describe(ha);
    EXPECT_NE(ha.out.find("hostagent: stopping"), std::string::npos) << ha.out;
    auto tail = vmctl({"logs", "hostagent", "-n", "3"});
    EXPECT_EQ(std::count(tail.out.begin(), tail.out.end(), '\n'), 3) << tail.out;
    EXPECT_TRUE(ha.out.ends_with(tail.out)) << tail.out;
}

TEST_F(Vmctl, RestartKeepsTheDataDisk) {
    ASSERT_TRUE(g.started);
    json j = vmctl_json({"restart", "--timeout", "900"}, 0, 1200s);
    EXPECT_EQ(j["data_disk_created"], false);
    std::cerr << "[ measure ] vmctl restart: guest agent answered " << j["seconds_to_ready"]
              << " s after virDomainCreate\n";
    ASSERT_EQ(wait_docker_ping(300s), "OK");
    auto vol = docker({"volume", "inspect", "cordon-it-keep"});
    EXPECT_TRUE(vol.ok()) << "the volume made before the stop is gone: " << describe(vol);
}

TEST_F(Vmctl, AVmKilledFromOutsideIsReportedAndRestartable) {
    ASSERT_TRUE(g.started);
    auto d = cordon::run({"virsh", "-c", "qemu:///system", "destroy", g.vm}, 60s);
    ASSERT_TRUE(d.ok()) << describe(d);
    json st = vmctl_json({"status"});
    EXPECT_EQ(st["state"], "stopped");
    EXPECT_NE(st["reason"].get<std::string>().find("destroyed"), std::string::npos) << st.dump(2);
    auto human = vmctl({"status"});
    EXPECT_NE(human.out.find("killed from outside"), std::string::npos) << human.out;
    json j = vmctl_json({"start", "--timeout", "900"}, 0, 1200s);
    EXPECT_EQ(j["already_running"], false);
    auto c = cordon::rpc::BlockingClient::connect((runtime_dir() / "control.sock").string());
    EXPECT_EQ(c.call("ping", json::object(), 30s)["pong"], true);
    auto pids = cordon::run({"pgrep", "-c", "-f", "cordon-hostagent --vm " + g.vm + " "}, 10s);
    EXPECT_EQ(pids.out, "1\n") << "exactly one host agent after the restart";
}

TEST_F(Vmctl, DeleteAsksThenRemovesEverything) {
    ASSERT_TRUE(g.started);
    json refused = vmctl_json({"delete"}, 12);
    EXPECT_EQ(refused["error"]["kind"], "confirmation_required");
    EXPECT_TRUE(cordon::run({"virsh", "-c", "qemu:///system", "dominfo", g.vm}, 30s).ok())
        << "refused means untouched";
    json j = vmctl_json({"delete", "--yes"}, 0, 300s);
    EXPECT_EQ(j["existed"], true);
    EXPECT_EQ(j["data_disk_removed"], true);
    EXPECT_FALSE(cordon::run({"virsh", "-c", "qemu:///system", "dominfo", g.vm}, 30s).ok());
    EXPECT_FALSE(fs::exists(state_dir() / "data.qcow2"));
    EXPECT_FALSE(fs::exists(runtime_dir() / "docker.sock"));
    EXPECT_FALSE(hostagent_process_exists());
    g.started = false;
}

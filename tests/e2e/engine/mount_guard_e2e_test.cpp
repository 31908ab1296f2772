// The engine's mount guard (guest-agent/mountguard), in the real VM: with isolation on, a
// root shell moved into dockerd's cgroup is refused every mount dockerd does not make (the
// kernel says EPERM), the same shell outside the cgroup is not, dockerd in the cgroup
// still runs containers, volumes, docker cp, builds and published ports, and a volume
// type the policy might miss fails in the kernel. With isolation off the guard is detached.
// Part of e2e_isolation_test (same VM).
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "cordon_e2e.hpp"

using cordon::e2e::describe;
using cordon::e2e::VmEnvironment;
using namespace std::chrono_literals;

namespace {

constexpr const char* kEngineCgroup = "/sys/fs/cgroup/cordon-engine/dockerd";

void set_isolation_mode(const VmEnvironment& vm, bool on) {
    auto r = vm.vmctl({"isolation", on ? "on" : "off", "--yes"}, 600s);
    ASSERT_TRUE(r.ok()) << describe(r);
}

nlohmann::json guard_status(const VmEnvironment& vm) {
    auto st = vm.vmctl({"status", "--json"}, 60s);
    EXPECT_TRUE(st.ok()) << describe(st);
    auto j = nlohmann::json::parse(st.out, nullptr, false);
    const auto p = nlohmann::json::json_pointer("/guest_agent/info/engine/mount_guard");
    if (!j.is_discarded() && j.contains(p))
        return j[p];
    ADD_FAILURE() << "no engine.mount_guard in vmctl status --json: " << st.out;
    return {};
}

// One mount attempt in a subshell that first joins `cgroup` (if not empty); prints
// "<name>=ok" or "<name>=<error>" and undoes a mount that worked.
std::string attempt(const std::string& name, const std::string& cgroup, const std::string& mount) {
    const std::string dir = "/run/mg-e2e/" + name;
    std::string s = "mkdir -p " + dir + "; (";
    if (!cgroup.empty())
        s += "echo 0 > " + cgroup + "/cgroup.procs || exit 9; ";
    s += "if out=$(" + mount + " " + dir + " 2>&1); then echo " + name + "=ok; umount " + dir +
         "; else echo \"" + name + "=$out\"; fi); ";
    return s;
}

// busybox mount says EPERM as "permission denied (are you root?)".
bool refused(const std::string& line) {
    return line.find("permission denied") != std::string::npos ||
           line.find("Operation not permitted") != std::string::npos;
}

std::string line_of(const std::string& out, const std::string& name) {
    const auto at = out.find(name + "=");
    if (at == std::string::npos)
        return "(no line for " + name + ")";
    const auto end = out.find('\n', at);
    return out.substr(at + name.size() + 1,
                      end == std::string::npos ? end : end - at - name.size() - 1);
}

}  // namespace

class MountGuard : public ::testing::Test {
  protected:
    void SetUp() override {
        CORDON_REQUIRE_VM();
        VmEnvironment::get().ensure_test_image();
    }
};

TEST_F(MountGuard, DockerdsCgroupIsRefusedEveryMountDockerdDoesNotMake) {
    auto& vm = VmEnvironment::get();
    set_isolation_mode(vm, true);
    EXPECT_EQ(guard_status(vm).value("state", ""), "enforcing") << guard_status(vm).dump();
    const std::string g = kEngineCgroup;
    // The data disk's device, as rc found it.
    auto dev = vm.vm_exec("sed -n 's/^device=//p' /run/cordon/data-disk");
    ASSERT_TRUE(dev.ok()) << describe(dev);
    std::string disk = dev.out.substr(0, dev.out.find('\n'));
    ASSERT_FALSE(disk.empty());
    const std::string attacks =
        attempt("proc", g, "mount -t proc proc") + attempt("sysfs", g, "mount -t sysfs sysfs") +
        attempt("devtmpfs", g, "mount -t devtmpfs devtmpfs") +
        attempt("cgroup2", g, "mount -t cgroup2 cgroup2") +
        attempt("disk", g, "mount -t ext4 " + disk) + attempt("ramfs", g, "mount -t ramfs ramfs") +
        attempt("overlay_etc", g,
                "mkdir -p /run/mg-e2e/u /run/mg-e2e/w; mount -t overlay overlay -o "
                "lowerdir=/etc,upperdir=/run/mg-e2e/u,workdir=/run/mg-e2e/w") +
        attempt("overlay_dotdot", g,
                "mount -t overlay overlay -o "
                "lowerdir=/var/lib/docker/overlay2/../../../../etc") +
        attempt("move", g, "mount --move /run/mg-e2e/mvsrc");
    auto r = vm.vm_exec("mkdir -p /run/mg-e2e/mvsrc; mount -t tmpfs mvsrc /run/mg-e2e/mvsrc; " +
                        attacks + "umount /run/mg-e2e/mvsrc");
    ASSERT_TRUE(r.ok()) << describe(r);
    for (const auto* name : {"proc", "sysfs", "devtmpfs", "cgroup2", "disk", "ramfs", "overlay_etc",
                             "overlay_dotdot", "move"}) {
        EXPECT_TRUE(refused(line_of(r.out, name))) << name << ": " << line_of(r.out, name) << "\n"
                                                   << r.out;
    }
    // The agent log names them.
    auto log = vm.vmctl({"logs", "agent", "-n", "200"}, 60s);
    EXPECT_NE(log.out.find("the kernel refused"), std::string::npos) << log.out;
    EXPECT_NE(log.out.find("of type proc"), std::string::npos) << log.out;
    EXPECT_GE(guard_status(vm).value("denials", 0), 9);
}

TEST_F(MountGuard, TheSameShellOutsideTheCgroupAndDockerdsOwnMountsStillWork) {
    auto& vm = VmEnvironment::get();
    set_isolation_mode(vm, true);
    const std::string g = kEngineCgroup;
    const std::string twins =
        attempt("outside_proc", "", "mount -t proc proc") +
        attempt("outside_tmpfs", "", "mount -t tmpfs tmpfs") +
        attempt("inside_tmpfs", g, "mount -t tmpfs tmpfs") +
        attempt("inside_bind", g, "mount --bind /run/mg-e2e/u") +
        attempt("inside_layer", g,
                "mkdir -p /var/lib/docker/overlay2/mg-e2e/l /var/lib/docker/overlay2/mg-e2e/u "
                "/var/lib/docker/overlay2/mg-e2e/w; mount -t overlay overlay -o "
                "lowerdir=/var/lib/docker/overlay2/mg-e2e/l,upperdir=/var/lib/docker/overlay2/"
                "mg-e2e/u,workdir=/var/lib/docker/overlay2/mg-e2e/w");
    auto r =
        vm.vm_exec("mkdir -p /run/mg-e2e/u; " + twins + "rm -rf /var/lib/docker/overlay2/mg-e2e");
    ASSERT_TRUE(r.ok()) << describe(r);
    for (const auto* name :
         {"outside_proc", "outside_tmpfs", "inside_tmpfs", "inside_bind", "inside_layer"}) {
        EXPECT_EQ(line_of(r.out, name), "ok") << name << "\n" << r.out;
    }
    // dockerd, in the cgroup, does its own work: a container with a tmpfs volume and a
    // named volume, docker cp, a legacy build, a published port.
    auto img = vm.test_image();
    auto vol = vm.docker({"volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o",
                          "o=size=1m", "mg-tmpfs"});
    ASSERT_TRUE(vol.ok()) << describe(vol);
    auto run = vm.docker({"run", "--rm", "-v", "mg-tmpfs:/t", "-v", "mg-named:/n", img, "sh", "-c",
                          "echo hi > /t/f && echo hi > /n/f && cat /t/f /n/f"});
    EXPECT_TRUE(run.ok()) << describe(run);
    EXPECT_EQ(run.out, "hi\nhi\n");
    auto c = vm.docker({"create", "-v", "mg-named:/n", img, "true"});
    ASSERT_TRUE(c.ok()) << describe(c);
    const std::string id = c.out.substr(0, 12);
    auto cp = vm.docker({"cp", id + ":/n/f", "-"});
    EXPECT_TRUE(cp.ok()) << describe(cp);
    EXPECT_NE(cp.out.find("hi"), std::string::npos);
    vm.docker({"rm", "-f", id});
    auto ps = vm.docker({"run", "-d", "-p", "127.0.0.1::80", img, "sleep", "30"});
    EXPECT_TRUE(ps.ok()) << describe(ps);
    if (ps.ok())
        vm.docker({"rm", "-f", ps.out.substr(0, 12)});
    cordon::SpawnOptions build;
    build.stdin_data = "FROM " + img + "\nRUN echo built > /b\n";
    build.env_overrides = {"DOCKER_BUILDKIT=0"};
    auto b = vm.docker({"build", "-t", "mg-built:1", "-"}, 300s, build);
    EXPECT_TRUE(b.ok()) << describe(b);
    vm.docker({"rmi", "mg-built:1"});
    vm.docker({"volume", "rm", "mg-tmpfs", "mg-named"});
}

// A volume type the policy lets through (or, once it refuses it, would have): the
// container never sees the VM's procfs; with the policy silent it is the kernel that says no.
TEST_F(MountGuard, AProcVolumeFailsInTheKernelWhenThePolicyMissesIt) {
    auto& vm = VmEnvironment::get();
    set_isolation_mode(vm, true);
    // Through the socket the policy refuses the volume type by name...
    auto create =
        vm.docker({"volume", "create", "-o", "type=proc", "-o", "device=proc", "mg-proc"});
    EXPECT_FALSE(create.ok()) << describe(create);
    EXPECT_NE(create.err.find("proc"), std::string::npos) << describe(create);
    // ...so the request goes to dockerd itself, as one the policy missed would: dockerd
    // stores the volume, and its mount at the container's start fails in the kernel.
    auto direct = vm.docker_direct(
        {"volume", "create", "-o", "type=proc", "-o", "device=proc", "mg-proc"});
    ASSERT_TRUE(direct.ok()) << describe(direct);
    const int denied_before = guard_status(vm).value("denials", 0);
    auto run = vm.docker_direct(
        {"run", "--rm", "-v", "mg-proc:/x", vm.test_image(), "cat", "/x/1/cmdline"});
    EXPECT_FALSE(run.ok()) << describe(run);
    EXPECT_EQ(run.out.find("init"), std::string::npos) << run.out;
    EXPECT_NE(run.err.find("operation not permitted"), std::string::npos) << describe(run);
    EXPECT_GT(guard_status(vm).value("denials", 0), denied_before) << guard_status(vm).dump();
    // The legitimate twin, also straight to dockerd: a tmpfs volume mounts and is used.
    auto tmpfs = vm.docker_direct({"volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs",
                                   "-o", "o=size=1m", "mg-tmpfs"});
    ASSERT_TRUE(tmpfs.ok()) << describe(tmpfs);
    auto used = vm.docker_direct({"run", "--rm", "-v", "mg-tmpfs:/x", vm.test_image(), "sh",
                                  "-c", "echo ok > /x/f && cat /x/f"});
    EXPECT_TRUE(used.ok()) << describe(used);
    EXPECT_EQ(used.out, "ok\n");
    vm.docker_direct({"volume", "rm", "mg-proc", "mg-tmpfs"});
}

TEST_F(MountGuard, IsDetachedWithIsolationOffAndBackWhenItIsOn) {
    auto& vm = VmEnvironment::get();
    set_isolation_mode(vm, false);
    EXPECT_EQ(guard_status(vm).value("state", ""), "off");
    auto r = vm.vm_exec(attempt("off_proc", kEngineCgroup, "mount -t proc proc"));
    EXPECT_EQ(line_of(r.out, "off_proc"), "ok") << r.out;
    set_isolation_mode(vm, true);
    EXPECT_EQ(guard_status(vm).value("state", ""), "enforcing");
    auto r2 = vm.vm_exec(attempt("on_proc", kEngineCgroup, "mount -t proc proc"));
    EXPECT_TRUE(refused(line_of(r2.out, "on_proc"))) << r2.out;
}

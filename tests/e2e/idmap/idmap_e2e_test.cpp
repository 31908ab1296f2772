// Exclusive ID ranges per container (isolation mode "exclusive_ranges", cordon-runc)
// on a real VM: two containers running at once get different 64K ranges, each
// writes its root filesystem and a shared named volume, and the VM sees each
// container's files owned by that container's own range.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "cordon_e2e.hpp"

using cordon::e2e::describe;
using cordon::e2e::VmEnvironment;
using json = nlohmann::json;

namespace {

// `vmctl --json isolation ...`: the CLI a user types, through the host library and the
// agent's isolation RPC.
json vmctl_isolation(const VmEnvironment& vm, const std::vector<std::string>& args) {
    std::vector<std::string> argv{"--json", "isolation"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = vm.vmctl(argv, std::chrono::seconds(600));
    if (!r.ok())
        return {{"error", describe(r)}};
    return json::parse(r.out, nullptr, false);
}

constexpr const char* kFromOff = "cordon-e2e-created-while-off";
// Created while isolation was off too, with the VM's /etc bound (allowed then).
constexpr const char* kBindsEtc = "cordon-e2e-binds-vm-etc";

class IdmapTest : public ::testing::Test {
  protected:
    void SetUp() override {
        CORDON_REQUIRE_VM();
        auto& vm = VmEnvironment::get();
        vm.ensure_test_image();
        static bool switched = false;
        if (switched)
            return;
        // A container of the plain engine (isolation off), for
        // AContainerCreatedWhileIsolationWasOffIsNotStartedUnconfined: the plain and the
        // exclusive engines share one data root, so it is still there after the switch.
        const json off = vmctl_isolation(vm, {"off", "--yes"});
        ASSERT_TRUE(off.is_object() && !off.contains("error")) << off.dump();
        vm.ensure_test_image();
        auto made = vm.docker({"create", "--name", kFromOff, vm.test_image(), "id", "-u"});
        ASSERT_TRUE(made.ok()) << describe(made);
        auto etc = vm.docker({"create", "--name", kBindsEtc, "-v", "/etc:/vm-etc", vm.test_image(),
                              "true"});
        ASSERT_TRUE(etc.ok()) << describe(etc);
        const json reply = vmctl_isolation(vm, {"on", "--exclusive-ranges", "--yes"});
        ASSERT_TRUE(reply.is_object() && !reply.contains("error")) << reply.dump();
        ASSERT_TRUE(reply.value("exclusive_ranges", false)) << reply.dump();
        switched = true;
    }
};

std::uint64_t first_host_id(const std::string& uid_map) {
    std::istringstream in(uid_map);
    std::uint64_t inside = 1, outside = 0;
    in >> inside >> outside;
    return inside == 0 ? outside : 0;
}

}  // namespace

TEST_F(IdmapTest, StatusReportsTheMode) {
    const json reply = vmctl_isolation(VmEnvironment::get(), {"status"});
    ASSERT_TRUE(reply.is_object() && !reply.contains("error")) << reply.dump();
    EXPECT_TRUE(reply.value("enabled", false)) << reply.dump();
    EXPECT_TRUE(reply.value("exclusive_ranges", false)) << reply.dump();
}

TEST_F(IdmapTest, OneContainerRunsInARangeOfItsOwn) {
    auto& vm = VmEnvironment::get();
    auto r = vm.docker({"run", "--rm", vm.test_image(), "sh", "-c",
                        "cat /proc/self/uid_map; touch /made && stat -c %u /made"});
    ASSERT_TRUE(r.ok()) << describe(r);
    const auto start = first_host_id(r.out);
    EXPECT_GE(start, 100000u) << r.out;
    EXPECT_EQ((start - 100000) % 65536, 0u) << r.out;
    EXPECT_NE(r.out.find("65536"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\n0\n"), std::string::npos)
        << "root in the container owns what it creates: " << r.out;
}

TEST_F(IdmapTest, TwoRunningContainersHaveDifferentRangesAndOwnTheirFiles) {
    auto& vm = VmEnvironment::get();
    ASSERT_TRUE(vm.docker({"volume", "create", "idmap-shared"}).ok());
    for (const char* name : {"idmap-a", "idmap-b"}) {
        const std::string script = std::string("echo ") + name + " > /rootfs-" + name +
                                   " && echo " + name + " > /data/vol-" + name +
                                   " && exec sleep 600";
        auto r = vm.docker({"run", "-d", "--name", name, "-v", "idmap-shared:/data",
                            vm.test_image(), "sh", "-c", script});
        ASSERT_TRUE(r.ok()) << describe(r);
    }
    // Each container's view from the VM: its uid_map, then the owners of its files.
    std::map<std::uint64_t, std::string> seen;  // range start -> what the VM saw
    std::string out;
    for (int attempt = 0; attempt < 30; ++attempt) {
        auto e = vm.vm_exec(
            "for p in $(pidof sleep); do set -- $(head -1 /proc/$p/uid_map); printf '%s ' $2; "
            "for f in /proc/$p/root/rootfs-* /proc/$p/root/data/vol-idmap-a "
            "/proc/$p/root/data/vol-idmap-b; do "
            "stat -c '%u' $f | tr '\\n' ' '; done; echo; done; echo disk $(stat -c %u "
            "/var/lib/docker/volumes/idmap-shared/_data/vol-idmap-a "
            "/var/lib/docker/volumes/idmap-shared/_data/vol-idmap-b)");
        out = e.out;
        if (e.ok() && std::count(out.begin(), out.end(), '\n') >= 3 &&
            out.find("No such") == std::string::npos)
            break;
        sleep(1);
    }
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream f(line);
        std::string first;
        f >> first;
        if (first == "disk" || first == "0" || first.empty())
            continue;  // the summary line; not a container
        const std::uint64_t start = std::stoull(first);
        std::uint64_t owner = 0;
        int files = 0;
        while (f >> owner) {
            EXPECT_EQ(owner, start)
                << "a file seen in the container of range " << start << ": " << line;
            ++files;
        }
        EXPECT_EQ(files, 3) << "its rootfs file and both volume files: " << line;
        seen[start] = line;
    }
    ASSERT_EQ(seen.size(), 2u) << "two containers, two ranges:\n" << out;
    for (const auto& [start, what] : seen) {
        EXPECT_GE(start, 100000u) << what;
        EXPECT_EQ((start - 100000) % 65536, 0u) << what;
    }
    // On the data disk, volume files keep the unshifted IDs (so that both containers share them).
    EXPECT_NE(out.find("disk 0 0"), std::string::npos) << out;

    auto rm = vm.docker({"rm", "-f", "idmap-a", "idmap-b"});
    EXPECT_TRUE(rm.ok()) << describe(rm);
    // Their ranges are freed and their staged mounts gone.
    std::string table;
    for (int attempt = 0; attempt < 20; ++attempt) {
        auto t = vm.vm_exec(
            "cat /var/lib/cordon/idmap-ranges.json; ls /run/cordon-idmap | wc -l; "
            "grep -c cordon-idmap /proc/self/mountinfo || true");
        table = t.out;
        if (table.find("\"ranges\": []") != std::string::npos)
            break;
        sleep(1);
    }
    EXPECT_NE(table.find("\"ranges\": []"), std::string::npos) << table;
    EXPECT_NE(table.find("}\n0\n0\n"), std::string::npos)
        << "no staged folder or mount left: " << table;
    vm.docker({"volume", "rm", "idmap-shared"});
}

TEST_F(IdmapTest, TheGuestKernelPassesTheProbe) {
    // ID-mapped ext4, overlayfs over ID-mapped layers, writes stored 0-based: on the real guest
    // kernel.
    auto r = VmEnvironment::get().vm_exec(
        "/usr/libexec/cordon/cordon-runc --cordon-probe /data/cordon-probe");
    EXPECT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
}

TEST_F(IdmapTest, NamingRuncExplicitlyIsRefused) {
    // It would run the container without the wrapper, i.e. as VM root.
    auto& vm = VmEnvironment::get();
    auto r = vm.docker({"run", "--rm", "--runtime", "runc", vm.test_image(), "true"});
    EXPECT_FALSE(r.ok()) << describe(r);
    EXPECT_NE(r.err.find("runtime"), std::string::npos) << describe(r);
}

// Issue 13 item 4: its stored runtime is plain runc, which would run it as VM root; in the
// exclusive mode `runc` on containerd's PATH is cordon-runc, which refuses it by name.
TEST_F(IdmapTest, AContainerCreatedWhileIsolationWasOffIsNotStartedUnconfined) {
    auto& vm = VmEnvironment::get();
    auto rt = vm.docker({"inspect", "--format", "{{.HostConfig.Runtime}}", kFromOff});
    ASSERT_TRUE(rt.ok()) << describe(rt);
    EXPECT_EQ(rt.out, "runc\n");
    auto start = vm.docker({"start", "-a", kFromOff});
    EXPECT_FALSE(start.ok()) << describe(start);
    EXPECT_EQ(start.out.find('0'), std::string::npos) << "it ran: " << describe(start);
    EXPECT_NE((start.out + start.err).find("created while isolation was off"), std::string::npos)
        << describe(start);
    auto running = vm.docker({"inspect", "--format", "{{.State.Running}}", kFromOff});
    EXPECT_EQ(running.out, "false\n") << describe(running);
    // Removing it still works (runc delete is passed through), and a new container runs
    // in a range of its own.
    auto rm = vm.docker({"rm", "-f", kFromOff});
    EXPECT_TRUE(rm.ok()) << describe(rm);
    auto fresh = vm.docker({"run", "--rm", vm.test_image(), "cat", "/proc/self/uid_map"});
    ASSERT_TRUE(fresh.ok()) << describe(fresh);
    EXPECT_GE(first_host_id(fresh.out), 100000u) << fresh.out;
}

// The gap the policy leaves: --volumes-from copies the mounts of a container the policy
// never checked (created while isolation was off). The runtime wrapper allows only bind
// sources in shared folders or made by the engine, so the VM's /etc is not mounted.
TEST_F(IdmapTest, VolumesFromAContainerOfTheOffModeDoesNotBindItsVmPaths) {
    auto& vm = VmEnvironment::get();
    auto attack = vm.docker({"run", "--rm", "--volumes-from", kBindsEtc, vm.test_image(), "sh",
                             "-c", "if [ -e /vm-etc/shadow ]; then echo VM-ETC-REACHED; fi"});
    EXPECT_FALSE(attack.ok()) << describe(attack);
    EXPECT_EQ(attack.out.find("VM-ETC-REACHED"), std::string::npos) << describe(attack);
    EXPECT_NE(attack.err.find("neither in a shared folder"), std::string::npos) << describe(attack);
    // The twin: --volumes-from a container of this mode with a named volume.
    vm.docker({"rm", "-f", "cordon-e2e-volume-holder"});
    auto holder = vm.docker({"run", "--name", "cordon-e2e-volume-holder", "-v",
                             "cordon-e2e-held:/held", vm.test_image(), "sh", "-c",
                             "echo held > /held/f"});
    ASSERT_TRUE(holder.ok()) << describe(holder);
    auto twin = vm.docker({"run", "--rm", "--volumes-from", "cordon-e2e-volume-holder",
                           vm.test_image(), "cat", "/held/f"});
    EXPECT_TRUE(twin.ok()) << describe(twin);
    EXPECT_EQ(twin.out, "held\n") << describe(twin);
    vm.docker({"rm", "-f", "cordon-e2e-volume-holder", kBindsEtc});
    vm.docker({"volume", "rm", "cordon-e2e-held"});
}


// Shared host folders end to end: a real VM under libvirt with two host folders shared
// over virtiofs (one read-only), the real docker CLI through the host agent and the
// policy proxy. Files a container creates appear on the host owned by the share owner
// (a test uid:gid, as CI runs as root), files the owner has are writable by container
// root, and binds from outside the shared folders are refused with isolation on.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cordon_e2e.hpp"

using cordon::e2e::describe;
using cordon::e2e::VmEnvironment;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// The host user that owns the shared folders. Any uid works (virtiofsd's user namespace
// maps to it); a number without an account keeps the test from touching /etc/passwd.
constexpr unsigned kOwner = 24242;
std::string g_base;  // host folder holding the shares, made in main()

std::string share_dir() {
    return g_base + "/project";
}
std::string ro_dir() {
    return g_base + "/readonly";
}

std::string slurp(const std::string& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

struct stat stat_of(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p << " is missing on the host";
    return st;
}

void write_owned(const std::string& p, const std::string& text, mode_t mode, uid_t uid, gid_t gid) {
    std::ofstream(p) << text;
    ASSERT_EQ(::chown(p.c_str(), uid, gid), 0);
    ASSERT_EQ(::chmod(p.c_str(), mode), 0);
}

// The host's change to a shared folder reaches the VM when virtiofs revalidates its
// cache (about a second): wait until the VM sees `path` as a symlink, so that what a test
// checks next is the engine's reaction to the swap, not to the cached folder.
void wait_until_the_vm_sees(const std::string& test, const std::string& path,
                            const char* what) {
    for (int i = 0; i < 60; ++i) {
        if (VmEnvironment::get().vm_exec(test + " '" + path + "'").ok())
            return;
        std::this_thread::sleep_for(250ms);
    }
    FAIL() << "the VM does not see " << path << " as " << what << " after 15 s";
}
void wait_until_the_vm_sees_a_symlink(const std::string& path) {
    wait_until_the_vm_sees("test -L", path, "a symlink");
}
void wait_until_the_vm_sees_a_folder(const std::string& path) {
    wait_until_the_vm_sees("! test -L", path, "a folder again");
}

// The two host folders, shared from the VM's start (settings set before `vmctl start`).
const bool shares_registered = cordon::e2e::before_vm_start([](VmEnvironment& env) {
    char tmpl[] = "/tmp/cordon-e2e-shares-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << "mkdtemp: " << std::strerror(errno);
    g_base = tmpl;
    ::chmod(g_base.c_str(), 0755);
    for (const auto& d : {share_dir(), ro_dir()}) {
        fs::create_directories(d);
        ASSERT_EQ(::chown(d.c_str(), kOwner, kOwner), 0) << d << ": " << std::strerror(errno);
    }
    env.before_start.push_back(
        {"settings", "set", "shared_folders", share_dir() + "," + ro_dir() + ":ro"});
    env.before_start.push_back(
        {"settings", "set", "share_owner", std::to_string(kOwner) + ":" + std::to_string(kOwner)});
});
const bool shares_cleanup_registered = cordon::e2e::after_vm_stop([] {
    std::error_code ec;
    if (!g_base.empty())
        fs::remove_all(g_base, ec);
});

class Shares : public ::testing::Test {
  protected:
    void SetUp() override {
        CORDON_REQUIRE_VM();
        VmEnvironment::get().ensure_test_image();
    }
    cordon::ProcessResult run_in(const std::string& bind, const std::string& script) {
        return VmEnvironment::get().docker(
            {"run", "--rm", "-v", bind, VmEnvironment::get().test_image(), "sh", "-c", script});
    }
};

TEST_F(Shares, FoldersAppearInTheVmAtTheSamePath) {
    auto r = VmEnvironment::get().vm_exec("grep ' virtiofs ' /proc/mounts");
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_NE(r.out.find("cordon-share-0-on " + share_dir() + " virtiofs rw"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("cordon-share-1-on " + ro_dir() + " virtiofs ro"), std::string::npos)
        << r.out;
}

TEST_F(Shares, ContainerReadsAHostFileAndWritesFilesOwnedByTheUser) {
    write_owned(share_dir() + "/in.txt", "from the host\n", 0644, kOwner, kOwner);
    write_owned(share_dir() + "/private.txt", "secret\n", 0600, kOwner, kOwner);
    auto r = run_in(
        share_dir() + ":/src",
        "cat /src/in.txt && cat /src/private.txt && echo from the container > /src/out.txt && "
        "echo appended >> /src/private.txt && mkdir /src/sub && echo deep > /src/sub/f && "
        "stat -c '%u:%g' /src/in.txt");
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_NE(r.out.find("from the host"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("secret"), std::string::npos) << r.out;
    // Inside the container the user's files belong to root: container root owns them.
    EXPECT_NE(r.out.find("0:0"), std::string::npos) << r.out;
    EXPECT_EQ(slurp(share_dir() + "/out.txt"), "from the container\n");
    EXPECT_EQ(slurp(share_dir() + "/private.txt"), "secret\nappended\n");
    EXPECT_EQ(slurp(share_dir() + "/sub/f"), "deep\n");
    for (const char* p : {"/out.txt", "/sub", "/sub/f", "/private.txt"}) {
        struct stat st = stat_of(share_dir() + p);
        EXPECT_EQ(st.st_uid, kOwner)
            << p << " is not owned by the share owner (not root, not 100000)";
        EXPECT_EQ(st.st_gid, kOwner) << p;
    }
}

TEST_F(Shares, AHostFileOfAnotherUserIsNotWritableByContainerRoot) {
    write_owned(share_dir() + "/roots.txt", "host root's\n", 0644, 0, 0);
    auto r = run_in(share_dir() + ":/src", "cat /src/roots.txt && echo x >> /src/roots.txt");
    EXPECT_FALSE(r.ok()) << "container root wrote a host root file: " << describe(r);
    EXPECT_NE(r.out.find("host root's"), std::string::npos) << describe(r);
    EXPECT_EQ(slurp(share_dir() + "/roots.txt"), "host root's\n");
}

TEST_F(Shares, AReadOnlyFolderCannotBeWritten) {
    write_owned(ro_dir() + "/doc.txt", "read me\n", 0644, kOwner, kOwner);
    auto r = run_in(ro_dir() + ":/ro", "cat /ro/doc.txt && echo x > /ro/new.txt");
    EXPECT_FALSE(r.ok()) << describe(r);
    EXPECT_NE(r.out.find("read me"), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << describe(r);
    EXPECT_FALSE(fs::exists(ro_dir() + "/new.txt"));
}

TEST_F(Shares, ABindOutsideTheSharedFoldersIsRefusedNamingTheSetting) {
    auto r = run_in(g_base + ":/x", "true");
    ASSERT_FALSE(r.ok()) << describe(r);
    EXPECT_NE(r.err.find("bind-mount.outside-shares"), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("shared_folders"), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("vmctl shares add " + g_base), std::string::npos) << describe(r);
    // A symlink inside a shared folder does not lead out either.
    fs::create_directory_symlink(g_base, share_dir() + "/escape");
    auto s = run_in(share_dir() + "/escape:/x", "true");
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.err.find("bind-mount.outside-shares"), std::string::npos) << describe(s);
    // Named volumes need no shared folder.
    auto v = run_in("e2e-shares-vol:/v", "echo ok > /v/f && cat /v/f");
    EXPECT_TRUE(v.ok()) << describe(v);
}

// Issue 13, the symlink swap: the policy checks a bind source at create, the engine
// resolves it again at every start. The host user (or a container with the folder) swaps
// the checked folder for a symlink to the VM's /etc in between.
TEST_F(Shares, AFolderSwappedForASymlinkAfterTheCheckIsNotFollowed) {
    auto& vm = VmEnvironment::get();
    const std::string checked = share_dir() + "/checked";
    fs::create_directories(checked);
    write_owned(checked + "/marker", "checked folder\n", 0644, kOwner, kOwner);
    vm.docker({"rm", "-f", "e2e-swap"});
    auto c = vm.docker({"create", "--name", "e2e-swap", "-v", checked + ":/m", vm.test_image(),
                        "sh", "-c", "cat /m/marker; if [ -e /m/shadow ]; then echo VM-ETC-REACHED; fi"});
    ASSERT_TRUE(c.ok()) << describe(c);
    // The legitimate twin: the folder as checked.
    auto twin = vm.docker({"start", "-a", "e2e-swap"});
    ASSERT_TRUE(twin.ok()) << describe(twin);
    EXPECT_NE(twin.out.find("checked folder"), std::string::npos) << describe(twin);
    // The swap: in the VM the absolute target is the VM's own /etc.
    fs::rename(checked, checked + ".old");
    fs::create_directory_symlink("/etc", checked);
    wait_until_the_vm_sees_a_symlink(checked);
    auto attack = vm.docker({"start", "-a", "e2e-swap"});
    EXPECT_FALSE(attack.ok()) << "the swapped symlink was followed: " << describe(attack);
    EXPECT_EQ(attack.out.find("VM-ETC-REACHED"), std::string::npos) << describe(attack);
    EXPECT_NE(attack.err.find("goes through a symlink"), std::string::npos) << describe(attack);
    EXPECT_NE(attack.err.find("docker rm"), std::string::npos) << describe(attack);
    // Put back, the container starts again: the refusal judged the path, not the container.
    fs::remove(checked);
    fs::rename(checked + ".old", checked);
    wait_until_the_vm_sees_a_folder(checked);
    auto back = vm.docker({"start", "-a", "e2e-swap"});
    EXPECT_TRUE(back.ok()) << describe(back);
    EXPECT_NE(back.out.find("checked folder"), std::string::npos) << describe(back);
    vm.docker({"rm", "-f", "e2e-swap"});
}

// The same swap where dockerd mounts the source itself: a local volume with o=bind.
TEST_F(Shares, AVolumeWhoseDeviceBecameASymlinkIsNotMounted) {
    auto& vm = VmEnvironment::get();
    const std::string device = share_dir() + "/volume-device";
    fs::create_directories(device);
    ASSERT_EQ(::chown(device.c_str(), kOwner, kOwner), 0);
    vm.docker({"volume", "rm", "-f", "e2e-swapvol"});
    auto v = vm.docker({"volume", "create", "-o", "type=none", "-o", "o=bind", "-o",
                        "device=" + device, "e2e-swapvol"});
    ASSERT_TRUE(v.ok()) << describe(v);
    // The twin: a bind volume from a shared folder works and writes to the host folder.
    auto twin = run_in("e2e-swapvol:/m", "echo twin > /m/t && cat /m/t");
    ASSERT_TRUE(twin.ok()) << describe(twin);
    EXPECT_EQ(slurp(device + "/t"), "twin\n");
    // A container made while the device is as checked; then the swap.
    vm.docker({"rm", "-f", "e2e-swapvol-user"});
    auto c = vm.docker({"create", "--name", "e2e-swapvol-user", "-v", "e2e-swapvol:/m",
                        vm.test_image(), "sh", "-c",
                        "if [ -e /m/shadow ]; then echo VM-ETC-REACHED; fi"});
    ASSERT_TRUE(c.ok()) << describe(c);
    fs::rename(device, device + ".old");
    fs::create_directory_symlink("/etc", device);
    wait_until_the_vm_sees_a_symlink(device);
    // A new request with the volume: the policy resolves the device again and refuses it.
    auto fresh = run_in("e2e-swapvol:/m", "true");
    EXPECT_FALSE(fresh.ok()) << describe(fresh);
    EXPECT_NE(fresh.err.find("bind-mount.sensitive"), std::string::npos) << describe(fresh);
    // The start of the container checked before the swap: the policy sees no body, dockerd
    // mounts the device through the symlink, and the runtime wrapper refuses what it got.
    auto attack = vm.docker({"start", "-a", "e2e-swapvol-user"});
    EXPECT_FALSE(attack.ok()) << "the volume mounted the VM's /etc: " << describe(attack);
    EXPECT_EQ(attack.out.find("VM-ETC-REACHED"), std::string::npos) << describe(attack);
    EXPECT_NE(attack.err.find("neither a shared folder nor a filesystem of its own"),
              std::string::npos)
        << describe(attack);
    vm.docker({"rm", "-f", "e2e-swapvol-user"});
    fs::remove(device);
    fs::rename(device + ".old", device);
    vm.docker({"volume", "rm", "-f", "e2e-swapvol"});
}

// docker cp: moby 20.10 mounts the container's bind sources itself, as VM root, following
// symlinks, with no runc (so no runtime wrapper). For a container with a bind (or an
// o=bind volume) the policy refuses the archive endpoints; named volumes stay copyable.
TEST_F(Shares, DockerCpIsRefusedForAContainerWithABindNotForNamedVolumes) {
    auto& vm = VmEnvironment::get();
    const std::string checked = share_dir() + "/cp-checked";
    fs::create_directories(checked);
    write_owned(checked + "/marker", "checked folder\n", 0644, kOwner, kOwner);
    vm.docker({"rm", "-f", "e2e-cp-bind", "e2e-cp-volume"});
    auto c = vm.docker({"create", "--name", "e2e-cp-bind", "-v", checked + ":/m", vm.test_image(),
                        "true"});
    ASSERT_TRUE(c.ok()) << describe(c);
    // The attack it prevents: the folder swapped for a symlink to the VM's /etc.
    fs::rename(checked, checked + ".old");
    fs::create_directory_symlink("/etc", checked);
    wait_until_the_vm_sees_a_symlink(checked);
    auto out = vm.docker({"cp", "e2e-cp-bind:/m/shadow", "-"});
    EXPECT_FALSE(out.ok()) << "docker cp read through the swapped symlink: " << describe(out);
    EXPECT_NE(out.err.find("[rule container.archive"), std::string::npos) << describe(out);
    EXPECT_EQ(out.out.find("root:"), std::string::npos) << describe(out);
    const std::string payload = g_base + "/cp-payload";
    std::ofstream(payload) << "payload\n";
    auto in = vm.docker({"cp", payload, "e2e-cp-bind:/m/written-by-cp"});
    EXPECT_FALSE(in.ok()) << describe(in);
    EXPECT_NE(in.err.find("[rule container.archive"), std::string::npos) << describe(in);
    fs::remove(checked);
    fs::rename(checked + ".old", checked);
    // The twin: a container with a named volume copies both ways.
    auto v = vm.docker({"create", "--name", "e2e-cp-volume", "-v", "e2e-cp-data:/d",
                        vm.test_image(), "true"});
    ASSERT_TRUE(v.ok()) << describe(v);
    auto put = vm.docker({"cp", payload, "e2e-cp-volume:/d/p"});
    EXPECT_TRUE(put.ok()) << describe(put);
    auto get = vm.docker({"cp", "e2e-cp-volume:/d/p", "-"});
    EXPECT_TRUE(get.ok()) << describe(get);
    EXPECT_NE(get.out.find("payload"), std::string::npos) << describe(get);
    vm.docker({"rm", "-f", "e2e-cp-bind", "e2e-cp-volume"});
    vm.docker({"volume", "rm", "e2e-cp-data"});
}

// Last: the live switch to isolation off remounts the device served with the other ID
// map, so container root (now VM root) still writes as the host user.
TEST_F(Shares, AfterSwitchingIsolationOffFilesStillBelongToTheUser) {
    auto& vm = VmEnvironment::get();
    auto sw = vm.vmctl({"isolation", "off", "--yes"}, 600s);
    ASSERT_TRUE(sw.ok()) << describe(sw);
    auto m = vm.vm_exec("grep ' virtiofs ' /proc/mounts");
    EXPECT_NE(m.out.find("cordon-share-0-off " + share_dir()), std::string::npos) << m.out;
    auto r =
        run_in(share_dir() + ":/src",
               "cat /proc/self/uid_map && echo off >> /src/out.txt && echo new > /src/off.txt");
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(slurp(share_dir() + "/out.txt"), "from the container\noff\n");
    for (const char* p : {"/off.txt", "/out.txt"}) {
        struct stat st = stat_of(share_dir() + p);
        EXPECT_EQ(st.st_uid, kOwner) << p;
        EXPECT_EQ(st.st_gid, kOwner) << p;
    }
    // With isolation off the shared-folder rule does not apply (nothing is isolated).
    auto out = run_in(g_base + ":/x", "true");
    EXPECT_TRUE(out.ok()) << describe(out);
}

}  // namespace

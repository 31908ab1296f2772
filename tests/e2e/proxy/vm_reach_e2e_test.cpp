// Issue 13: requests that make dockerd (VM root) mount or attach something of the VM on
// a container's behalf. Each attack is fired with the real docker CLI (or curl where the
// CLI cannot send it) through the host socket and must be refused with its rule, and
// nothing it asked for may exist afterwards; each has a legitimate twin that still works.
// Shares the e2e_shared_vm_test binary's VM (isolation on).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cordon_e2e.hpp"
#include "proxy_e2e_fixture.hpp"

using cordon::e2e::describe;
using namespace std::chrono_literals;

namespace {

using namespace cordon::e2e::proxy;

struct VolumeAttack {
    std::string what;
    std::vector<std::string> opts;  // -o values
    std::string rule;
};

// `docker volume create` with local-driver options that mount VM filesystems or devices.
TEST_F(ProxyE2e, VolumeOptionsThatMountTheVmAreRefused) {
    const VolumeAttack attacks[] = {
        {"overlay over /etc and /data",
         {"type=overlay", "device=overlay", "o=lowerdir=/etc:/data"},
         "volume.type"},
        {"the VM's procfs", {"type=proc", "device=proc"}, "volume.type"},
        {"the data disk by a relative device",
         {"type=ext4", "device=../../../../../../dev/vdb"},
         "volume.type"},
        {"devtmpfs", {"type=devtmpfs", "device=devtmpfs"}, "volume.type"},
        {"sysfs", {"type=sysfs", "device=sysfs"}, "volume.type"},
        {"the cgroup root", {"type=cgroup2", "device=cgroup2"}, "volume.type"},
        {"a bind of /etc", {"type=none", "o=bind", "device=/etc"}, "bind-mount.sensitive"},
        {"a relative bind device", {"type=none", "o=bind", "device=../../etc"}, "volume.bind"},
        {"tmpfs with an option outside the allowlist",
         {"type=tmpfs", "device=tmpfs", "o=size=1m,lowerdir=/etc"},
         "volume.option"},
        {"an option key outside the allowlist",
         {"type=tmpfs", "device=tmpfs", "mode=0777"},
         "volume.option"},
        {"nfs to the VM's own loopback",
         {"type=nfs", "o=addr=127.0.0.1", "device=:/"},
         "volume.address"},
        {"nfs to the host through QEMU's gateway",
         {"type=nfs", "o=addr=10.0.2.2", "device=:/"},
         "volume.address"},
        {"cifs reading a VM file as root",
         {"type=cifs", "o=addr=192.0.2.30,credentials=/etc/shadow", "device=//192.0.2.30/s"},
         "volume.option"},
    };
    int n = 0;
    for (const auto& a : attacks) {
        const std::string name = "cordon-e2e-vattack-" + std::to_string(n++);
        std::string args = "volume create";
        for (const auto& o : a.opts) args += " -o '" + o + "'";
        args += " " + name;
        auto r = docker_sh(vm(), args);
        EXPECT_FALSE(r.ok()) << a.what << ": docker " << args << " succeeded:\n" << r.out;
        expect_refused(a.what, r.out, a.rule);
        auto inspect = docker({"volume", "inspect", name});
        EXPECT_FALSE(inspect.ok()) << a.what << ": the refused volume exists:\n" << inspect.out;
    }
}

// The same options inline in a container's Mounts (no separate volume create).
TEST_F(ProxyE2e, InlineVolumeDriverOptionsAreCheckedLikeVolumeCreate) {
    const std::string name = "cordon-e2e-inline-overlay";
    auto r = docker_sh(vm(),
                       "run --rm --label cordon-e2e=attack --mount "
                       "'type=volume,src=" +
                           name +
                           ",dst=/x,volume-driver=local,volume-opt=type=overlay,"
                           "volume-opt=device=overlay,\"volume-opt=o=lowerdir=/etc:/data\"' " +
                           vm().test_image() + " cat /x/shadow");
    EXPECT_FALSE(r.ok()) << r.out;
    expect_refused("an inline overlay volume", r.out, "volume.type");
    EXPECT_FALSE(docker({"volume", "inspect", name}).ok());

    auto proc = docker_sh(vm(),
                          "run --rm --label cordon-e2e=attack --mount "
                          "'type=volume,src=cordon-e2e-inline-proc,dst=/x,"
                          "volume-opt=type=proc,volume-opt=device=proc' " +
                              vm().test_image() + " cat /x/1/cmdline");
    EXPECT_FALSE(proc.ok()) << proc.out;
    expect_refused("an inline procfs volume", proc.out, "volume.type");

    // tmpfs options dockerd hands to the kernel: a bind or device nodes are refused.
    auto tb = docker_sh(vm(), "run --rm --label cordon-e2e=attack --tmpfs /x:bind,size=1m " +
                                  vm().test_image() + " true");
    EXPECT_FALSE(tb.ok()) << tb.out;
    expect_refused("a tmpfs with bind", tb.out, "tmpfs.option");
    auto td = docker_sh(vm(), "run --rm --label cordon-e2e=attack --tmpfs /x:dev,suid " +
                                  vm().test_image() + " true");
    EXPECT_FALSE(td.ok()) << td.out;
    expect_refused("a tmpfs with dev,suid", td.out, "tmpfs.option");

    auto ps = docker({"ps", "-a", "--filter", "label=cordon-e2e=attack", "--format", "{{.ID}}"});
    ASSERT_TRUE(ps.ok()) << describe(ps);
    EXPECT_EQ(trim(ps.out), "");
}

// The twins: what people really use still works.
TEST_F(ProxyE2e, TmpfsAndPlainNamedVolumesStillWork) {
    const std::string tmpfs = "cordon-e2e-tmpfs-vol";
    docker({"volume", "rm", "-f", tmpfs});
    auto c = docker({"volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o",
                     "o=size=4m,mode=1777", tmpfs});
    ASSERT_TRUE(c.ok()) << describe(c);
    auto df = docker({"run", "--rm", "-v", tmpfs + ":/t", vm().test_image(), "sh", "-c",
                      "grep ' /t ' /proc/mounts; echo ok > /t/f && cat /t/f"});
    ASSERT_TRUE(df.ok()) << describe(df);
    EXPECT_TRUE(contains(df.out, "tmpfs")) << df.out;
    EXPECT_TRUE(contains(df.out, "size=4096k")) << df.out;
    EXPECT_TRUE(contains(df.out, "ok")) << df.out;
    EXPECT_TRUE(docker({"volume", "rm", tmpfs}).ok());

    // A compose-style named volume (labels, no options), used by two containers.
    const std::string named = "cordon-e2e-compose_data";
    docker({"volume", "rm", "-f", named});
    auto n = docker({"volume", "create", "--label", "com.docker.compose.project=cordon-e2e",
                     "--label", "com.docker.compose.volume=data", named});
    ASSERT_TRUE(n.ok()) << describe(n);
    auto w = docker({"run", "--rm", "--mount", "type=volume,src=" + named + ",dst=/d",
                     vm().test_image(), "sh", "-c", "echo shared > /d/f"});
    ASSERT_TRUE(w.ok()) << describe(w);
    auto rd = docker({"run", "--rm", "-v", named + ":/d:ro", vm().test_image(), "cat", "/d/f"});
    ASSERT_TRUE(rd.ok()) << describe(rd);
    EXPECT_EQ(trim(rd.out), "shared");
    EXPECT_TRUE(docker({"volume", "rm", named}).ok());

    // A tmpfs on a container path with everyday options.
    auto t = docker({"run", "--rm", "--tmpfs", "/scratch:rw,noexec,size=8m", vm().test_image(),
                     "sh", "-c", "grep ' /scratch ' /proc/mounts"});
    ASSERT_TRUE(t.ok()) << describe(t);
    EXPECT_TRUE(contains(t.out, "noexec")) << t.out;

    // A network filesystem volume on a LAN address is accepted (creating it mounts
    // nothing; nothing listens at that documentation address).
    const std::string nfs = "cordon-e2e-nfs-vol";
    docker({"volume", "rm", "-f", nfs});
    auto v = docker({"volume", "create", "-o", "type=nfs", "-o", "o=addr=192.0.2.10,ro,nfsvers=4",
                     "-o", "device=:/export", nfs});
    EXPECT_TRUE(v.ok()) << describe(v);
    docker({"volume", "rm", "-f", nfs});
}

// Go reads the first Content-Type and folds Unicode: a form body on /build would reach the
// builder unseen. Sent with curl (the CLI never sends these).
TEST_F(ProxyE2e, FormBodiesOnBuildAreRefusedHoweverTheHeaderIsSpelled) {
    const std::string form = "networkmode=host&cgroupparent=/&t=cordon-e2e/formbuild:1";
    struct Case {
        std::string what;
        std::vector<std::string> headers;
        int status;  // a repeated header is malformed HTTP (400); a form is a policy refusal
    };
    const Case cases[] = {
        {"two Content-Type headers, the form first",
         {"Content-Type: application/x-www-form-urlencoded", "Content-Type: application/x-tar"},
         400},
        {"a trailing no-break space (U+00A0)",
         {"Content-Type: application/x-www-form-urlencoded\xC2\xA0"},
         403},
        {"a dotted capital I (U+0130) in application",
         {"Content-Type: appl\xC4\xB0"
          "cation/x-www-form-urlencoded"},
         403},
        {"multipart, mixed case", {"Content-Type: Multipart/Form-Data; boundary=x"}, 403},
    };
    for (const auto& c : cases) {
        std::vector<std::string> argv{
            "curl", "-sS", "--max-time",    "60", "--unix-socket", socket_path(vm()), "-X",
            "POST", "-w",  "\n%{http_code}"};
        for (const auto& h : c.headers) argv.insert(argv.end(), {"-H", h});
        argv.insert(argv.end(), {"--data-binary", form, "http://docker/v1.41/build"});
        auto r = cordon::run(argv, 90s);
        ASSERT_EQ(r.exit_code, 0) << c.what << ": " << describe(r);
        EXPECT_EQ(status_of(r), c.status) << c.what << "\n" << r.out;
        if (c.status == 403)
            expect_refused(c.what, r.out, "http.form");
    }
    EXPECT_FALSE(docker({"image", "inspect", "cordon-e2e/formbuild:1"}).ok());
}

// A bridge on the VM's own uplink subnet would capture its traffic; a network of its own works.
TEST_F(ProxyE2e, NetworksOnTheVmsOwnAddressesAreRefused) {
    const std::string bad = "cordon-e2e-uplink-net";
    auto r = docker_sh(vm(), "network create --subnet 10.0.2.0/24 --gateway 10.0.2.2 " + bad);
    EXPECT_FALSE(r.ok()) << r.out;
    expect_refused("a network on the VM's uplink subnet", r.out, "network.subnet");
    auto lo = docker_sh(vm(), "network create --subnet 127.0.0.0/16 " + bad);
    EXPECT_FALSE(lo.ok()) << lo.out;
    expect_refused("a network on loopback", lo.out, "network.subnet");
    EXPECT_FALSE(docker({"network", "inspect", bad}).ok());

    const std::string good = "cordon-e2e-own-net";
    docker({"network", "rm", good});
    auto c = docker({"network", "create", "--subnet", "10.123.0.0/24", good});
    ASSERT_TRUE(c.ok()) << describe(c);
    auto run = docker({"run", "--rm", "--network", good, vm().test_image(), "sh", "-c",
                       "grep -o '10\\.123\\.0\\.[0-9]*' /proc/net/fib_trie | head -1"});
    ASSERT_TRUE(run.ok()) << describe(run);
    EXPECT_TRUE(contains(run.out, "10.123.0.")) << run.out;
    EXPECT_TRUE(docker({"network", "rm", good}).ok());
}

}  // namespace

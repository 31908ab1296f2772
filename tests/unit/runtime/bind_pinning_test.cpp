#include "cordon/runtime/bind_pinning.hpp"

#include <gtest/gtest.h>

#include "cordon/error.hpp"

using namespace cordon::runtime;
using cordon::MountEntry;
using json = nlohmann::json;

namespace {

MountEntry mount_at(std::string point, std::string type, std::string device,
                    std::string root = "/", std::string source = "src") {
    MountEntry m;
    m.mount_point = std::move(point);
    m.fs_type = std::move(type);
    m.device = std::move(device);
    m.root = std::move(root);
    m.source = std::move(source);
    return m;
}

// The VM as the guest agent leaves it: root disk, /run, a data disk, two shared folders.
std::vector<MountEntry> vm_mounts() {
    return {mount_at("/", "ext4", "254:0"),
            mount_at("/run", "tmpfs", "0:24"),
            mount_at("/dev/shm", "tmpfs", "0:25"),
            mount_at("/proc", "proc", "0:22"),
            mount_at("/var/lib/docker", "ext4", "254:16"),
            mount_at("/home/u/proj", "virtiofs", "0:40", "/", "cordon-share-0"),
            mount_at("/home/u/proj/sub", "virtiofs", "0:41", "/", "cordon-share-1")};
}

const std::string kVolume = "/var/lib/docker/100000.100000/volumes/v/_data";

}  // namespace

TEST(BindPinning, SharedFoldersAreTheVirtiofsMounts) {
    const auto roots = shared_folder_roots(vm_mounts());
    ASSERT_EQ(roots, (std::vector<std::string>{"/home/u/proj", "/home/u/proj/sub"}));
    EXPECT_EQ(shared_folder_of("/home/u/proj/src", roots), "/home/u/proj");
    EXPECT_EQ(shared_folder_of("/home/u/proj", roots), "/home/u/proj");
    EXPECT_EQ(shared_folder_of("/home/u/proj/sub/x", roots), "/home/u/proj/sub");  // innermost
    EXPECT_FALSE(shared_folder_of("/home/u/project2", roots));  // a prefix, not a parent
    EXPECT_FALSE(shared_folder_of("/etc", roots));
    EXPECT_FALSE(shared_folder_of("/home/u", roots));
}

TEST(BindPinning, AVolumeMountOfAFilesystemOfItsOwnIsFine) {
    auto mounts = vm_mounts();
    mounts.push_back(mount_at(kVolume, "tmpfs", "0:50"));
    EXPECT_EQ(foreign_mount_refusal(kVolume, mounts), "");
    // NFS may share one superblock between two volumes of the same export.
    mounts.push_back(mount_at("/var/lib/docker/100000.100000/volumes/w/_data", "nfs4", "0:51"));
    mounts.push_back(mount_at("/var/lib/docker/100000.100000/volumes/w2/_data", "nfs4", "0:51"));
    EXPECT_EQ(foreign_mount_refusal("/var/lib/docker/100000.100000/volumes/w/_data", mounts), "");
    // A container's /dev/shm, dockerd's own tmpfs.
    mounts.push_back(mount_at("/var/lib/docker/100000.100000/containers/abc/mounts/shm", "tmpfs",
                              "0:52"));
    EXPECT_EQ(foreign_mount_refusal("/var/lib/docker/100000.100000/containers/abc/mounts/shm",
                                    mounts),
              "");
}

TEST(BindPinning, AVolumeBoundFromASharedFolderIsFine) {
    auto mounts = vm_mounts();
    mounts.push_back(mount_at(kVolume, "virtiofs", "0:40", "/data"));
    EXPECT_EQ(foreign_mount_refusal(kVolume, mounts), "");
}

TEST(BindPinning, APlainFolderIsNotJudged) {
    // A named volume without options, hosts/resolv.conf: folders and files, not mounts.
    EXPECT_EQ(foreign_mount_refusal(kVolume, vm_mounts()), "");
    EXPECT_EQ(foreign_mount_refusal("/usr/bin/docker-init", vm_mounts()), "");
}

// What a volume with o=bind and a device swapped for a symlink makes dockerd mount.
TEST(BindPinning, WhatASwappedSymlinkMakesDockerdMountIsRefused) {
    struct Case {
        MountEntry mounted;
        const char* why;
    };
    const Case cases[] = {
        {mount_at(kVolume, "ext4", "254:0", "/etc"), "part of the root disk"},
        {mount_at(kVolume, "ext4", "254:0", "/"), "the whole root disk"},
        {mount_at(kVolume, "ext4", "254:16", "/"), "the data disk"},
        {mount_at(kVolume, "tmpfs", "0:24", "/cordon"), "a folder of /run"},
        {mount_at(kVolume, "tmpfs", "0:24", "/"), "all of /run"},
        {mount_at(kVolume, "tmpfs", "0:25", "/"), "/dev/shm"},
        {mount_at(kVolume, "proc", "0:22", "/"), "procfs"},
        {mount_at(kVolume, "cgroup2", "0:26", "/"), "the cgroup root"},
    };
    for (const auto& c : cases) {
        auto mounts = vm_mounts();
        mounts.push_back(c.mounted);
        const std::string why = foreign_mount_refusal(kVolume, mounts);
        EXPECT_NE(why, "") << c.why;
        EXPECT_NE(why.find(kVolume), std::string::npos) << why;
    }
}

TEST(BindPinning, TheMountOnTopIsTheOneJudged) {
    auto mounts = vm_mounts();
    mounts.push_back(mount_at(kVolume, "tmpfs", "0:50"));
    mounts.push_back(mount_at(kVolume, "ext4", "254:0", "/etc"));  // stacked later
    EXPECT_NE(foreign_mount_refusal(kVolume, mounts), "");
}

TEST(BindPinning, CheckLandingsSkipsPinnedMountsAndNamesTheMount) {
    auto mounts = vm_mounts();
    mounts.push_back(mount_at(kVolume, "ext4", "254:0", "/etc"));
    const json spec = {{"mounts",
                        {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
                         {{"destination", "/v"}, {"type", "bind"}, {"source", kVolume},
                          {"options", {"rbind"}}}}}};
    try {
        check_bind_landings(spec, {}, mounts);
        FAIL() << "the foreign mount was not refused";
    } catch (const cordon::Error& e) {
        EXPECT_EQ(e.subject(), "mounts[1]");
        EXPECT_NE(e.hint().find("docker volume rm"), std::string::npos);
    }
    EXPECT_NO_THROW(check_bind_landings(spec, {{1, "/run/cordon-idmap/c/p1"}}, mounts));
    // Not a bind (no bind type or option): runc does not bind it, nothing to judge.
    json not_bind = spec;
    not_bind["mounts"][1]["type"] = "tmpfs";
    not_bind["mounts"][1]["options"] = json::array();
    EXPECT_NO_THROW(check_bind_landings(not_bind, {}, mounts));
    // An "rbind" option makes it a bind whatever the type.
    not_bind["mounts"][1]["options"] = {"rbind"};
    EXPECT_THROW(check_bind_landings(not_bind, {}, mounts), cordon::Error);
}

TEST(BindPinning, OpeningOutsideTheSharedFolderIsRefusedBeforeAnySyscall) {
    EXPECT_THROW(open_without_symlinks("/home/u/proj", "/etc/passwd"), cordon::Error);
    EXPECT_THROW(open_without_symlinks("/home/u/proj", "/home/u/project2/x"), cordon::Error);
}

TEST(BindPinning, WithIsolationOnlySharesEngineFilesAndTheProxySocketAreBindSources) {
    const std::vector<std::string> roots = {"/home/u/proj"};
    const std::string id(64, 'a');
    const std::string other(64, '0');
    auto refused = [&](const std::string& source) {
        return bind_source_refusal(source, roots, "/var/lib/docker", "/run/cordon/docker.sock");
    };
    for (const std::string& ok : std::vector<std::string>{
             "/home/u/proj", "/home/u/proj/src",
             "/run/cordon/docker.sock",
             "/var/lib/docker/100000.100000/containers/" + id + "/hosts",
             "/var/lib/docker/100000.100000/containers/" + id + "/resolv.conf",
             "/var/lib/docker/containers/" + id + "/hostname",  // exclusive ranges: no remap
             "/var/lib/docker/100000.100000/containers/" + other + "/mounts/shm",  // --ipc container:
             "/var/lib/docker/100000.100000/volumes/data/_data",
             "/var/lib/docker/volumes/data/_data/sub",  // a volume subpath
         })
        EXPECT_EQ(refused(ok), "") << ok;
    for (const std::string& bad : std::vector<std::string>{
             "/etc", "/", "/home/u", "/home/u/project2", "/run/cordon/dockerd.sock",
             "/run/cordon", "/var/lib/docker", "/var/lib/docker/100000.100000",
             "/var/lib/docker/100000.100000/containers/" + id,
             "/var/lib/docker/100000.100000/containers/" + id + "/config.v2.json",
             "/var/lib/docker/containers/not-an-id/hosts",
             "/var/lib/docker/100000.100000/overlay2/x/merged",
             "/var/lib/docker/volumes/data",
             "/var/lib/docker/volumes/data/other",
             "/var/lib/docker/volumes/../../../etc/_data",
             "/var/lib/docker/x.y/volumes/v/_data",  // not a remap folder
             "/var/lib/docker-other/volumes/v/_data",
             "/usr/bin/docker-init",
         }) {
        const std::string why = refused(bad);
        EXPECT_NE(why, "") << bad;
        EXPECT_NE(why.find(bad), std::string::npos) << why;
    }
}

TEST(BindPinning, CheckSourcesNamesTheMountAndTheWayOut) {
    const json spec = {{"mounts",
                        {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
                         {{"destination", "/x"}, {"type", "bind"}, {"source", "/etc"},
                          {"options", {"rbind"}}}}}};
    try {
        check_bind_sources(spec, {}, {"/home/u/proj"}, "/var/lib/docker", "/run/cordon/docker.sock");
        FAIL() << "a VM path was accepted as a bind source";
    } catch (const cordon::Error& e) {
        EXPECT_EQ(e.subject(), "mounts[1]");
        EXPECT_NE(e.failure().find("--volumes-from"), std::string::npos);
        EXPECT_NE(e.hint().find("docker rm"), std::string::npos);
    }
    // Pinned sources were already judged (and replaced).
    EXPECT_NO_THROW(check_bind_sources(spec, {{1, "/run/cordon-idmap/c/p1"}}, {"/home/u/proj"},
                                       "/var/lib/docker", "/run/cordon/docker.sock"));
}

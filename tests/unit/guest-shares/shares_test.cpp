// The guest side of shared folders: reading the host's command line words and mounting
// the virtiofs device of the isolation mode in force (system calls faked; the real mounts
// are exercised by e2e_shared_vm_test (Shares.*)).
#include "cordon/shares/shares.hpp"

#include <gtest/gtest.h>

#include <cerrno>

#include "cordon/error.hpp"

using namespace cordon::shares;

TEST(GuestShares, ParsesTheHostsWords) {
    std::vector<std::string> problems;
    auto s = parse_share_cmdline(
        "console=ttyS0 cordon.share=0,rw,/home/me cordon.isolation_lock=on "
        "cordon.share=1,ro,/srv/my%20data%2C%25x quiet",
        &problems);
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0], (GuestShare{0, false, "/home/me"}));
    EXPECT_EQ(s[1], (GuestShare{1, true, "/srv/my data,%x"}));
    EXPECT_TRUE(problems.empty());
}

TEST(GuestShares, SkipsBadWordsAndSaysWhy) {
    std::vector<std::string> problems;
    auto s = parse_share_cmdline(
        "cordon.share=0,rw cordon.share=x,rw,/a cordon.share=1,rx,/a cordon.share=2,rw,rel "
        "cordon.share=3,rw,/etc cordon.share=4,rw,/ cordon.share=5,rw,/a/../b "
        "cordon.share=6,rw,/a%2 cordon.share=7,rw,/a%00b cordon.share=8,rw,/ok "
        "cordon.share=8,rw,/ok2 cordon.share=9,rw,/ok cordon.share=100,rw,/c "
        "cordon.share=10,rw,/var/lib/docker cordon.share=11,rw,/proc",
        &problems);
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].path, "/ok");
    EXPECT_EQ(problems.size(), 14u);
}

TEST(GuestShares, PercentDecoding) {
    EXPECT_EQ(percent_decode("/a%2Fb%41"), "/a/bA");
    EXPECT_THROW(percent_decode("/a%G0"), cordon::Error);
    EXPECT_THROW(percent_decode("/a%"), cordon::Error);
}

namespace {
struct FakeOps {
    std::vector<std::string> calls;
    int mount_error = 0;      // returned by the next mounts
    bool enodev_once = false;
    int modules_loaded = 0;
    MountOps ops() {
        MountOps o;
        o.mount = [this](const std::string& tag, const std::string& path, bool ro) {
            calls.push_back("mount " + tag + " " + path + (ro ? " ro" : " rw"));
            if (enodev_once && modules_loaded == 0) return ENODEV;
            return mount_error;
        };
        o.unmount = [this](const std::string& path) {
            calls.push_back("umount " + path);
            return 0;
        };
        o.make_dirs = [this](const std::string& path) {
            calls.push_back("mkdir " + path);
            return 0;
        };
        o.load_module = [this] {
            calls.push_back("modprobe");
            ++modules_loaded;
        };
        return o;
    }
};
}  // namespace

TEST(GuestShares, MountsTheDeviceOfTheModeAndSwapsOnASwitch) {
    FakeOps f;
    ShareMounter m({{0, false, "/home/me"}, {1, true, "/srv/ro"}}, f.ops());
    m.apply(true);
    EXPECT_EQ(f.calls, (std::vector<std::string>{"mkdir /home/me", "mount cordon-share-0-on /home/me rw",
                                                 "mkdir /srv/ro", "mount cordon-share-1-on /srv/ro ro"}));
    f.calls.clear();
    m.apply(true);  // same mode: nothing to do
    EXPECT_TRUE(f.calls.empty());
    m.apply(false);
    EXPECT_EQ(f.calls, (std::vector<std::string>{"umount /home/me", "mkdir /home/me",
                                                 "mount cordon-share-0-off /home/me rw", "umount /srv/ro",
                                                 "mkdir /srv/ro", "mount cordon-share-1-off /srv/ro ro"}));
    auto st = m.status();
    EXPECT_EQ(st[0]["tag"], "cordon-share-0-off");
    EXPECT_EQ(st[0]["mounted"], true);
    EXPECT_EQ(m.paths(), (std::vector<std::string>{"/home/me", "/srv/ro"}));
}

TEST(GuestShares, LoadsTheModuleOnceWhenTheFilesystemIsUnknown) {
    FakeOps f;
    f.enodev_once = true;
    ShareMounter m({{0, false, "/a"}, {1, false, "/b"}}, f.ops());
    m.apply(true);
    EXPECT_EQ(f.modules_loaded, 1);
    EXPECT_EQ(m.status()[0]["mounted"], true);
    EXPECT_EQ(m.status()[1]["mounted"], true);
}

TEST(GuestShares, AFailedMountIsReportedNotThrown) {
    FakeOps f;
    f.mount_error = ENOENT;  // e.g. the host did not export that tag
    ShareMounter m({{0, false, "/a"}}, f.ops());
    EXPECT_NO_THROW(m.apply(false));
    auto st = m.status();
    EXPECT_EQ(st[0]["mounted"], false);
    EXPECT_NE(st[0]["error"].get<std::string>().find("cordon-share-0-off"), std::string::npos);
    f.mount_error = 0;
    m.apply(false);  // retried on the next mode change
    EXPECT_EQ(m.status()[0]["mounted"], true);
    EXPECT_FALSE(m.status()[0].contains("error"));
}

TEST(GuestShares, ARestartedAgentTakesOverTheMountsItFinds) {
    // The previous agent mounted /a for isolation on and /b for off; /c is not mounted.
    FakeOps f;
    auto ops = f.ops();
    ops.mounted_tag = [](const std::string& path) -> std::string {
        if (path == "/a")
            return "cordon-share-0-on";
        if (path == "/b")
            return "cordon-share-1-off";
        return "";
    };
    ShareMounter m({{0, false, "/a"}, {1, false, "/b"}, {2, true, "/c"}}, ops);
    m.apply(true);
    // /a is kept (no second mount stacked on it), /b is swapped, /c is mounted.
    EXPECT_EQ(f.calls,
              (std::vector<std::string>{"umount /b", "mkdir /b", "mount cordon-share-1-on /b rw",
                                        "mkdir /c", "mount cordon-share-2-on /c ro"}));
    EXPECT_EQ(m.status()[0]["mounted"], true);
    EXPECT_EQ(m.status()[0]["tag"], "cordon-share-0-on");
    f.calls.clear();
    m.apply(false);  // a later switch unmounts what was taken over
    EXPECT_EQ(f.calls[0], "umount /a");
}

TEST(GuestShares, TheSystemLooksUpVirtiofsMountsInMountinfo) {
    // No virtiofs here: nothing is found, and an unknown path is not an error.
    auto ops = MountOps::system();
    ASSERT_TRUE(ops.mounted_tag);
    EXPECT_EQ(ops.mounted_tag("/"), "");
    EXPECT_EQ(ops.mounted_tag("/no/such/path"), "");
}

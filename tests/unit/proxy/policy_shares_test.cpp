// Bind mounts only from shared host folders when isolation is on (docs/POLICY.md,
// "Shared folders"): attacks that try to reach outside them, and the legitimate uses.
#include <gtest/gtest.h>

#include <filesystem>

#include "fs_fixture.hpp"

namespace {

using namespace cordon::policy;
namespace fs = std::filesystem;

class PolicyShares : public ::testing::Test {
  protected:
    void SetUp() override {
        root_ = cordon::testing::make_vm_tree();
        fs::create_directories(root_ + "/home/user/project/src");
        fs::create_directories(root_ + "/home/other");
        fs::create_directories(root_ + "/home/username");
        fs::create_directories(root_ + "/mnt/ro-share");
        // Escapes a container could prepare inside a shared folder.
        fs::create_directory_symlink("/srv/data", root_ + "/home/user/project/to-srv");
        fs::create_directory_symlink("../../other", root_ + "/home/user/project/up");
        fs::create_directory_symlink("/home/user/project/src", root_ + "/srv/into-share");
    }
    void TearDown() override { fs::remove_all(root_); }

    PolicyConfig config(bool isolation = true) const {
        auto c = cordon::testing::test_config(root_);
        c.binds_only_from_shares = true;
        c.shared_folders = {"/home/user/project", "/mnt/ro-share"};
        c.isolation = isolation;
        return c;
    }
    Decision create(const PolicyConfig& cfg, const std::string& host_config) const {
        Policy p(cfg);
        RequestInfo req{"POST", "/v1.41/containers/create", "application/json", Role::host};
        auto head = p.check_head(req);
        if (head.verdict != Verdict::inspect)
            return head;
        std::string body = R"({"Image":"busybox","HostConfig":)" + host_config + "}";
        auto d = p.check_body(req, head, body);
        if (d.verdict != Verdict::need_lookup)
            return d;
        cordon::policy::Lookups l;  // the named volumes do not exist yet
        for (const auto& r : d.lookups)
            if (r.kind == cordon::policy::LookupRequest::Kind::volume)
                l.volumes[r.name] = {};
        return p.check_body(req, head, body, &l);
    }
    Decision bind(const std::string& src, bool isolation = true) const {
        return create(config(isolation), R"({"Binds":[")" + src + R"(:/x"]})");
    }
    std::string root_;
};

// --- legitimate uses

TEST_F(PolicyShares, BindOfASharedFolderAndOfAFolderInsideItIsAllowed) {
    for (const char* src : {"/home/user/project", "/home/user/project/src",
                            "/home/user/project/not-yet-created", "/mnt/ro-share"}) {
        auto d = bind(src);
        EXPECT_EQ(d.verdict, Verdict::allow) << src << ": " << d.message;
    }
}

TEST_F(PolicyShares, MountsTypeBindInsideASharedFolderIsAllowed) {
    auto d =
        create(config(),
               R"({"Mounts":[{"Type":"bind","Source":"/home/user/project/src","Target":"/s"}]})");
    EXPECT_EQ(d.verdict, Verdict::allow) << d.message;
}

TEST_F(PolicyShares, NamedVolumesAndTmpfsNeedNoSharedFolder) {
    auto d = create(
        config(),
        R"({"Binds":["cache:/cache"],"Mounts":[{"Type":"volume","Source":"v","Target":"/v"},{"Type":"tmpfs","Target":"/t"}]})");
    EXPECT_EQ(d.verdict, Verdict::allow) << d.message;
}

TEST_F(PolicyShares, ASymlinkOutsideThatLeadsIntoASharedFolderIsAllowedAndRewritten) {
    auto d = bind("/srv/into-share");
    ASSERT_EQ(d.verdict, Verdict::allow) << d.message;
    ASSERT_TRUE(d.rewritten_body);
    EXPECT_NE(d.rewritten_body->find("/home/user/project/src:/x"), std::string::npos);
}

TEST_F(PolicyShares, WithIsolationOffAnyNonSensitiveBindIsAllowedAsBefore) {
    EXPECT_EQ(bind("/srv/data", false).verdict, Verdict::allow);
}

TEST_F(PolicyShares, WithoutTheRestrictionBindsOutsideSharesStayAllowed) {
    auto c = config();
    c.binds_only_from_shares = false;
    EXPECT_EQ(create(c, R"({"Binds":["/srv/data:/x"]})").verdict, Verdict::allow);
}

// --- attacks

TEST_F(PolicyShares, BindOutsideSharedFoldersIsRefusedNamingTheSettingToChange) {
    auto d = bind("/srv/data");
    ASSERT_EQ(d.verdict, Verdict::deny);
    EXPECT_EQ(d.rule, "bind-mount.outside-shares");
    EXPECT_NE(d.message.find("shared_folders"), std::string::npos) << d.message;
    EXPECT_NE(d.message.find("vmctl shares add /srv/data"), std::string::npos) << d.message;
    EXPECT_NE(d.message.find("/home/user/project, /mnt/ro-share"), std::string::npos) << d.message;
}

TEST_F(PolicyShares, ASiblingWithTheSamePrefixIsNotInside) {
    EXPECT_EQ(bind("/home/username").rule, "bind-mount.outside-shares");
    EXPECT_EQ(bind("/home/user/projectX").rule, "bind-mount.outside-shares");
}

TEST_F(PolicyShares, AParentOfASharedFolderIsRefused) {
    EXPECT_EQ(bind("/home/user").rule, "bind-mount.outside-shares");
    EXPECT_EQ(bind("/home").rule, "bind-mount.outside-shares");
}

TEST_F(PolicyShares, SymlinksInsideASharedFolderThatLeadOutAreRefused) {
    auto d = bind("/home/user/project/to-srv");
    EXPECT_EQ(d.rule, "bind-mount.outside-shares");
    EXPECT_NE(d.message.find("resolves to /srv/data"), std::string::npos) << d.message;
    EXPECT_EQ(bind("/home/user/project/up").rule, "bind-mount.outside-shares");
}

TEST_F(PolicyShares, DotSegmentsCannotClimbOut) {
    EXPECT_EQ(bind("/home/user/project/../other").rule, "bind-mount.syntax");
}

TEST_F(PolicyShares, SensitivePathsStayRefusedEvenWhenShared) {
    auto c = config();
    c.shared_folders.push_back("/etc");
    c.shared_folders.push_back("/root");
    EXPECT_EQ(create(c, R"({"Binds":["/etc:/x"]})").rule, "bind-mount.sensitive");
    EXPECT_EQ(create(c, R"({"Binds":["/root:/x"]})").rule, "bind-mount.sensitive");
}

TEST_F(PolicyShares, MountsAndBindVolumesOutsideAreRefusedToo) {
    EXPECT_EQ(
        create(config(), R"({"Mounts":[{"Type":"bind","Source":"/srv/data","Target":"/s"}]})").rule,
        "bind-mount.outside-shares");
    Policy p(config());
    RequestInfo req{"POST", "/v1.41/volumes/create", "application/json", Role::host};
    auto head = p.check_head(req);
    ASSERT_EQ(head.verdict, Verdict::inspect);
    auto d = p.check_body(
        req, head, R"({"Name":"v","DriverOpts":{"type":"none","o":"bind","device":"/srv/data"}})");
    EXPECT_EQ(d.rule, "bind-mount.outside-shares") << d.message;
}

TEST_F(PolicyShares, NoSharedFoldersMeansNoBinds) {
    auto c = config();
    c.shared_folders.clear();
    auto d = create(c, R"({"Binds":["/home/user/project:/x"]})");
    EXPECT_EQ(d.rule, "bind-mount.outside-shares");
    EXPECT_NE(d.message.find("none are shared"), std::string::npos) << d.message;
}

TEST_F(PolicyShares, KeySpellingsDoNotSkipTheCheck) {
    auto d = create(config(), R"({"binds":["/srv/data:/x"]})");
    EXPECT_EQ(d.rule, "bind-mount.outside-shares") << d.message;
}

}  // namespace

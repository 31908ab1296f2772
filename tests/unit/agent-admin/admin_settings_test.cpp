// The guest's side of the admin settings, on a scratch fw_cfg tree and file.
#include "admin_settings.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "cordon/atomic_file.hpp"

namespace fs = std::filesystem;
using namespace cordon::agent;

namespace {

const std::string kDigest = "docker/compose@sha256:" + std::string(64, 'e');

class AdminSettings : public ::testing::Test {
  protected:
    void SetUp() override {
        root = fs::temp_directory_path() /
               ("cordon-admin-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(root);
        fs::create_directories(root / "etc");
        paths.fw_cfg_root = (root / "fw_cfg").string();
        paths.file = (root / "etc/admin-settings.json").string();
    }
    void TearDown() override { fs::remove_all(root); }
    // What QEMU shows the guest for the host's document.
    void host_sent(const std::string& doc) {
        const fs::path raw = admin_fw_cfg_path(paths.fw_cfg_root);
        fs::create_directories(raw.parent_path());
        std::ofstream(raw) << doc;
    }
    AdminState receive(const std::string& cmdline = "console=ttyS0 cordon.admin=fw_cfg") {
        return receive_admin_settings(cmdline, paths, [this] { ++module_loads; });
    }
    fs::path root;
    AdminPaths paths;
    int module_loads = 0;
};

TEST_F(AdminSettings, WhatTheHostSentIsKeptRootOnlyAndReachesThePolicy) {
    host_sent(R"({"version":1,"socketMountImages":[")" + kDigest +
              R"("],"commandList":{"type":"allow","commands":["container.list","image.*"]},)"
              R"("lockVmShell":false})");
    AdminState st = receive();
    EXPECT_EQ(st.state, "ok") << st.message;
    EXPECT_EQ(module_loads, 0);  // fw_cfg is there already
    struct stat sb {};
    ASSERT_EQ(::stat(paths.file.c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 07777, 0600u);
    cordon::policy::PolicyConfig pc;
    apply_admin_policy(st, pc);
    EXPECT_EQ(st.state, "ok");
    EXPECT_EQ(pc.socket_image_allowlist, std::vector<std::string>{kDigest});
    EXPECT_EQ(pc.command_list.type, cordon::policy::CommandList::Type::allow);
    const cordon::policy::Policy policy(pc);
    EXPECT_TRUE(policy.command_allowed(cordon::policy::Role::container, "image.pull"));
    EXPECT_FALSE(policy.command_allowed(cordon::policy::Role::container, "container.create"));
    EXPECT_EQ(shell_refusal(st), "");
}

TEST_F(AdminSettings, TheShellLockIsRefusedWithTheSettingsName) {
    host_sent(R"({"version":1,"lockVmShell":true})");
    const AdminState st = receive();
    EXPECT_EQ(st.state, "ok");
    EXPECT_NE(shell_refusal(st).find("lockVmShell"), std::string::npos);
}

TEST_F(AdminSettings, NothingSentAndNoFileIsTheDefaults) {
    const AdminState st = receive("console=ttyS0");
    EXPECT_EQ(st.state, "none");
    EXPECT_EQ(shell_refusal(st), "");
    EXPECT_TRUE(st.policy.socket_mount_images.empty());
}

TEST_F(AdminSettings, AnnouncedButMissingDeniesAll) {
    AdminState st = receive();  // no fw_cfg at all: the module is loaded once, still missing
    EXPECT_EQ(module_loads, 1);
    EXPECT_EQ(st.state, "error");
    EXPECT_NE(st.message.find("qemu_fw_cfg"), std::string::npos) << st.message;
    EXPECT_NE(shell_refusal(st), "");
    fs::create_directories(paths.fw_cfg_root + "/by_name");  // fw_cfg without our entry
    st = receive();
    EXPECT_EQ(st.state, "error");
    EXPECT_NE(st.message.find("there are none"), std::string::npos) << st.message;
    cordon::policy::PolicyConfig pc;
    apply_admin_policy(st, pc);
    EXPECT_TRUE(pc.socket_image_allowlist.empty());
    EXPECT_FALSE(
        cordon::policy::Policy(pc).command_allowed(cordon::policy::Role::container, "system.ping"));
}

TEST_F(AdminSettings, MalformedSettingsDenyAllAndAreNotWritten) {
    for (const std::string& doc : std::vector<std::string>{
             std::string("{"), std::string(R"({"version":1,"lockVmShell":"no"})"),
             std::string(R"({"version":1,"isolation":false})"),
             R"({"version":1,"socketMountImages":["docker/compose:latest"]})"}) {
        fs::remove(paths.file);
        host_sent(doc);
        const AdminState st = receive();
        EXPECT_EQ(st.state, "error") << doc;
        EXPECT_TRUE(st.policy.lock_vm_shell) << doc;
        EXPECT_FALSE(fs::exists(paths.file)) << doc;
    }
}

TEST_F(AdminSettings, AnAnnouncedDocumentWinsOverAStaleFile) {
    cordon::write_file_atomically(paths.file, R"({"version":1,"lockVmShell":false})", 0600);
    host_sent(R"({"version":1,"lockVmShell":true})");
    EXPECT_TRUE(receive().policy.lock_vm_shell);
    // Announced but unreadable: the stale file is not used either.
    fs::remove_all(paths.fw_cfg_root);
    EXPECT_EQ(receive().state, "error");
}

TEST_F(AdminSettings, AFileInTheImageIsReadWhenNothingWasSent) {
    cordon::write_file_atomically(paths.file, R"({"version":1,"lockVmShell":true})", 0600);
    const AdminState st = receive("console=ttyS0");
    EXPECT_EQ(st.state, "ok");
    EXPECT_TRUE(st.policy.lock_vm_shell);
}

TEST_F(AdminSettings, AnUnknownOperationInTheCommandListDeniesAll) {
    // A typo in a deny list would silently allow the operation: refused.
    host_sent(R"({"version":1,"commandList":{"type":"deny","commands":["image.psuh"]}})");
    AdminState st = receive();
    EXPECT_EQ(st.state, "ok");
    cordon::policy::PolicyConfig pc;
    apply_admin_policy(st, pc);
    EXPECT_EQ(st.state, "error");
    EXPECT_NE(st.message.find("image.psuh"), std::string::npos);
    EXPECT_FALSE(
        cordon::policy::Policy(pc).command_allowed(cordon::policy::Role::container, "image.push"));
    // The legitimate twin.
    host_sent(R"({"version":1,"commandList":{"type":"deny","commands":["image.push","exec.*"]}})");
    st = receive();
    apply_admin_policy(st, pc);
    EXPECT_EQ(st.state, "ok") << st.message;
    EXPECT_FALSE(
        cordon::policy::Policy(pc).command_allowed(cordon::policy::Role::container, "exec.create"));
    EXPECT_TRUE(
        cordon::policy::Policy(pc).command_allowed(cordon::policy::Role::container, "image.pull"));
}

TEST(OperationPattern, OnlyNamesOfTheRouteTable) {
    using cordon::policy::is_operation_pattern;
    EXPECT_TRUE(is_operation_pattern("*"));
    EXPECT_TRUE(is_operation_pattern("image.push"));
    EXPECT_TRUE(is_operation_pattern("image.*"));
    EXPECT_TRUE(is_operation_pattern("image.build.*"));
    EXPECT_FALSE(is_operation_pattern("image.psuh"));
    EXPECT_TRUE(is_operation_pattern("swarm.*"));   // the read-only swarm queries
    EXPECT_FALSE(is_operation_pattern("secret.*"));  // no such group
    EXPECT_FALSE(is_operation_pattern("ima.*"));  // a group is a whole segment
    EXPECT_FALSE(is_operation_pattern(".*"));
    EXPECT_FALSE(is_operation_pattern(""));
}

}  // namespace

// Settings layering, locked keys, invalid files and atomic writes, on real files.
#include "cordon/host/settings.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "cordon/host/host_error.hpp"
#include "test_dir.hpp"

using namespace cordon::host;
using cordon::host::test::slurp;
using cordon::host::test::TempDir;
using nlohmann::json;

namespace {

class Settings_ : public ::testing::Test {
  protected:
    TempDir dir;
    SettingsFiles files{dir / "user/settings.json", dir / "admin/admin-settings.json"};
    LayeredSettings load() { return LayeredSettings::load(files); }
    void user(const std::string& text) { dir.write("user/settings.json", text); }
    void admin(const std::string& text) { dir.write("admin/admin-settings.json", text); }
    // Loads and returns the HostError it throws.
    HostError load_error() {
        try {
            load();
        } catch (const HostError& e) {
            return e;
        }
        ADD_FAILURE() << "loading did not fail";
        return HostError(ErrorKind::generic, "none");
    }
};

}  // namespace

TEST_F(Settings_, MissingFilesGiveTheDefaults) {
    Settings s = load().effective();
    EXPECT_EQ(s.cpus, 2);
    EXPECT_EQ(s.memory_mib, 2048);
    EXPECT_EQ(s.disk_gib, 20);
    EXPECT_EQ(s.vm_name, "cordon");
    EXPECT_EQ(s.accelerator, Accelerator::automatic);
    EXPECT_TRUE(s.isolation);
    EXPECT_EQ(s.connect_uri, "");
    EXPECT_EQ(load().get("cpus").source, Source::builtin);
}

TEST_F(Settings_, UserOverridesDefaultsAndAdminDefaults) {
    admin(R"({"cpus": 4, "memory_mib": 4096})");
    user(R"({"cpus": 6, "accelerator": "tcg"})");
    LayeredSettings l = load();
    Settings s = l.effective();
    EXPECT_EQ(s.cpus, 6);           // user beats an unlocked admin value
    EXPECT_EQ(s.memory_mib, 4096);  // admin beats the built-in default
    EXPECT_EQ(s.accelerator, Accelerator::tcg);
    EXPECT_EQ(l.get("cpus").source, Source::user);
    EXPECT_EQ(l.get("cpus").file, files.user);
    EXPECT_EQ(l.get("memory_mib").source, Source::admin);
    EXPECT_FALSE(l.get("memory_mib").locked);
}

TEST_F(Settings_, LockedAdminKeyWinsAndCannotBeSet) {
    admin(R"({"isolation": true, "cpus": 2, "locked": ["isolation", "cpus"]})");
    user(R"({"isolation": false, "cpus": 8})");
    LayeredSettings l = load();
    EXPECT_TRUE(l.effective().isolation);
    EXPECT_EQ(l.effective().cpus, 2);
    EXPECT_TRUE(l.get("isolation").locked);
    EXPECT_EQ(l.locked_message("isolation"),
              "isolation is locked on by the administrator in " + files.admin.string());
    EXPECT_EQ(l.locked_message("cpus"),
              "cpus is locked to 2 by the administrator in " + files.admin.string());
    const std::string before = slurp(files.user);
    try {
        l.set_user("isolation", false);
        FAIL() << "set_user of a locked key succeeded";
    } catch (const HostError& e) {
        EXPECT_EQ(e.kind(), ErrorKind::locked);
        EXPECT_NE(std::string(e.what()).find("locked on by the administrator"), std::string::npos)
            << e.what();
    }
    EXPECT_EQ(slurp(files.user), before) << "a refused set must not touch the file";
}

TEST_F(Settings_, LockWithoutValueLocksTheDefault) {
    admin(R"({"locked": ["accelerator"]})");
    user(R"({"accelerator": "kvm"})");
    EXPECT_EQ(load().effective().accelerator, Accelerator::automatic);
}

TEST_F(Settings_, WrongTypeNamesFileKeyAndType) {
    user(R"({"cpus": "four"})");
    HostError e = load_error();
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_EQ(e.subject(), files.user.string());
    EXPECT_NE(e.failure().find("'cpus'"), std::string::npos) << e.what();
    EXPECT_NE(e.failure().find("an integer"), std::string::npos) << e.what();
}

TEST_F(Settings_, OutOfRangeAndBadChoiceAreRejected) {
    user(R"({"cpus": 0})");
    EXPECT_NE(load_error().failure().find("from 1 to 64"), std::string::npos);
    user(R"({"accelerator": "hvf"})");
    EXPECT_NE(load_error().failure().find("\"tcg\""), std::string::npos);
    user(R"({"isolation": "yes"})");
    EXPECT_NE(load_error().failure().find("a boolean"), std::string::npos);
    user(R"({"vm_name": "../etc"})");
    EXPECT_NE(load_error().failure().find("'vm_name'"), std::string::npos);
}

TEST_F(Settings_, BadJsonNamesTheFile) {
    admin(R"({"cpus": 2,,})");
    HostError e = load_error();
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_EQ(e.subject(), files.admin.string());
    EXPECT_NE(e.failure().find("not valid JSON"), std::string::npos) << e.what();
}

// Found by fuzz_settings: nlohmann reports a number too large for a double as
// out_of_range, not parse_error, and it escaped as an uncaught exception.
TEST_F(Settings_, ANumberTooLargeIsBadJsonNamingTheFileNotACrash) {
    user(R"({"cpus": 1e999})");
    HostError e = load_error();
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_EQ(e.subject(), files.user.string());
    EXPECT_NE(e.failure().find("not valid JSON"), std::string::npos) << e.what();
}

TEST_F(Settings_, NonObjectAndBadLockListAreRejected) {
    user("[1, 2]");
    EXPECT_NE(load_error().failure().find("JSON object"), std::string::npos);
    user("{}");
    admin(R"({"locked": "isolation"})");
    EXPECT_NE(load_error().failure().find("'locked' must be an array"), std::string::npos);
    admin(R"({"locked": ["no_such_key"]})");
    EXPECT_NE(load_error().failure().find("unknown setting"), std::string::npos);
}

TEST_F(Settings_, UnreadableFileIsAClearError) {
    // A folder where the file should be cannot be read, even by root.
    std::filesystem::create_directories(files.user);
    HostError e = load_error();
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_EQ(e.subject(), files.user.string());
    EXPECT_NE(e.failure().find("cannot read"), std::string::npos) << e.what();
}

TEST_F(Settings_, UnknownKeysAreKeptButIgnored) {
    user(R"({"future_key": {"x": 1}, "cpus": 3})");
    LayeredSettings l = load();
    EXPECT_EQ(l.effective().cpus, 3);
    l.set_user("memory_mib", 1024);
    json back = json::parse(slurp(files.user));
    EXPECT_EQ(back["future_key"]["x"], 1);
    EXPECT_EQ(back["cpus"], 3);
    EXPECT_EQ(back["memory_mib"], 1024);
}

TEST_F(Settings_, SetWritesAtomicallyAndCreatesTheFolder) {
    LayeredSettings l = load();
    l.set_user("cpus", 5);
    l.set_user("isolation", false);
    EXPECT_EQ(load().effective().cpus, 5);
    EXPECT_FALSE(load().effective().isolation);
    // No temporary file is left beside it.
    int files_in_dir = 0;
    for (auto& e : std::filesystem::directory_iterator(files.user.parent_path())) {
        (void)e;
        ++files_in_dir;
    }
    EXPECT_EQ(files_in_dir, 1);
    l.unset_user("cpus");
    EXPECT_EQ(load().effective().cpus, 2);
    EXPECT_FALSE(json::parse(slurp(files.user)).contains("cpus"));
}

TEST_F(Settings_, FailedWriteLeavesTheOldFileAndState) {
    user(R"({"cpus": 3})");
    LayeredSettings l = load();
    // Make the folder unusable for a temporary file: replace it by a file after loading.
    const auto parent = files.user.parent_path();
    std::filesystem::rename(parent, dir / "moved");
    dir.write("user", "not a folder");
    EXPECT_THROW(l.set_user("cpus", 4), HostError);
    EXPECT_EQ(l.effective().cpus, 3) << "the in-memory state changes only after a successful write";
    std::filesystem::remove(dir / "user");
    std::filesystem::rename(dir / "moved", parent);
    EXPECT_EQ(json::parse(slurp(files.user))["cpus"], 3);
}

TEST_F(Settings_, SetRejectsBadValuesWithoutWriting) {
    LayeredSettings l = load();
    EXPECT_THROW(l.set_user("cpus", "many"), HostError);
    EXPECT_THROW(l.set_user("nope", 1), HostError);
    EXPECT_FALSE(std::filesystem::exists(files.user));
}

TEST(SettingText, ParsesByType) {
    EXPECT_EQ(parse_setting_text("cpus", "4"), json(4));
    EXPECT_EQ(parse_setting_text("isolation", "off"), json(false));
    EXPECT_EQ(parse_setting_text("isolation", "on"), json(true));
    EXPECT_EQ(parse_setting_text("accelerator", "tcg"), json("tcg"));
    EXPECT_EQ(parse_setting_text("connect_uri", "qemu:///system"), json("qemu:///system"));
    for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{{"cpus", "4x"},
                                                                        {"cpus", ""},
                                                                        {"cpus", "100"},
                                                                        {"isolation", "maybe"},
                                                                        {"accelerator", "xen"},
                                                                        {"bogus", "1"}}) {
        try {
            parse_setting_text(k, v);
            ADD_FAILURE() << k << "=" << v << " was accepted";
        } catch (const HostError& e) {
            EXPECT_EQ(e.kind(), ErrorKind::usage);
        }
    }
    EXPECT_EQ(setting_text(json(true)), "on");
    EXPECT_EQ(setting_text(json(3)), "3");
}

TEST_F(Settings_, TheAdminPolicyKeysReachTheEffectiveSettings) {
    const std::string digest = "docker/compose@sha256:" + std::string(64, 'b');
    admin(R"({"isolation": true, "locked": ["isolation"], "socketMountImages": [")" + digest +
          R"("], "commandList": {"type": "deny", "commands": ["image.push"]},
            "lockVmShell": true})");
    const Settings s = load().effective();
    EXPECT_EQ(s.admin_policy.socket_mount_images, std::vector<std::string>{digest});
    EXPECT_EQ(s.admin_policy.commands, std::vector<std::string>{"image.push"});
    EXPECT_TRUE(s.admin_policy.lock_vm_shell);
    EXPECT_TRUE(s.isolation_locked);
}

TEST_F(Settings_, AMalformedAdminPolicyIsAClearErrorNamingTheFile) {
    admin(R"({"socketMountImages": ["docker/compose:latest"]})");
    const HostError e = load_error();
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("digest"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("admin-settings.json"), std::string::npos) << e.what();
    admin(R"({"lockVmShell": "yes"})");
    EXPECT_NE(std::string(load_error().what()).find("lockVmShell"), std::string::npos);
}

TEST_F(Settings_, AUserCannotSetTheAdminPolicy) {
    user(R"({"lockVmShell": false, "socketMountImages": ["sha256:)" + std::string(64, 'c') +
         R"("]})");
    admin(R"({"lockVmShell": true})");
    const Settings s = load().effective();
    EXPECT_TRUE(s.admin_policy.lock_vm_shell);  // the user's value is ignored
    EXPECT_TRUE(s.admin_policy.socket_mount_images.empty());
}

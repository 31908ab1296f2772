// Error paths of the live isolation switch, with a fake engine. The real switch
// against dockerd in the VM is covered by the e2e suite.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cordon/atomic_file.hpp"
#include "cordon/engine/isolation_switch.hpp"
#include "fake_engine.hpp"

using namespace cordon::engine;
namespace fs = std::filesystem;

namespace {

using cordon::engine::testing::FakeApi;
using cordon::engine::testing::FakeControl;

class SwitchTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/cordon-switch-XXXXXX";
        root_ = ::mkdtemp(tmpl);
        paths_.docker_root = (root_ / "docker").string();
        paths_.daemon_json = (root_ / "daemon.json").string();
        paths_.base_daemon_json = (root_ / "base-daemon.json").string();
        paths_.state_dir = root_.string();
        control_.daemon_json = paths_.daemon_json;
        fs::create_directories(root_ / "docker" / "volumes" / "data" / "_data");
        std::ofstream(root_ / "docker" / "volumes" / "data" / "_data" / "file") << "kept";
    }
    void TearDown() override { fs::remove_all(root_); }
    IsolationSwitch make() { return IsolationSwitch(paths_, RemapUser{}, store_, api_, control_); }

    fs::path root_;
    EnginePaths paths_;
    IsolationStore store_{"/nonexistent"};
    FakeApi api_;
    FakeControl control_;
};

}  // namespace

TEST_F(SwitchTest, RunningContainersNeedConfirmation) {
    store_ = IsolationStore((root_ / "iso.json").string());
    store_.save({false, 1, false});
    api_.running = {{"abc123", "web", "nginx"}};
    auto sw = make();
    try {
        sw.apply({true, false, {}}, {}, [](const std::string&) {});
        FAIL() << "switched without confirmation";
    } catch (const ConfirmationRequired& e) {
        EXPECT_NE(std::string(e.what()).find("web"), std::string::npos);
    }
    EXPECT_TRUE(control_.calls.empty());
    EXPECT_FALSE(store_.load().enabled);
}

TEST_F(SwitchTest, LockedByAdminRefusesAndNamesTheSource) {
    store_ = IsolationStore((root_ / "iso.json").string());
    auto sw = make();
    try {
        sw.apply({false, true, {}}, {true, true, "/etc/cordon/admin-settings.json"}, [](const std::string&) {});
        FAIL();
    } catch (const cordon::Error& e) {
        EXPECT_EQ(e.subject(), "/etc/cordon/admin-settings.json");
    }
    EXPECT_TRUE(control_.calls.empty());
}

TEST_F(SwitchTest, SameModeIsANoOp) {
    store_ = IsolationStore((root_ / "iso.json").string());
    auto r = make().apply({true, false, {}}, {}, [](const std::string&) {});
    EXPECT_FALSE(r.changed);
    EXPECT_TRUE(control_.calls.empty());
}

TEST_F(SwitchTest, OffToOnMovesVolumesAndImagesAndPersists) {
    if (::geteuid() != 0) GTEST_SKIP() << "re-owning volumes needs root";
    store_ = IsolationStore((root_ / "iso.json").string());
    store_.save({false, 1, false});
    api_.running = {{"abc123", "web", "nginx"}};
    api_.tags = {"busybox:latest"};
    std::vector<std::string> steps;
    auto r = make().apply({true, true, {}}, {}, [&](const std::string& s) { steps.push_back(s); });
    EXPECT_TRUE(r.changed);
    EXPECT_TRUE(r.enabled);
    EXPECT_EQ(r.volumes_moved, 1u);
    EXPECT_EQ(r.images_moved, 1u);
    EXPECT_EQ(api_.stopped, std::vector<std::string>{"abc123"});
    EXPECT_TRUE(store_.load().enabled);
    const auto moved = root_ / "docker" / "100000.100000" / "volumes" / "data" / "_data" / "file";
    ASSERT_TRUE(fs::exists(moved));
    struct stat st{};
    ASSERT_EQ(::stat(moved.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 100000u);
    ASSERT_EQ(control_.calls.size(), 3u);
    EXPECT_NE(control_.calls[1].find("userns-remap"), std::string::npos);
    EXPECT_FALSE(fs::exists(root_ / "isolation-switch-images.tar"));
    EXPECT_FALSE(steps.empty());
}

TEST_F(SwitchTest, NewEngineFailingToStartRollsEverythingBack) {
    if (::geteuid() != 0) GTEST_SKIP() << "re-owning volumes needs root";
    store_ = IsolationStore((root_ / "iso.json").string());
    store_.save({false, 1, false});
    control_.fail_ready = 1;
    EXPECT_THROW(make().apply({true, true, {}}, {}, [](const std::string&) {}), cordon::Error);
    EXPECT_FALSE(store_.load().enabled);
    EXPECT_TRUE(fs::exists(root_ / "docker" / "volumes" / "data" / "_data" / "file"));
    EXPECT_FALSE(fs::exists(root_ / "docker" / "100000.100000" / "volumes" / "data"));
    struct stat st{};
    ASSERT_EQ(::stat((root_ / "docker" / "volumes" / "data" / "_data" / "file").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
    // The old engine was restarted with the old config.
    ASSERT_GE(control_.calls.size(), 2u);
    EXPECT_EQ(control_.calls[control_.calls.size() - 1], "ready");
    EXPECT_EQ(control_.calls[control_.calls.size() - 2].find("userns-remap"), std::string::npos);
}

TEST_F(SwitchTest, OffToExclusiveRangesRestartsWithTheWrapperAndMovesNothing) {
    store_ = IsolationStore((root_ / "iso.json").string());
    store_.save({false, 1, false});
    api_.tags = {"busybox:latest"};
    SwitchRequest req{true, true, true};
    auto r = make().apply(req, {}, [](const std::string&) {});
    EXPECT_TRUE(r.changed);
    EXPECT_TRUE(r.exclusive_ranges);
    EXPECT_EQ(r.volumes_moved, 0u);  // the plain data root serves both modes
    EXPECT_EQ(r.images_moved, 0u);
    EXPECT_TRUE(fs::exists(root_ / "docker" / "volumes" / "data" / "_data" / "file"));
    ASSERT_EQ(control_.calls.size(), 3u);
    EXPECT_NE(control_.calls[1].find("cordon-runc"), std::string::npos);
    EXPECT_EQ(control_.calls[1].find("userns-remap"), std::string::npos);
    const auto saved = store_.load();
    EXPECT_TRUE(saved.enabled);
    EXPECT_TRUE(saved.exclusive_ranges);
    // Isolation off and on again without naming the mode keeps the user's choice.
    SwitchRequest again{true, true, std::nullopt};
    EXPECT_FALSE(make().apply(again, {}, [](const std::string&) {}).changed);
}

#include "settings_store.hpp"

#include <gtest/gtest.h>

#include "gui_test_main.hpp"

using nlohmann::json;
using namespace cordon::gui;
namespace fs = std::filesystem;

namespace {
cordon::host::SettingsFiles files(const fs::path& dir) {
    return {dir / "user.json", dir / "admin.json"};
}
}  // namespace

TEST(SettingsStore, ValidatesEveryChangeBeforeWritingAny) {
    auto dir = test::tempDir("settings-validate");
    SettingsStore store(files(dir));
    ASSERT_TRUE(store.loaded());
    auto problems =
        store.apply({{"cpus", 4}, {"memory_mib", 100}, {"connect_uri", "not a uri"}}, nullptr);
    ASSERT_EQ(problems.size(), 2);
    EXPECT_EQ(problems[0].key, "connect_uri");
    EXPECT_TRUE(problems[0].message.contains("libvirt URI")) << problems[0].message.toStdString();
    EXPECT_EQ(problems[1].key, "memory_mib");
    // Nothing written, cpus unchanged.
    EXPECT_FALSE(fs::exists(dir / "user.json"));
    EXPECT_EQ(store.effective().cpus, 2);
}

TEST(SettingsStore, AppliesValidChanges) {
    auto dir = test::tempDir("settings-apply");
    SettingsStore store(files(dir));
    ErrorInfo err;
    auto problems = store.apply(
        {{"cpus", 4}, {"accelerator", "tcg"}, {"connect_uri", "qemu+ssh://h/system"}}, &err);
    EXPECT_TRUE(problems.isEmpty());
    EXPECT_TRUE(err.empty()) << err.text().toStdString();
    EXPECT_EQ(store.effective().cpus, 4);
    auto doc = json::parse(test::readFile(dir / "user.json"));
    EXPECT_EQ(doc["accelerator"], "tcg");
    EXPECT_EQ(store.sourceText("cpus"), "yours");
}

TEST(SettingsStore, LockedKeysAreReadOnlyWithTheReason) {
    auto dir = test::tempDir("settings-locked");
    test::writeFile(dir / "admin.json",
                    R"({"isolation": true, "cpus": 4, "locked": ["isolation", "cpus"]})");
    SettingsStore store(files(dir));
    ASSERT_TRUE(store.loaded()) << store.loadError().text().toStdString();
    EXPECT_TRUE(store.isLocked("isolation"));
    EXPECT_FALSE(store.isLocked("memory_mib"));
    EXPECT_TRUE(store.lockReason("isolation").contains("administrator"));
    EXPECT_TRUE(store.lockReason("isolation")
                    .contains(QString::fromStdString((dir / "admin.json").string())));
    auto problems = store.apply({{"cpus", 8}}, nullptr);
    ASSERT_EQ(problems.size(), 1);
    EXPECT_TRUE(problems[0].message.contains("locked"));
    EXPECT_EQ(store.effective().cpus, 4);
}

TEST(SettingsStore, BrokenAdminFileKeepsDefaultsAndSaysWhy) {
    auto dir = test::tempDir("settings-broken");
    test::writeFile(dir / "admin.json", "{ not json");
    SettingsStore store(files(dir));
    EXPECT_FALSE(store.loaded());
    EXPECT_FALSE(store.loadError().empty());
    EXPECT_TRUE(store.isLocked("cpus"));
    EXPECT_EQ(store.effective().cpus, 2);
    EXPECT_FALSE(store.apply({{"cpus", 3}}, nullptr).isEmpty());
}

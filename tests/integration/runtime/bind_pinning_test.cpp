// Bind sources pinned on the build host's real kernel: openat2 without symlinks, a bind
// mount from the open file, and the swap-a-symlink race played out on a real folder.
// Needs root (mount).
#include "cordon/runtime/bind_pinning.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cordon/error.hpp"
#include "cordon/runtime/container_stage.hpp"

namespace fs = std::filesystem;
using namespace cordon::runtime;
using json = nlohmann::json;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

class PinTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0)
            GTEST_SKIP() << "mounting needs root";
        base_ = fs::absolute(fs::path("bind-pinning-" + std::to_string(::getpid())));
        fs::create_directories(share_ / "checked");
        std::ofstream(share_ / "checked" / "file") << "shared";
        std::ofstream(share_ / "config.yml") << "config";
        fs::create_directories(base_ / "vm-etc");
        std::ofstream(base_ / "vm-etc" / "file") << "VM secret";
        stage_dir_ = stage_.make_dir_for("c1");
    }
    void TearDown() override {
        if (base_.empty())
            return;
        stage_.teardown("c1");
        fs::remove_all(base_);
    }
    json spec_for(const fs::path& source) const {
        return {{"mounts",
                 {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
                  {{"destination", "/src"},
                   {"type", "bind"},
                   {"source", source.string()},
                   {"options", {"rbind", "rprivate"}}}}}};
    }
    std::vector<std::string> roots() const { return {share_.string()}; }
    // The attacker's move: the checked folder becomes a symlink to a VM folder.
    void swap_checked_for_symlink() const {
        fs::rename(share_ / "checked", share_ / "checked.old");
        fs::create_directory_symlink(base_ / "vm-etc", share_ / "checked");
    }

    fs::path base_;
    fs::path share_ = fs::absolute(fs::path("bind-pinning-" + std::to_string(::getpid()))) / "share";
    ContainerStage stage_{
        fs::absolute(fs::path("bind-pinning-" + std::to_string(::getpid())) / "stage").string()};
    std::string stage_dir_;
};

TEST_F(PinTest, APinnedSourceKeepsWhatWasOpenedWhenTheFolderIsSwappedLater) {
    const auto pinned = pin_shared_binds(spec_for(share_ / "checked"), roots(), stage_dir_);
    ASSERT_EQ(pinned.size(), 1u);
    ASSERT_EQ(pinned.at(1), stage_dir_ + "/p1");
    EXPECT_EQ(slurp(pinned.at(1) + "/file"), "shared");
    swap_checked_for_symlink();
    // runc mounts the staging point: still the folder that was opened, not the symlink's.
    EXPECT_EQ(slurp(pinned.at(1) + "/file"), "shared");
    // Writes through the pin reach the shared folder (it is a bind, not a copy).
    std::ofstream(pinned.at(1) + "/new") << "written";
    EXPECT_EQ(slurp(share_ / "checked.old" / "new"), "written");
}

TEST_F(PinTest, ASymlinkSwappedInBeforeTheStartIsRefusedAndNothingIsMounted) {
    swap_checked_for_symlink();
    try {
        pin_shared_binds(spec_for(share_ / "checked"), roots(), stage_dir_);
        FAIL() << "a source through a symlink was pinned";
    } catch (const cordon::Error& e) {
        EXPECT_NE(e.failure().find("symlink"), std::string::npos) << e.what();
        EXPECT_NE(e.hint().find("docker rm"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(stage_dir_ + "/p1/file"));
}

TEST_F(PinTest, AParentComponentSwappedForASymlinkIsRefusedToo) {
    fs::create_directories(share_ / "a" / "b");
    const json spec = spec_for(share_ / "a" / "b");
    fs::remove_all(share_ / "a");
    fs::create_directory_symlink(base_, share_ / "a");  // a/b is now base_/b... or vm-etc
    fs::create_directory_symlink(base_ / "vm-etc", base_ / "b");
    EXPECT_THROW(pin_shared_binds(spec, roots(), stage_dir_), cordon::Error);
}

TEST_F(PinTest, AFileSourceIsPinnedAsAFile) {
    const auto pinned = pin_shared_binds(spec_for(share_ / "config.yml"), roots(), stage_dir_);
    ASSERT_EQ(pinned.size(), 1u);
    EXPECT_TRUE(fs::is_regular_file(pinned.at(1)));
    EXPECT_EQ(slurp(pinned.at(1)), "config");
}

TEST_F(PinTest, SourcesOutsideTheSharedFoldersAndMissingOnesAreLeftToTheEngine) {
    EXPECT_TRUE(pin_shared_binds(spec_for(base_ / "vm-etc"), roots(), stage_dir_).empty());
    EXPECT_TRUE(pin_shared_binds(spec_for(share_ / "missing"), roots(), stage_dir_).empty());
}

TEST_F(PinTest, TeardownUnmountsThePinsAndLeavesTheSharedFolderAlone) {
    const auto pinned = pin_shared_binds(spec_for(share_ / "checked"), roots(), stage_dir_);
    ASSERT_EQ(pinned.size(), 1u);
    stage_.teardown("c1");
    EXPECT_FALSE(fs::exists(stage_dir_));
    EXPECT_EQ(slurp(share_ / "checked" / "file"), "shared");
}

}  // namespace

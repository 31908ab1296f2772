// ContainerStage on the build host's real kernel: a fake overlay2 layout on a real
// filesystem, staged with real ID-mapped mounts and a real overlay, then torn down.
// Needs root and a kernel with ID-mapped mounts (>= 5.19 for overlayfs layers).
#include "cordon/runtime/container_stage.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cordon/error.hpp"
#include "cordon/runtime/idmap_mount.hpp"

namespace fs = std::filesystem;
using namespace cordon::runtime;
using json = nlohmann::json;

namespace {

class StageTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0)
            GTEST_SKIP() << "mounting needs root";
        // Under the build tree: /tmp may be tmpfs, which cannot be ID-mapped before Linux 6.3.
        base_ = fs::absolute(fs::path("runtime-stage-" + std::to_string(::getpid()))).string();
        fs::create_directories(base_);
        ::chmod(base_.c_str(), 0755);
        const fs::path o2 = fs::path(base_) / "overlay2";
        fs::create_directories(o2 / "img" / "diff" / "etc");
        std::ofstream(o2 / "img" / "diff" / "etc" / "os") << "image";
        fs::create_directories(o2 / "l");
        fs::create_symlink("../img/diff", o2 / "l" / "IMG");
        for (const char* d : {"ctr/diff", "ctr/work", "ctr/merged"}) fs::create_directories(o2 / d);
        std::ofstream(o2 / "ctr" / "lower") << "l/IMG";
        fs::create_directories(fs::path(base_) / "volume");
        std::ofstream(fs::path(base_) / "hosts") << "127.0.0.1 localhost\n";
        spec_ = {{"root", {{"path", (o2 / "ctr" / "merged").string()}}},
                 {"mounts",
                  {{{"destination", "/data"},
                    {"type", "bind"},
                    {"source", base_ + "/volume"},
                    {"options", {"rbind"}}},
                   {{"destination", "/etc/hosts"},
                    {"type", "bind"},
                    {"source", base_ + "/hosts"},
                    {"options", {"rbind"}}},
                   {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}}}}};
        stage_dir_ = base_ + "/stage";
        try {
            userns_ = make_userns_fd(range_, range_);
        } catch (const cordon::Error& e) {
            GTEST_SKIP() << e.what();
        }
        std::string why;
        if (!can_idmap(base_, userns_.get(), &why))
            GTEST_SKIP() << "this filesystem cannot be ID-mapped: " << why;
    }
    void TearDown() override {
        if (!base_.empty()) {
            ContainerStage(stage_dir_).teardown("c1");
            fs::remove_all(base_);
        }
    }

    static bool create_as(const std::string& path, std::uint32_t id) {
        ::setfsgid(id);
        ::setfsuid(id);
        const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        ::setfsuid(0);
        ::setfsgid(0);
        if (fd >= 0)
            ::close(fd);
        return fd >= 0;
    }
    static std::uint32_t owner(const std::string& path) {
        struct stat st {};
        return ::lstat(path.c_str(), &st) == 0 ? st.st_uid : 0xffffffffu;
    }

    std::string base_, stage_dir_;
    json spec_;
    IdRange range_{165536, 65536};
    cordon::UniqueFd userns_;
};

}  // namespace

TEST_F(StageTest, RootAndVolumesAreSeenAndWrittenThroughTheRange) {
    ContainerStage stage(stage_dir_);
    const StagedContainer s = stage.prepare("c1", spec_, range_, userns_.get());
    EXPECT_EQ(s.root_path, stage_dir_ + "/c1/root");
    ASSERT_EQ(s.sources.size(), 2u);
    EXPECT_EQ(owner(s.root_path + "/etc/os"), 165536u);
    EXPECT_EQ(owner(s.sources.at(0)), 165536u);
    EXPECT_EQ(owner(s.sources.at(1)), 165536u);
    // The range's root (no capabilities) writes the rootfs and the volume; the disk keeps 0.
    ASSERT_TRUE(create_as(s.root_path + "/etc/new", 165536));
    EXPECT_EQ(owner(base_ + "/overlay2/ctr/diff/etc/new"), 0u);
    ASSERT_TRUE(create_as(s.sources.at(0) + "/v", 165536));
    EXPECT_EQ(owner(base_ + "/volume/v"), 0u);
    // Another range sees the same volume file as its own.
    IdRange other{231072, 65536};
    cordon::UniqueFd ns2 = make_userns_fd(other, other);
    ContainerStage stage2(stage_dir_);
    json spec2 = spec_;
    fs::create_directories(base_ + "/overlay2/ctr2/diff");
    fs::create_directories(base_ + "/overlay2/ctr2/work");
    fs::create_directories(base_ + "/overlay2/ctr2/merged");
    std::ofstream(base_ + "/overlay2/ctr2/lower") << "l/IMG";
    spec2["root"]["path"] = base_ + "/overlay2/ctr2/merged";
    const StagedContainer s2 = stage2.prepare("c2", spec2, other, ns2.get());
    EXPECT_EQ(owner(s2.sources.at(0) + "/v"), 231072u);
    EXPECT_FALSE(fs::exists(s2.root_path + "/etc/new")) << "each container has its own upper layer";
    stage2.teardown("c2");
    EXPECT_FALSE(fs::exists(stage_dir_ + "/c2"));

    stage.teardown("c1");
    EXPECT_FALSE(fs::exists(stage_dir_ + "/c1"));
    EXPECT_TRUE(fs::exists(base_ + "/overlay2/ctr/diff/etc/new"))
        << "teardown never deletes container data";
    EXPECT_TRUE(fs::exists(base_ + "/volume/v"));
}

TEST_F(StageTest, AFailedPrepareLeavesNothingMounted) {
    fs::remove(base_ + "/overlay2/ctr/lower");  // not overlay2's layout
    ContainerStage stage(stage_dir_);
    EXPECT_THROW(stage.prepare("c1", spec_, range_, userns_.get()), cordon::Error);
    EXPECT_FALSE(fs::exists(stage_dir_ + "/c1"));
    EXPECT_THROW(stage.prepare("../x", spec_, range_, userns_.get()), cordon::Error);
}

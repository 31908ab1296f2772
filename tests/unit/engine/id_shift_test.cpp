#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cordon/engine/id_shift.hpp"
#include "cordon/error.hpp"

using namespace cordon::engine;
namespace fs = std::filesystem;

TEST(ShiftId, MovesIdsInsideTheRangeOnly) {
    IdRange plain{0, 65536}, remap{100000, 65536};
    EXPECT_EQ(shift_id(0, plain, remap), 100000u);
    EXPECT_EQ(shift_id(1000, plain, remap), 101000u);
    EXPECT_EQ(shift_id(65536, plain, remap), 65536u);  // outside: unchanged
    EXPECT_EQ(shift_id(100000, remap, plain), 0u);
    EXPECT_EQ(shift_id(5, remap, plain), 5u);
    EXPECT_EQ(shift_id(10, plain, IdRange{200000, 5}), 10u);  // beyond a smaller target: unchanged
}

class ShiftOwnership : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "changing owners needs root (CI runs as root)";
        char tmpl[] = "/tmp/cordon-shift-XXXXXX";
        root_ = ::mkdtemp(tmpl);
    }
    void TearDown() override {
        if (!root_.empty()) fs::remove_all(root_);
    }
    static struct stat st(const fs::path& p) {
        struct stat s{};
        EXPECT_EQ(::lstat(p.c_str(), &s), 0) << p;
        return s;
    }
    fs::path root_;
};

TEST_F(ShiftOwnership, ReownsATreeBothWaysAndKeepsSetIdBits) {
    fs::create_directories(root_ / "d");
    std::ofstream(root_ / "d" / "f") << "x";
    std::ofstream(root_ / "suid") << "x";
    fs::create_symlink("/etc/passwd", root_ / "link");
    ASSERT_EQ(::lchown((root_ / "d" / "f").c_str(), 1000, 1000), 0);
    ASSERT_EQ(::chmod((root_ / "suid").c_str(), 04755), 0);

    const IdMapping plain = identity_mapping();
    const IdMapping remap{{100000, 65536}, {100000, 65536}};
    auto stats = shift_ownership(root_.string(), plain, remap);
    EXPECT_EQ(stats.entries, 5u);
    EXPECT_EQ(st(root_).st_uid, 100000u);
    EXPECT_EQ(st(root_ / "d" / "f").st_uid, 101000u);
    EXPECT_EQ(st(root_ / "d" / "f").st_gid, 101000u);
    EXPECT_EQ(st(root_ / "link").st_uid, 100000u);
    EXPECT_EQ(st("/etc/passwd").st_uid, 0u);  // the link's target was not followed
    EXPECT_EQ(st(root_ / "suid").st_mode & 07777, 04755u);

    shift_ownership(root_.string(), remap, plain);
    EXPECT_EQ(st(root_).st_uid, 0u);
    EXPECT_EQ(st(root_ / "d" / "f").st_uid, 1000u);
}

TEST_F(ShiftOwnership, MissingRootIsAClearError) {
    EXPECT_THROW(shift_ownership((root_ / "absent").string(), identity_mapping(), identity_mapping()),
                 cordon::Error);
}

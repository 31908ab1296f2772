// Reading the image's manifest.json.
#include "cordon/host/manifest.hpp"

#include <gtest/gtest.h>

#include "cordon/host/host_error.hpp"
#include "test_dir.hpp"

using namespace cordon::host;
using cordon::host::test::TempDir;

namespace {

class Manifest : public ::testing::Test {
  protected:
    TempDir dir;
    void SetUp() override {
        dir.write("vmlinuz", "k");
        dir.write("initrd.img", "i");
        dir.write("rootfs.img", "r");
    }
    HostError error() {
        try {
            load_manifest(dir.path());
        } catch (const HostError& e) {
            return e;
        }
        ADD_FAILURE() << "load_manifest did not fail";
        return HostError(ErrorKind::generic, "none");
    }
};

}  // namespace

TEST_F(Manifest, ReadsRelativePathsAndOptionalRootfs) {
    dir.write(
        "manifest.json",
        R"({"kernel":"vmlinuz","initrd":"initrd.img","cmdline":"console=ttyS0","version":"7"})");
    ImageManifest m = load_manifest(dir.path());
    EXPECT_EQ(m.kernel, dir / "vmlinuz");
    EXPECT_EQ(m.initrd, dir / "initrd.img");
    EXPECT_EQ(m.cmdline, "console=ttyS0");
    EXPECT_FALSE(m.rootfs);
    EXPECT_EQ(m.version, "7");
    dir.write("manifest.json",
              R"({"kernel":"vmlinuz","initrd":")" + (dir / "initrd.img").string() +
                  R"(","cmdline":"x","rootfs":"rootfs.img","rootfs_format":"qcow2"})");
    m = load_manifest(dir.path());
    ASSERT_TRUE(m.rootfs);
    EXPECT_EQ(*m.rootfs, dir / "rootfs.img");
    EXPECT_EQ(m.rootfs_format, "qcow2");
}

TEST_F(Manifest, MissingFolderOrManifestSaysHowToBuild) {
    HostError e(ErrorKind::generic, "");
    try {
        load_manifest(dir / "nope");
    } catch (const HostError& x) {
        e = x;
    }
    EXPECT_EQ(e.kind(), ErrorKind::image);
    EXPECT_NE(e.failure().find("does not exist"), std::string::npos);
    EXPECT_NE(e.hint().find("cordon_image"), std::string::npos);
    e = error();
    EXPECT_EQ(e.kind(), ErrorKind::image);
    EXPECT_NE(e.failure().find("no manifest.json"), std::string::npos);
}

TEST_F(Manifest, MissingOrWrongKeysAreNamed) {
    dir.write("manifest.json", R"({"kernel":"vmlinuz","cmdline":"x"})");
    EXPECT_NE(error().failure().find("'initrd'"), std::string::npos);
    dir.write("manifest.json", R"({"kernel":"vmlinuz","initrd":"initrd.img"})");
    EXPECT_NE(error().failure().find("'cmdline'"), std::string::npos);
    dir.write("manifest.json", R"({"kernel":5,"initrd":"initrd.img","cmdline":"x"})");
    EXPECT_NE(error().failure().find("'kernel' must be a string"), std::string::npos);
    dir.write("manifest.json",
              R"({"kernel":"vmlinuz","initrd":"initrd.img","cmdline":"x","rootfs_format":"vmdk"})");
    EXPECT_NE(error().failure().find("rootfs_format"), std::string::npos);
    dir.write("manifest.json", "{not json");
    EXPECT_NE(error().failure().find("not valid JSON"), std::string::npos);
}

TEST_F(Manifest, NamedFilesMustExist) {
    dir.write("manifest.json", R"({"kernel":"gone","initrd":"initrd.img","cmdline":"x"})");
    HostError e = error();
    EXPECT_EQ(e.subject(), (dir / "gone").string());
    EXPECT_NE(e.failure().find("kernel"), std::string::npos);
    dir.write("manifest.json",
              R"({"kernel":"vmlinuz","initrd":"initrd.img","cmdline":"x","rootfs":"gone.img"})");
    EXPECT_NE(error().failure().find("rootfs"), std::string::npos);
}

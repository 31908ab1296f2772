// The mountinfo reader the shares mounter and cordon-runc share.
#include "cordon/mountinfo.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

TEST(Mountinfo, ReadsPointTypeAndSourceWithEscapesAndOptionalFields) {
    char tmpl[] = "/tmp/cordon-mountinfo-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::close(fd);
    std::ofstream(tmpl)
        << "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
        << "97 22 0:50 / /home/me/my\\040src rw shared:44 master:1 - virtiofs cordon-share-0 rw\n"
        << "98 22 0:51 / /broken rw\n";  // no separator: kept, with no type or source
    const auto m = cordon::read_mountinfo(tmpl);
    ::unlink(tmpl);
    ASSERT_EQ(m.size(), 3u);
    EXPECT_EQ(m[0].mount_point, "/proc");
    EXPECT_EQ(m[0].fs_type, "proc");
    EXPECT_EQ(m[1].mount_point, "/home/me/my src");
    EXPECT_EQ(m[1].fs_type, "virtiofs");
    EXPECT_EQ(m[1].source, "cordon-share-0");
    EXPECT_EQ(m[2].mount_point, "/broken");
    EXPECT_TRUE(m[2].fs_type.empty());
    EXPECT_TRUE(cordon::read_mountinfo("/nonexistent/mountinfo").empty());
    EXPECT_EQ(cordon::unescape_mountinfo_path("a\\134b\\9zz"), "a\\b\\9zz");
}

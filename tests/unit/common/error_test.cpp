#include <gtest/gtest.h>

#include <cerrno>
#include <fcntl.h>

#include "cordon/error.hpp"
#include "cordon/unique_fd.hpp"

namespace {

TEST(Error, ComposesWhatSubjectAndHint) {
    cordon::Error e("cannot open the data disk", "/var/lib/cordon/data.qcow2",
                    "run 'vmctl start' to create it");
    EXPECT_STREQ(e.what(),
                 "cannot open the data disk (/var/lib/cordon/data.qcow2): run 'vmctl start' to "
                 "create it");
    EXPECT_EQ(e.failure(), "cannot open the data disk");
    EXPECT_EQ(e.subject(), "/var/lib/cordon/data.qcow2");
    EXPECT_EQ(e.hint(), "run 'vmctl start' to create it");
}

TEST(Error, OmitsEmptyParts) {
    cordon::Error e("boom");
    EXPECT_STREQ(e.what(), "boom");
}

TEST(Error, ThrowErrnoCarriesStrerror) {
    errno = ENOENT;
    try {
        cordon::throw_errno("cannot open", "/nonexistent");
        FAIL() << "throw_errno returned";
    } catch (const cordon::Error& e) {
        EXPECT_EQ(e.failure(), "cannot open: No such file or directory");
        EXPECT_EQ(e.subject(), "/nonexistent");
    }
}

TEST(UniqueFd, ClosesOnDestructionAndMoves) {
    int raw = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(raw, 0);
    {
        cordon::UniqueFd a(raw);
        cordon::UniqueFd b(std::move(a));
        EXPECT_FALSE(a);
        EXPECT_EQ(b.get(), raw);
    }
    EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
    EXPECT_EQ(errno, EBADF);
}

}  // namespace

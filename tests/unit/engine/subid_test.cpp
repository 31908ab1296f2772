#include <gtest/gtest.h>

#include "cordon/engine/subid.hpp"
#include "cordon/error.hpp"

using cordon::engine::find_subid_range;
using cordon::engine::IdRange;

TEST(SubId, FindsTheNamedUsersRange) {
    const char* text = "# comment\nalice:200000:65536\ncordon:100000:65536\n";
    auto r = find_subid_range(text, "cordon", "/etc/subuid");
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, (IdRange{100000, 65536}));
}

TEST(SubId, AbsentUserGivesNothing) {
    EXPECT_FALSE(find_subid_range("alice:200000:65536\n", "cordon", "/etc/subuid"));
    EXPECT_FALSE(find_subid_range("", "cordon", "/etc/subuid"));
}

TEST(SubId, DoesNotMatchAPrefixOfAnotherName) {
    EXPECT_FALSE(find_subid_range("cordonx:1:2\n", "cordon", "/etc/subuid"));
}

TEST(SubId, MalformedLineNamesTheFileAndLine) {
    for (const char* bad : {"cordon:abc:65536", "cordon:100000", "cordon:100000:0", "cordon:4294967295:2",
                            "cordon:100000:65536x"}) {
        try {
            find_subid_range(std::string("x:1:1\n") + bad + "\n", "cordon", "/etc/subuid");
            FAIL() << "accepted " << bad;
        } catch (const cordon::Error& e) {
            EXPECT_EQ(e.subject(), "/etc/subuid");
            EXPECT_NE(e.failure().find("line 2"), std::string::npos) << e.what();
        }
    }
}

TEST(IdRange, Contains) {
    IdRange r{100000, 65536};
    EXPECT_TRUE(r.contains(100000));
    EXPECT_TRUE(r.contains(165535));
    EXPECT_FALSE(r.contains(165536));
    EXPECT_FALSE(r.contains(99999));
}

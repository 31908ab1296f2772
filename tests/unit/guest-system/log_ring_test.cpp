#include "cordon/guest/log_ring.hpp"

#include <gtest/gtest.h>

using cordon::guest::LineSplitter;
using cordon::guest::LogRing;

TEST(LogRing, KeepsTheLastLinesInOrder) {
    LogRing ring(3);
    for (int i = 1; i <= 5; ++i) ring.push("line " + std::to_string(i));
    EXPECT_EQ(ring.size(), 3u);
    EXPECT_EQ(ring.total(), 5u);
    EXPECT_EQ(ring.tail(), (std::vector<std::string>{"line 3", "line 4", "line 5"}));
    EXPECT_EQ(ring.tail(2), (std::vector<std::string>{"line 4", "line 5"}));
    EXPECT_EQ(ring.tail(10).size(), 3u);
}

TEST(LogRing, ZeroCapacityStillKeepsOneLine) {
    LogRing ring(0);
    ring.push("a");
    ring.push("b");
    EXPECT_EQ(ring.tail(), std::vector<std::string>{"b"});
}

TEST(LineSplitter, SplitsAcrossChunksAndStripsCarriageReturns) {
    LineSplitter s(100);
    std::vector<std::string> out;
    s.feed("hel", out);
    EXPECT_TRUE(out.empty());
    s.feed("lo\r\nwor", out);
    s.feed("ld\n\nrest", out);
    EXPECT_EQ(out, (std::vector<std::string>{"hello", "world", ""}));
    std::string rest;
    ASSERT_TRUE(s.flush(rest));
    EXPECT_EQ(rest, "rest");
    EXPECT_FALSE(s.flush(rest));
}

TEST(LineSplitter, CutsOverlongLines) {
    LineSplitter s(4);
    std::vector<std::string> out;
    s.feed("abcdefghij\n", out);
    EXPECT_EQ(out, (std::vector<std::string>{"abcd", "efgh", "ij"}));
}

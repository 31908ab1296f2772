#include "cordon/percent_encode.hpp"

#include <gtest/gtest.h>

TEST(PercentEncode, KeepsUnreservedCharacters) {
    EXPECT_EQ(cordon::percent_encode("abcXYZ019-_.~"), "abcXYZ019-_.~");
    EXPECT_EQ(cordon::percent_encode(""), "");
}

TEST(PercentEncode, EncodesEverythingElseAsUpperHex) {
    // A docker events filter and a tag: the JSON and the separators must not reach the
    // query string raw.
    EXPECT_EQ(cordon::percent_encode(R"({"type":["container"]})"),
              "%7B%22type%22%3A%5B%22container%22%5D%7D");
    EXPECT_EQ(cordon::percent_encode("busybox:1 /&=?#"), "busybox%3A1%20%2F%26%3D%3F%23");
    EXPECT_EQ(cordon::percent_encode(std::string("\x00\xff", 2)), "%00%FF");
}

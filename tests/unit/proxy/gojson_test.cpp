// The Go-JSON reader against encoding/json's documented behaviour (Go 1.19, which
// builds dockerd 20.10): key folding, escapes, invalid UTF-8, grammar, limits.
#include "cordon/proxy/gojson.hpp"

#include <gtest/gtest.h>

namespace {

using namespace cordon::gojson;

TEST(GoJsonFold, KeysMatchFieldsLikeEncodingJson) {
    EXPECT_TRUE(key_matches_field("Binds", "Binds"));
    EXPECT_TRUE(key_matches_field("binds", "Binds"));
    EXPECT_TRUE(key_matches_field("BINDS", "Binds"));
    EXPECT_TRUE(key_matches_field("Bind\xC5\xBF", "Binds"));                  // U+017F long s
    EXPECT_TRUE(key_matches_field("Networ\xE2\x84\xAAMode", "NetworkMode"));  // U+212A Kelvin
    EXPECT_TRUE(
        key_matches_field("\xE2\x84\xAA"
                          "ernelMemory",
                          "KernelMemory"));
    EXPECT_FALSE(key_matches_field("Bind\xC5\xBF", "Bindx"));
    EXPECT_FALSE(key_matches_field("\xC4\xB0mage", "Image"));  // U+0130 does not simple-fold to i
    EXPECT_FALSE(key_matches_field("\xC4\xB1mage", "Image"));  // U+0131 neither
    EXPECT_FALSE(key_matches_field("Bind", "Binds"));
    EXPECT_FALSE(key_matches_field("Binds ", "Binds"));
    EXPECT_FALSE(key_matches_field("IPv4Addres", "IPv4Address"));
    EXPECT_TRUE(key_matches_field("ipv4address", "IPv4Address"));
    EXPECT_FALSE(
        key_matches_field("IPv\x14"
                          "Address",
                          "IPv4Address"));
}

TEST(GoJsonFold, EscapedKeysAreDecodedBeforeMatching) {
    auto v = parse(R"({"\u0050rivileged":true,"Networ\u212aMode":"host"})");
    ASSERT_EQ(lookup(v, "Privileged").size(), 1u);
    EXPECT_TRUE(lookup(v, "Privileged")[0]->boolean);
    EXPECT_EQ(lookup(v, "NetworkMode")[0]->text, "host");
}

TEST(GoJsonFold, FoldedDuplicatesAreAllReported) {
    auto v = parse(R"({"Binds":[],"binds":["/:/h"],"BINDſ":1})");
    EXPECT_EQ(lookup(v, "Binds").size(), 3u);  // "BINDſ" folds to "binds" too
    auto w = parse(R"({"Binds":[],"Bindſ":["/:/h"]})");
    EXPECT_EQ(lookup(w, "Binds").size(), 2u);
}

TEST(GoJsonStrings, SurrogatesLikeGo) {
    EXPECT_EQ(parse(R"("\ud83d\ude00")").text, "\xF0\x9F\x98\x80");
    EXPECT_EQ(parse(R"("\ud800")").text, "\xEF\xBF\xBD");
    EXPECT_EQ(parse(R"("\ud800\u0041")").text,
              "\xEF\xBF\xBD"
              "A");
    EXPECT_EQ(parse(R"("\udc00\ud800")").text, "\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(parse(R"("\u00e9\/\b\f\n\r\t\"\\")").text, "\xC3\xA9/\b\f\n\r\t\"\\");
}

TEST(GoJsonStrings, InvalidUtf8BecomesReplacementPerByte) {
    EXPECT_EQ(parse("\"a\xFF"
                    "b\"")
                  .text,
              "a\xEF\xBF\xBD"
              "b");
    EXPECT_EQ(parse("\"\xED\xA0\x80\"").text,
              "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");                  // encoded surrogate
    EXPECT_EQ(parse("\"\xC0\xAF\"").text, "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
    EXPECT_EQ(parse("\"\xE2\x82\"").text, "\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated
    EXPECT_EQ(parse("\"\xF4\x90\x80\x80\"").text.size(), 12u);          // > U+10FFFF
    EXPECT_EQ(parse("\"\xE2\x82\xAC\"").text, "\xE2\x82\xAC");          // valid stays
    // an invalid byte in a key cannot fold onto a field name
    auto v = parse("{\"Privileged\xFF\":true}");
    EXPECT_TRUE(lookup(v, "Privileged").empty());
}

TEST(GoJsonGrammar, StrictLikeGosScanner) {
    for (const char* bad :
         {"01",  "-",       "1.",        ".5",       "1e",       "+1",         "0x10",
          "tru", "True",    "nul",       "NaN",      "[1,]",     "{\"a\":1,}", "{a:1}",
          "'a'", "\"\\x\"", "\"\\u12\"", "\"a\tb\"", "\"a\nb\"", "\f{}",       "{} {}",
          "{}x", "[",       "{\"a\"}",   "",         "   "}) {
        EXPECT_THROW(parse(bad), ParseError) << bad;
    }
    for (const char* good : {"0", "-0", "1.5e+3", "-12.25E-2", "true", "null", " {} \n", "[[],{}]",
                             "\"\\u0000\"", "{\"\":1}"}) {
        EXPECT_NO_THROW(parse(good)) << good;
    }
}

TEST(GoJsonGrammar, DepthLimit) {
    std::string ok = std::string(64, '[') + std::string(64, ']');
    std::string deep = std::string(65, '[') + std::string(65, ']');
    EXPECT_NO_THROW(parse(ok));
    EXPECT_THROW(parse(deep), ParseError);
    std::string objs;
    for (int i = 0; i < 100000; ++i) objs += "{\"a\":";
    EXPECT_THROW(parse(objs), ParseError);  // no stack overflow either
}

TEST(GoJsonGrammar, ExactDuplicateKeysRefused) {
    EXPECT_THROW(parse(R"({"a":1,"a":2})"), ParseError);
    Limits l;
    l.refuse_exact_duplicates = false;
    auto v = parse(R"({"a":1,"a":2})", l);
    EXPECT_EQ(lookup(v, "a").size(), 2u);
}

TEST(GoJsonValues, NullZeroAndSpans) {
    auto v = parse(R"( {"a":null,"b":[0,false,""],"c":0e5,"d":1e-3,"e":"x"} )");
    EXPECT_TRUE(lookup(v, "a")[0]->is_null());
    EXPECT_TRUE(is_zero(*lookup(v, "b")[0]));
    EXPECT_TRUE(is_zero(*lookup(v, "c")[0]));
    EXPECT_FALSE(is_zero(*lookup(v, "d")[0]));
    EXPECT_FALSE(is_zero(v));
    const Value* e = lookup(v, "e")[0];
    EXPECT_EQ(e->end - e->begin, 3u);
    EXPECT_EQ(quote("a\"\\\x01"), "\"a\\\"\\\\\\u0001\"");
    EXPECT_EQ(parse(quote("x\ny\"z")).text, "x\ny\"z");
}

}  // namespace

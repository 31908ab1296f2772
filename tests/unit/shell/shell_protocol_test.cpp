// The "shell" service's message codec (cordon/shell/protocol.hpp).
#include <gtest/gtest.h>

#include "cordon/error.hpp"
#include "cordon/shell/protocol.hpp"

using namespace cordon::shell;

TEST(ShellProtocol, RoundTripsEveryTypeByteByByte) {
    std::string wire;
    wire += encode(MsgType::start, R"({"tty":true})");
    wire += encode(MsgType::stdin_data, std::string("a\0b", 3));
    wire += encode(MsgType::stdin_eof);
    wire += encode_resize(50, 200);
    wire += encode(MsgType::exit, R"({"exit_code":3})");
    Decoder d;
    std::vector<Message> got;
    for (char c : wire) {
        d.feed(std::string_view(&c, 1));
        while (auto m = d.next()) got.push_back(*m);
    }
    ASSERT_EQ(got.size(), 5u);
    EXPECT_EQ(got[0].type, MsgType::start);
    EXPECT_EQ(got[1].payload, std::string("a\0b", 3));
    EXPECT_EQ(got[2].type, MsgType::stdin_eof);
    EXPECT_TRUE(got[2].payload.empty());
    std::uint16_t rows = 0, cols = 0;
    ASSERT_TRUE(decode_resize(got[3].payload, rows, cols));
    EXPECT_EQ(rows, 50);
    EXPECT_EQ(cols, 200);
    EXPECT_EQ(got[4].type, MsgType::exit);
    EXPECT_TRUE(d.error().empty());
    EXPECT_EQ(d.buffered(), 0u);
}

TEST(ShellProtocol, HeaderIsTypeAndBigEndianLength) {
    const std::string m = encode(MsgType::stdout_data, std::string(258, 'x'));
    ASSERT_EQ(m.size(), kHeaderSize + 258);
    EXPECT_EQ(m[0], 'O');
    EXPECT_EQ(static_cast<unsigned char>(m[3]), 1);
    EXPECT_EQ(static_cast<unsigned char>(m[4]), 2);
}

TEST(ShellProtocol, UnknownTypeStopsTheDecoder) {
    Decoder d;
    d.feed(std::string("Z\0\0\0\0", 5));
    EXPECT_FALSE(d.next().has_value());
    EXPECT_NE(d.error().find("unknown shell message type 0x5a"), std::string::npos) << d.error();
    d.feed(encode(MsgType::stdin_eof));
    EXPECT_FALSE(d.next().has_value()) << "no message after an error";
}

TEST(ShellProtocol, OversizedLengthIsRefusedBeforeBuffering) {
    Decoder d;
    d.feed(std::string("I\x00\x01\x00\x01", 5));  // 65537 bytes announced
    EXPECT_FALSE(d.next().has_value());
    EXPECT_NE(d.error().find("65537"), std::string::npos) << d.error();
}

TEST(ShellProtocol, ResizeNeedsFourBytes) {
    std::uint16_t r = 0, c = 0;
    EXPECT_FALSE(decode_resize("abc", r, c));
    EXPECT_FALSE(decode_resize("abcde", r, c));
}

TEST(ShellProtocol, PartialMessageWaitsForTheRest) {
    const std::string m = encode(MsgType::stdin_data, "hello");
    Decoder d;
    d.feed(m.substr(0, 7));
    EXPECT_FALSE(d.next().has_value());
    EXPECT_TRUE(d.error().empty());
    d.feed(m.substr(7));
    auto got = d.next();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->payload, "hello");
}

// START: what a legitimate host sends, and what a broken or hostile one might.
TEST(ShellStart, EncodedRequestParsesBackExactly) {
    StartRequest in;
    in.tty = true;
    in.rows = 50;
    in.cols = 132;
    in.term = "xterm-256color";
    in.argv = {"/bin/sh", "-c", "echo 'a b'"};
    const StartRequest out = parse_start(encode_start(in));
    EXPECT_TRUE(out.tty);
    EXPECT_EQ(out.rows, 50);
    EXPECT_EQ(out.cols, 132);
    EXPECT_EQ(out.term, "xterm-256color");
    EXPECT_EQ(out.argv, in.argv);
}

TEST(ShellStart, MissingKeysMeanTheDefaultsAndAnUnknownSizeIsLeftOut) {
    const StartRequest d = parse_start("{}");
    EXPECT_FALSE(d.tty);
    EXPECT_EQ(d.rows, 24);
    EXPECT_EQ(d.cols, 80);
    EXPECT_TRUE(d.term.empty());
    EXPECT_TRUE(d.argv.empty());
    StartRequest zero;
    zero.rows = 0;  // a terminal that reports no size
    zero.cols = 0;
    const StartRequest back = parse_start(encode_start(zero));
    EXPECT_EQ(back.rows, 24);
    EXPECT_EQ(back.cols, 80);
}

TEST(ShellStart, WrongTypesAndRangesAreRefusedNamingTheKey) {
    const std::pair<const char*, const char*> cases[] = {
        {"[]", "not a JSON object"},          {"{", "not a JSON object"},
        {R"({"tty":"yes"})", "\"tty\""},      {R"({"rows":0})", "\"rows\""},
        {R"({"rows":10001})", "\"rows\""},    {R"({"cols":-1})", "\"cols\""},
        {R"({"cols":1.5})", "\"cols\""},      {R"({"rows":18446744073709551615})", "\"rows\""},
        {R"({"term":7})", "\"term\""},        {R"({"term":"x\nPATH=/tmp"})", "\"term\""},
        {R"({"term":"A=B"})", "\"term\""},    {R"({"argv":"sh"})", "\"argv\""},
        {R"({"argv":["sh",1]})", "\"argv\""}, {R"({"argv":["sh\u0000-c"]})", "NUL"},
        {R"({"argv":[""]})", "empty"},
    };
    for (const auto& [payload, key] : cases) {
        try {
            parse_start(payload);
            ADD_FAILURE() << "accepted: " << payload;
        } catch (const cordon::Error& e) {
            EXPECT_NE(std::string(e.what()).find(key), std::string::npos)
                << payload << " -> " << e.what();
        }
    }
}

TEST(ShellStart, UnknownKeysAreIgnoredForNewerHosts) {
    const StartRequest r = parse_start(R"({"tty":false,"env":{"A":"1"},"argv":["id"]})");
    EXPECT_EQ(r.argv, std::vector<std::string>{"id"});
}

TEST(ShellExit, RoundTripsAndRefusesOutOfRangeCodes) {
    const ExitReport r = parse_exit(encode_exit({137, 9}));
    EXPECT_EQ(r.exit_code, 137);
    EXPECT_EQ(r.signal, 9);
    EXPECT_EQ(parse_exit(R"({"exit_code":0})").signal, 0);
    for (const char* bad :
         {"", "{}", R"({"exit_code":256})", R"({"exit_code":-1})", R"({"exit_code":"0"})",
          R"({"exit_code":0,"signal":300})", R"({"exit_code":1e3})"}) {
        EXPECT_THROW(parse_exit(bad), cordon::Error) << bad;
    }
}

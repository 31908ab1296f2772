// Frame codec: round trips and every malformed case, no sockets.
#include "cordon/channel/frame.hpp"

#include <gtest/gtest.h>

using namespace cordon::channel;

namespace {

std::vector<std::uint8_t> raw_header(std::uint8_t type, std::uint8_t flags, std::uint16_t reserved,
                                     std::uint32_t stream, std::uint32_t length) {
    std::vector<std::uint8_t> h(kHeaderSize);
    h[0] = type;
    h[1] = flags;
    h[2] = static_cast<std::uint8_t>(reserved >> 8);
    h[3] = static_cast<std::uint8_t>(reserved);
    for (int i = 0; i < 4; ++i) h[4 + i] = static_cast<std::uint8_t>(stream >> (24 - 8 * i));
    for (int i = 0; i < 4; ++i) h[8 + i] = static_cast<std::uint8_t>(length >> (24 - 8 * i));
    return h;
}

// Feeds `bytes` and expects a decode error containing `needle`.
void expect_error(const std::vector<std::uint8_t>& bytes, const std::string& needle,
                  std::uint32_t max_payload = 65536) {
    FrameDecoder d(max_payload);
    d.feed(bytes);
    Frame f;
    ASSERT_EQ(d.next(f), FrameDecoder::Status::error) << needle;
    EXPECT_NE(d.error().find(needle), std::string::npos) << d.error();
    // Sticky until cleared.
    EXPECT_EQ(d.next(f), FrameDecoder::Status::error);
    d.clear();
    EXPECT_EQ(d.next(f), FrameDecoder::Status::need_more);
}

}  // namespace

TEST(FrameCodec, HeaderLayoutIsBigEndian) {
    std::uint8_t out[kHeaderSize];
    encode_header({FrameType::data, flag::fin, 0x01020304, 0x0a0b0c0d}, out);
    const std::uint8_t want[] = {5, 1, 0, 0, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d};
    EXPECT_EQ(0, std::memcmp(out, want, kHeaderSize));
}

TEST(FrameCodec, RoundTripEveryTypeByteByByte) {
    std::vector<std::vector<std::uint8_t>> frames;
    Handshake hs;
    hs.nonce = 0x1122334455667788ULL;
    hs.max_frame_payload = 65536;
    hs.initial_window = 262144;
    hs.max_streams = 100;
    hs.agent_version = "cordon-hostagent 0.1.0";
    frames.push_back(encode_frame({FrameType::hello, 0, 0, 0}, encode_handshake(hs)));
    hs.chosen_version = 1;
    frames.push_back(encode_frame({FrameType::welcome, 0, 0, 0}, encode_handshake(hs)));
    const std::string svc = "docker";
    frames.push_back(
        encode_frame({FrameType::open, 0, 1, 0},
                     std::span<const std::uint8_t>(
                         reinterpret_cast<const std::uint8_t*>(svc.data()), svc.size())));
    frames.push_back(encode_frame({FrameType::accept, 0, 1, 0}));
    std::vector<std::uint8_t> data(5000);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7);
    frames.push_back(encode_frame({FrameType::data, 0, 1, 0}, data));
    frames.push_back(encode_frame({FrameType::data, flag::fin, 1, 0}));
    frames.push_back(encode_frame({FrameType::window, 0, 1, 0}, encode_u32(4096)));
    frames.push_back(
        encode_frame({FrameType::reset, 0, 3, 0}, encode_code_reason(1, "no such service")));
    frames.push_back(encode_frame({FrameType::ping, flag::ack, 0, 0}, encode_u64(42)));
    frames.push_back(encode_frame({FrameType::go_away, 0, 0, 0}, encode_code_reason(0, "bye")));

    std::vector<std::uint8_t> all;
    for (auto& f : frames) all.insert(all.end(), f.begin(), f.end());
    FrameDecoder d;
    std::size_t got = 0;
    Frame f;
    for (std::uint8_t b : all) {
        d.feed(std::span<const std::uint8_t>(&b, 1));
        while (true) {
            auto st = d.next(f);
            ASSERT_NE(st, FrameDecoder::Status::error) << d.error();
            if (st == FrameDecoder::Status::need_more)
                break;
            std::vector<std::uint8_t> re = encode_frame(f.header, f.payload);
            EXPECT_EQ(re, frames[got]) << "frame " << got;
            if (f.header.type == FrameType::hello || f.header.type == FrameType::welcome) {
                std::string err;
                auto back = decode_handshake(f.payload, err);
                ASSERT_TRUE(back) << err;
                EXPECT_EQ(back->nonce, hs.nonce);
                EXPECT_EQ(back->agent_version, hs.agent_version);
                EXPECT_EQ(back->initial_window, 262144u);
                EXPECT_EQ(back->chosen_version, f.header.type == FrameType::welcome ? 1 : 0);
            }
            if (f.header.type == FrameType::reset) {
                std::uint32_t code = 9;
                std::string reason, err;
                ASSERT_TRUE(decode_code_reason(f.payload, code, reason, err));
                EXPECT_EQ(code, 1u);
                EXPECT_EQ(reason, "no such service");
            }
            ++got;
        }
    }
    EXPECT_EQ(got, frames.size());
    EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameCodec, MalformedHeaders) {
    expect_error(raw_header(0, 0, 0, 1, 0), "type 0x00 is unknown");
    expect_error(raw_header(0x2a, 0, 0, 1, 0), "type 0x2a is unknown");
    expect_error(raw_header(5, 0, 0x0100, 1, 0), "reserved bits");
    expect_error(raw_header(5, 0x02, 0, 1, 0), "unknown flags");
    expect_error(raw_header(6, 0x01, 0, 1, 4), "unknown flags");   // fin on WINDOW
    expect_error(raw_header(8, 0, 0, 7, 8), "must be 0");          // PING on a stream
    expect_error(raw_header(9, 0, 0, 1, 4), "must be 0");          // GOAWAY on a stream
    expect_error(raw_header(1, 0, 0, 3, 37), "must be 0");         // HELLO on a stream
    expect_error(raw_header(5, 0, 0, 0, 1), "needs a stream id");  // DATA on stream 0
    expect_error(raw_header(3, 0, 0, 0, 6), "needs a stream id");
    expect_error(raw_header(5, 0, 0, 1, 65537), "over the 65536-byte limit");
    expect_error(raw_header(5, 0, 0, 1, 0xffffffffu), "over the");
    expect_error(raw_header(6, 0, 0, 1, 3), "must be 4");
    expect_error(raw_header(8, 0, 0, 0, 9), "must be 8");
    expect_error(raw_header(4, 0, 0, 1, 1), "must be 0");  // ACCEPT with payload
    expect_error(raw_header(3, 0, 0, 1, 0), "must be 1..64");
    expect_error(raw_header(3, 0, 0, 1, 65), "must be 1..64");
    expect_error(raw_header(7, 0, 0, 1, 3), "must be 4..260");
    expect_error(raw_header(1, 0, 0, 0, 10), "must be 37..512");
    expect_error(raw_header(2, 0, 0, 0, 513), "must be 37..512");
}

TEST(FrameCodec, TruncatedFrameNeedsMore) {
    auto f = encode_frame({FrameType::data, 0, 1, 0}, encode_u64(1));
    FrameDecoder d;
    Frame out;
    for (std::size_t i = 0; i + 1 < f.size(); ++i) {
        d.feed(std::span<const std::uint8_t>(&f[i], 1));
        EXPECT_EQ(d.next(out), FrameDecoder::Status::need_more) << i;
    }
    d.feed(std::span<const std::uint8_t>(&f.back(), 1));
    EXPECT_EQ(d.next(out), FrameDecoder::Status::frame);
}

TEST(FrameCodec, HeaderErrorBeforePayloadArrives) {
    // An oversized length is rejected from the header alone, without buffering the payload.
    FrameDecoder d(1024);
    d.feed(raw_header(5, 0, 0, 1, 1u << 30));
    Frame f;
    EXPECT_EQ(d.next(f), FrameDecoder::Status::error);
    EXPECT_EQ(d.buffered(), kHeaderSize);
}

TEST(FrameCodec, HandshakePayloadValidation) {
    Handshake hs;
    hs.max_frame_payload = 65536;
    hs.initial_window = 65536;
    hs.max_streams = 1;
    auto good = encode_handshake(hs);
    std::string err;
    EXPECT_TRUE(decode_handshake(good, err));

    auto bad = good;
    bad[0] ^= 0xff;
    EXPECT_FALSE(decode_handshake(bad, err));
    EXPECT_NE(err.find("magic"), std::string::npos);

    Handshake v = hs;
    v.min_version = 3;
    v.max_version = 2;
    EXPECT_FALSE(decode_handshake(encode_handshake(v), err));
    EXPECT_NE(err.find("version range 3..2"), std::string::npos) << err;

    v = hs;
    v.min_version = 0;
    EXPECT_FALSE(decode_handshake(encode_handshake(v), err));

    v = hs;
    v.max_frame_payload = 10;
    EXPECT_FALSE(decode_handshake(encode_handshake(v), err));
    EXPECT_NE(err.find("max frame payload 10"), std::string::npos) << err;

    v = hs;
    v.initial_window = 0;
    EXPECT_FALSE(decode_handshake(encode_handshake(v), err));

    v = hs;
    v.max_streams = 0;
    EXPECT_FALSE(decode_handshake(encode_handshake(v), err));

    // agent length pointing past the end
    auto cut = good;
    cut[kHandshakeFixedSize - 1] = 10;
    EXPECT_FALSE(decode_handshake(cut, err));
    EXPECT_NE(err.find("does not fit"), std::string::npos);

    EXPECT_FALSE(decode_handshake(std::span<const std::uint8_t>(good.data(), 20), err));

    // Extensions after the agent string are ignored (forward compatibility).
    auto ext = good;
    ext.push_back(0xee);
    EXPECT_TRUE(decode_handshake(ext, err));

    // Non-printable agent bytes are neutralised.
    Handshake a = hs;
    a.agent_version = std::string("x\n\x1b[31m", 7);
    auto dec = decode_handshake(encode_handshake(a), err);
    ASSERT_TRUE(dec);
    EXPECT_EQ(dec->agent_version, "x??[31m");
}

TEST(FrameCodec, CodeReasonLimits) {
    std::uint32_t code;
    std::string reason, err;
    auto long_reason = encode_code_reason(7, std::string(1000, 'r'));
    EXPECT_EQ(long_reason.size(), 4 + kMaxReasonText);
    EXPECT_TRUE(decode_code_reason(long_reason, code, reason, err));
    EXPECT_EQ(code, 7u);
    std::vector<std::uint8_t> short_payload = {0, 0};
    EXPECT_FALSE(decode_code_reason(short_payload, code, reason, err));
}

TEST(FrameCodec, ServiceNames) {
    EXPECT_TRUE(valid_service_name("docker"));
    EXPECT_TRUE(valid_service_name("port/8080"));
    EXPECT_TRUE(valid_service_name("a.b_c-d:e"));
    EXPECT_FALSE(valid_service_name(""));
    EXPECT_FALSE(valid_service_name(std::string(65, 'a')));
    EXPECT_TRUE(valid_service_name(std::string(64, 'a')));
    EXPECT_FALSE(valid_service_name("dock er"));
    EXPECT_FALSE(valid_service_name(std::string("do\0cker", 7)));
    EXPECT_FALSE(valid_service_name("ü"));
}

TEST(FrameCodec, ResyncFindsHandshakeAfterGarbage) {
    Handshake hs;
    hs.max_frame_payload = 65536;
    hs.initial_window = 65536;
    hs.max_streams = 4;
    hs.nonce = 5;
    auto hello = encode_frame({FrameType::hello, 0, 0, 0}, encode_handshake(hs));
    std::vector<std::uint8_t> stream;
    // Garbage, including a partial HELLO-looking prefix and a fake magic without header.
    for (int i = 0; i < 1000; ++i) stream.push_back(static_cast<std::uint8_t>(i * 31 + 7));
    stream.insert(stream.end(), hello.begin(), hello.begin() + 10);
    stream.insert(stream.end(), kMagic.begin(), kMagic.end());
    stream.insert(stream.end(), hello.begin(), hello.end());

    FrameDecoder d;
    // Feed in small pieces, scanning after each, like the session does.
    std::size_t dropped = 0;
    Frame f;
    bool found = false;
    for (std::size_t i = 0; i < stream.size() && !found; i += 7) {
        d.feed(std::span<const std::uint8_t>(stream.data() + i,
                                             std::min<std::size_t>(7, stream.size() - i)));
        for (;;) {
            dropped += d.skip_to_handshake(FrameType::hello);
            auto st = d.next(f);
            if (st == FrameDecoder::Status::need_more)
                break;
            if (st == FrameDecoder::Status::error) {
                dropped += d.discard(1);
                continue;
            }
            std::string err;
            auto got = decode_handshake(f.payload, err);
            if (f.header.type == FrameType::hello && got) {
                EXPECT_EQ(got->nonce, 5u);
                found = true;
                break;
            }
        }
    }
    EXPECT_TRUE(found);
    EXPECT_EQ(dropped, 1000u + 10 + kMagic.size());
}

TEST(FrameCodec, ResyncIgnoresOtherHandshakeType) {
    Handshake hs;
    hs.max_frame_payload = 65536;
    hs.initial_window = 65536;
    hs.max_streams = 4;
    auto welcome = encode_frame({FrameType::welcome, 0, 0, 0}, encode_handshake(hs));
    FrameDecoder d;
    d.feed(welcome);
    EXPECT_EQ(d.skip_to_handshake(FrameType::hello), welcome.size());
    EXPECT_EQ(d.buffered(), 0u);
}

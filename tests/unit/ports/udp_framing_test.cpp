// Published UDP ports: the datagram framing (u16 big-endian length + payload) and the
// host's flow table (idle expiry, cap).
#include "cordon/ports/udp_framing.hpp"

#include <gtest/gtest.h>

#include <random>

#include "cordon/error.hpp"

using namespace cordon::ports;
using namespace std::chrono_literals;

namespace {

std::string framed(const std::vector<std::string>& datagrams) {
    std::string out;
    for (const auto& d : datagrams) append_datagram(out, d);
    return out;
}

std::vector<std::string> drain(DatagramDecoder& d) {
    std::vector<std::string> out;
    std::string one;
    while (d.next(one) == DatagramDecoder::Status::datagram) out.push_back(one);
    return out;
}

}  // namespace

TEST(UdpFraming, EncodesLengthBigEndianThenPayload) {
    std::string out;
    append_datagram(out, "hi");
    EXPECT_EQ(out, std::string("\x00\x02hi", 4));
    append_datagram(out, "");
    EXPECT_EQ(out, std::string("\x00\x02hi\x00\x00", 6));
    std::string big;
    append_datagram(big, std::string(0x1234, 'x'));
    EXPECT_EQ(static_cast<unsigned char>(big[0]), 0x12);
    EXPECT_EQ(static_cast<unsigned char>(big[1]), 0x34);
    EXPECT_EQ(big.size(), 2u + 0x1234u);
}

TEST(UdpFraming, RefusesToEncodeMoreThanUdpCarries) {
    std::string out;
    append_datagram(out, std::string(kMaxUdpPayload, 'a'));
    EXPECT_EQ(out.size(), kMaxUdpPayload + 2);
    std::string none;
    EXPECT_THROW(append_datagram(none, std::string(kMaxUdpPayload + 1, 'a')), cordon::Error);
    EXPECT_TRUE(none.empty());  // nothing half-written
}

TEST(UdpFraming, DecodesEveryDatagramInOneChunk) {
    const std::vector<std::string> in{"one", "", std::string(1000, 'z'), "four"};
    DatagramDecoder d;
    d.feed(framed(in));
    EXPECT_EQ(drain(d), in);
    std::string x;
    EXPECT_EQ(d.next(x), DatagramDecoder::Status::need_more);
    EXPECT_EQ(d.buffered(), 0u);
}

TEST(UdpFraming, DecodesAcrossEveryChunkBoundary) {
    const std::vector<std::string> in{"alpha", "", "b", std::string(300, 'c'),
                                      std::string(kMaxUdpPayload, 'm')};
    const std::string bytes = framed(in);
    // One byte at a time, then random chunk sizes.
    {
        DatagramDecoder d;
        std::vector<std::string> got;
        for (char c : bytes) {
            d.feed(std::string_view(&c, 1));
            for (auto& g : drain(d)) got.push_back(std::move(g));
        }
        EXPECT_EQ(got, in);
    }
    std::mt19937 rng(7);
    for (int round = 0; round < 50; ++round) {
        DatagramDecoder d;
        std::vector<std::string> got;
        std::size_t off = 0;
        while (off < bytes.size()) {
            const std::size_t n = std::min<std::size_t>(1 + rng() % 5000, bytes.size() - off);
            d.feed(std::string_view(bytes).substr(off, n));
            off += n;
            for (auto& g : drain(d)) got.push_back(std::move(g));
        }
        ASSERT_EQ(got, in) << "round " << round;
        EXPECT_EQ(d.buffered(), 0u);
    }
}

TEST(UdpFraming, APartialDatagramWaitsForTheRest) {
    DatagramDecoder d;
    d.feed(std::string("\x00\x05he", 4));
    std::string out;
    EXPECT_EQ(d.next(out), DatagramDecoder::Status::need_more);
    EXPECT_EQ(d.buffered(), 4u);
    d.feed("llo");
    ASSERT_EQ(d.next(out), DatagramDecoder::Status::datagram);
    EXPECT_EQ(out, "hello");
    d.feed(std::string("\x00", 1));  // half a header
    EXPECT_EQ(d.next(out), DatagramDecoder::Status::need_more);
}

TEST(UdpFraming, AnOversizedLengthIsAnErrorThatSticks) {
    DatagramDecoder d;
    d.feed(framed({"ok"}));
    d.feed(std::string("\xff\xff", 2));  // 65535 > 65507
    std::string out;
    ASSERT_EQ(d.next(out), DatagramDecoder::Status::datagram);
    EXPECT_EQ(out, "ok");
    EXPECT_EQ(d.next(out), DatagramDecoder::Status::error);
    EXPECT_NE(d.error().find("65535"), std::string::npos) << d.error();
    EXPECT_NE(d.error().find("65507"), std::string::npos) << d.error();
    // Nothing after the corruption is trusted, even a well-formed frame.
    d.feed(framed({"later"}));
    EXPECT_EQ(d.next(out), DatagramDecoder::Status::error);
    EXPECT_EQ(d.buffered(), 0u);
}

TEST(UdpFraming, TheLimitIsExactAndCanBeLowered) {
    {
        DatagramDecoder d;
        std::string len65508("\xff\xe4", 2);  // 65508
        d.feed(len65508);
        std::string out;
        EXPECT_EQ(d.next(out), DatagramDecoder::Status::error);
    }
    {
        DatagramDecoder d(10);
        d.feed(framed({std::string(10, 'a'), std::string(11, 'b')}));
        std::string out;
        ASSERT_EQ(d.next(out), DatagramDecoder::Status::datagram);
        EXPECT_EQ(out.size(), 10u);
        EXPECT_EQ(d.next(out), DatagramDecoder::Status::error);
    }
}

TEST(UdpFlowTable, FindsTouchesAndExpiresIdleFlows) {
    using Table = FlowTable<int, std::string>;
    Table t(8, 60s);
    const auto t0 = Table::Clock::time_point{} + 1000s;
    ASSERT_NE(t.add(1, "a", t0), nullptr);
    ASSERT_NE(t.add(2, "b", t0), nullptr);
    EXPECT_EQ(t.add(2, "again", t0), nullptr);  // exists: use find
    EXPECT_EQ(t.size(), 2u);
    // Flow 1 stays busy (a datagram at 30 s, a reply at 50 s); flow 2 is quiet.
    ASSERT_NE(t.find(1, t0 + 30s), nullptr);
    t.touch(1, t0 + 50s);
    EXPECT_TRUE(t.expire(t0 + 59s).empty());
    auto gone = t.expire(t0 + 60s);
    ASSERT_EQ(gone.size(), 1u);
    EXPECT_EQ(gone[0].first, 2);
    EXPECT_EQ(gone[0].second, "b");
    EXPECT_EQ(t.find(2, t0 + 61s), nullptr);
    EXPECT_TRUE(t.expire(t0 + 109s).empty());  // 1 was last active at 50 s
    EXPECT_EQ(t.expire(t0 + 110s).size(), 1u);
    EXPECT_EQ(t.size(), 0u);
}

TEST(UdpFlowTable, TheCapRefusesNewClientsUntilOneLeaves) {
    using Table = FlowTable<int, int>;
    Table t(3, 10s);
    const auto t0 = Table::Clock::time_point{} + 1000s;
    for (int i = 0; i < 3; ++i) ASSERT_NE(t.add(i, i * 10, t0), nullptr);
    EXPECT_EQ(t.add(99, 0, t0), nullptr);
    EXPECT_EQ(t.size(), 3u);
    // Existing flows keep working at the cap.
    ASSERT_NE(t.find(0, t0 + 5s), nullptr);
    EXPECT_EQ(*t.find(0, t0 + 5s), 0);
    // One ends: a new client fits.
    EXPECT_EQ(t.erase(1), std::optional<int>(10));
    EXPECT_EQ(t.erase(1), std::nullopt);
    EXPECT_NE(t.add(99, 990, t0 + 6s), nullptr);
    EXPECT_EQ(t.add(100, 0, t0 + 6s), nullptr);
    // Idle ones expire and make room too.
    auto gone = t.expire(t0 + 12s);
    ASSERT_EQ(gone.size(), 1u);  // 2 (last active at 0 s); 0 at 5 s and 99 at 6 s stay
    EXPECT_EQ(gone[0].first, 2);
    EXPECT_NE(t.add(100, 0, t0 + 12s), nullptr);
    EXPECT_EQ(t.clear().size(), 3u);
    EXPECT_EQ(t.size(), 0u);
}

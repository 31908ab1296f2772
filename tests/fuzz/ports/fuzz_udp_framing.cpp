// libFuzzer target: the UDP datagram framing of published UDP ports (u16 big-endian
// length + payload). Invariants: never crash; fed in any chunk sizes, the decoder yields
// exactly the datagrams of the input in order, each re-encoding to the input bytes it came
// from; it reports an error (with a reason) exactly when a length exceeds the limit, and
// stays in error; what is buffered is exactly the incomplete tail.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "cordon/ports/udp_framing.hpp"

using namespace cordon::ports;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    // First byte: the chunk size (1..256) and, on odd values, a low payload limit.
    const std::size_t chunk = 1 + data[0];
    const std::size_t limit = (data[0] & 1) ? 300 : kMaxUdpPayload;
    const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

    // What the input must decode to, computed directly.
    std::size_t expect_end = 0;  // bytes covered by complete datagrams
    bool expect_error = false;
    for (;;) {
        if (in.size() - expect_end < 2)
            break;
        const std::size_t len = (std::size_t{static_cast<unsigned char>(in[expect_end])} << 8) |
                                static_cast<unsigned char>(in[expect_end + 1]);
        if (len > limit) {
            expect_error = true;
            break;
        }
        if (in.size() - expect_end - 2 < len)
            break;
        expect_end += 2 + len;
    }

    DatagramDecoder d(limit);
    std::size_t consumed = 0;
    bool failed = false;
    std::string out;
    for (std::size_t off = 0; off < in.size() && !failed; off += chunk) {
        d.feed(in.substr(off, chunk));
        for (;;) {
            const auto st = d.next(out);
            if (st == DatagramDecoder::Status::error) {
                if (d.error().empty() || !expect_error || consumed != expect_end)
                    __builtin_trap();
                if (d.next(out) != DatagramDecoder::Status::error)  // sticky
                    __builtin_trap();
                failed = true;
                break;
            }
            if (st == DatagramDecoder::Status::need_more)
                break;
            if (out.size() > limit)
                __builtin_trap();
            std::string re;
            append_datagram(re, out);
            if (consumed + re.size() > in.size() ||
                std::memcmp(re.data(), in.data() + consumed, re.size()) != 0)
                __builtin_trap();
            consumed += re.size();
        }
    }
    if (failed != expect_error)
        __builtin_trap();
    if (!failed && (consumed != expect_end || d.buffered() != in.size() - expect_end))
        __builtin_trap();
    return 0;
}

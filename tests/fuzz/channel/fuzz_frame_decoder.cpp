// libFuzzer target: the channel frame decoder and payload decoders.
// Invariants: never crash; every decoded frame re-encodes to the exact input bytes;
// the resync scanner only ever stops on a candidate handshake header.
#include <cstdint>
#include <cstring>
#include <string>

#include "cordon/channel/frame.hpp"

using namespace cordon::channel;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    // First byte: chunk size for feeding (1..256) and the decoder's payload limit.
    const std::size_t chunk = 1 + data[0];
    const std::uint32_t limit = (data[0] & 1) ? 65536 : kMaxFramePayloadLimit;
    const std::uint8_t* in = data + 1;
    const std::size_t n = size - 1;

    FrameDecoder d(limit);
    std::size_t consumed = 0;
    bool failed = false;
    for (std::size_t off = 0; off < n && !failed; off += chunk) {
        d.feed(std::span<const std::uint8_t>(in + off, std::min(chunk, n - off)));
        Frame f;
        for (;;) {
            auto st = d.next(f);
            if (st == FrameDecoder::Status::error) {
                if (d.error().empty())
                    __builtin_trap();
                failed = true;  // the session resets here; the stream is not trusted
            }
            if (st != FrameDecoder::Status::frame)
                break;
            auto re = encode_frame(f.header, f.payload);
            if (re.size() != kHeaderSize + f.payload.size() ||
                std::memcmp(re.data(), in + consumed, re.size()) != 0)
                __builtin_trap();
            consumed += re.size();
            std::string err, reason;
            std::uint32_t code = 0;
            switch (f.header.type) {
                case FrameType::hello:
                case FrameType::welcome:
                    if (auto hs = decode_handshake(f.payload, err)) {
                        auto again = decode_handshake(encode_handshake(*hs), err);
                        if (!again || again->nonce != hs->nonce ||
                            again->agent_version != hs->agent_version)
                            __builtin_trap();
                    }
                    break;
                case FrameType::reset:
                case FrameType::go_away:
                    if (!decode_code_reason(f.payload, code, reason, err))
                        __builtin_trap();
                    break;
                case FrameType::open:
                    (void)valid_service_name(std::string_view(
                        reinterpret_cast<const char*>(f.payload.data()), f.payload.size()));
                    break;
                default:
                    break;
            }
        }
        // At most one partial frame plus the last chunk is ever buffered.
        if (!failed && d.buffered() > limit + kHeaderSize + chunk)
            __builtin_trap();
    }

    // Resync scanning over the same bytes.
    FrameDecoder r(65536);
    r.feed(std::span<const std::uint8_t>(in, n));
    for (int guard = 0; guard < 100000; ++guard) {
        r.skip_to_handshake((data[0] & 2) ? FrameType::welcome : FrameType::hello);
        Frame f;
        auto st = r.next(f);
        if (st == FrameDecoder::Status::need_more)
            break;
        if (st == FrameDecoder::Status::error) {
            if (r.discard(1) == 0)
                break;
            continue;
        }
        if (f.header.type != FrameType::hello && f.header.type != FrameType::welcome)
            __builtin_trap();
    }
    return 0;
}

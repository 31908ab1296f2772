#include "cordon/channel/frame.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace cordon::channel {
namespace {

void store_u16(std::uint8_t* p, std::uint16_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}
void store_u32(std::uint8_t* p, std::uint32_t v) noexcept {
    for (int i = 3; i >= 0; --i) {
        p[i] = static_cast<std::uint8_t>(v);
        v >>= 8;
    }
}
void store_u64(std::uint8_t* p, std::uint64_t v) noexcept {
    for (int i = 7; i >= 0; --i) {
        p[i] = static_cast<std::uint8_t>(v);
        v >>= 8;
    }
}
std::uint16_t load_u16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

bool is_session_frame(FrameType t) noexcept {
    return t == FrameType::hello || t == FrameType::welcome || t == FrameType::ping ||
           t == FrameType::go_away;
}

}  // namespace

std::uint32_t load_u32(const std::uint8_t* p) noexcept {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}
std::uint64_t load_u64(const std::uint8_t* p) noexcept {
    return (std::uint64_t{load_u32(p)} << 32) | load_u32(p + 4);
}

const char* to_string(FrameType type) noexcept {
    switch (type) {
        case FrameType::hello:
            return "HELLO";
        case FrameType::welcome:
            return "WELCOME";
        case FrameType::open:
            return "OPEN";
        case FrameType::accept:
            return "ACCEPT";
        case FrameType::data:
            return "DATA";
        case FrameType::window:
            return "WINDOW";
        case FrameType::reset:
            return "RESET";
        case FrameType::ping:
            return "PING";
        case FrameType::go_away:
            return "GOAWAY";
    }
    return "UNKNOWN";
}

void encode_header(const FrameHeader& h, std::uint8_t* out) noexcept {
    out[0] = static_cast<std::uint8_t>(h.type);
    out[1] = h.flags;
    out[2] = 0;
    out[3] = 0;
    store_u32(out + 4, h.stream);
    store_u32(out + 8, h.length);
}

std::vector<std::uint8_t> encode_frame(const FrameHeader& header,
                                       std::span<const std::uint8_t> payload) {
    std::vector<std::uint8_t> out(kHeaderSize + payload.size());
    FrameHeader h = header;
    h.length = static_cast<std::uint32_t>(payload.size());
    encode_header(h, out.data());
    if (!payload.empty())
        std::memcpy(out.data() + kHeaderSize, payload.data(), payload.size());
    return out;
}

bool decode_header(const std::uint8_t* raw, std::uint32_t max_payload, FrameHeader& out,
                   std::string& error) {
    const std::uint8_t type = raw[0];
    if (type < static_cast<std::uint8_t>(FrameType::hello) ||
        type > static_cast<std::uint8_t>(FrameType::go_away)) {
        error = fmt::format("frame type 0x{:02x} is unknown", type);
        return false;
    }
    out.type = static_cast<FrameType>(type);
    out.flags = raw[1];
    out.stream = load_u32(raw + 4);
    out.length = load_u32(raw + 8);
    const char* name = to_string(out.type);
    if (raw[2] != 0 || raw[3] != 0) {
        error =
            fmt::format("{} frame has non-zero reserved bits 0x{:02x}{:02x}", name, raw[2], raw[3]);
        return false;
    }
    std::uint8_t allowed_flags = 0;
    if (out.type == FrameType::data)
        allowed_flags = flag::fin;
    if (out.type == FrameType::ping)
        allowed_flags = flag::ack;
    if ((out.flags & ~allowed_flags) != 0) {
        error = fmt::format("{} frame has unknown flags 0x{:02x}", name, out.flags);
        return false;
    }
    if (is_session_frame(out.type) && out.stream != 0) {
        error = fmt::format("{} frame on stream {} (must be 0)", name, out.stream);
        return false;
    }
    if (!is_session_frame(out.type) && out.stream == 0) {
        error = fmt::format("{} frame on stream 0 (needs a stream id)", name);
        return false;
    }
    std::uint32_t min_len = 0, max_len = max_payload;
    switch (out.type) {
        case FrameType::hello:
        case FrameType::welcome:
            min_len = kHandshakeFixedSize;
            max_len = kMaxHandshakePayload;
            break;
        case FrameType::open:
            min_len = 1;
            max_len = kMaxServiceName;
            break;
        case FrameType::accept:
            max_len = 0;
            break;
        case FrameType::data:
            break;
        case FrameType::window:
            min_len = max_len = 4;
            break;
        case FrameType::ping:
            min_len = max_len = 8;
            break;
        case FrameType::reset:
        case FrameType::go_away:
            min_len = 4;
            max_len = 4 + kMaxReasonText;
            break;
    }
    if (out.length < min_len || out.length > max_len) {
        if (out.type == FrameType::data)
            error =
                fmt::format("DATA frame on stream {} has a {}-byte payload, over the {}-byte limit",
                            out.stream, out.length, max_len);
        else if (min_len == max_len)
            error = fmt::format("{} frame has a {}-byte payload (must be {})", name, out.length,
                                min_len);
        else
            error = fmt::format("{} frame has a {}-byte payload (must be {}..{})", name, out.length,
                                min_len, max_len);
        return false;
    }
    return true;
}

std::vector<std::uint8_t> encode_handshake(const Handshake& hs) {
    const std::size_t agent_len = std::min(hs.agent_version.size(), kMaxAgentVersion);
    std::vector<std::uint8_t> out(kHandshakeFixedSize + agent_len);
    std::uint8_t* p = out.data();
    std::memcpy(p, kMagic.data(), kMagic.size());
    p += kMagic.size();
    store_u16(p, hs.min_version);
    store_u16(p + 2, hs.max_version);
    store_u16(p + 4, hs.chosen_version);
    store_u16(p + 6, 0);
    store_u64(p + 8, hs.nonce);
    store_u32(p + 16, hs.max_frame_payload);
    store_u32(p + 20, hs.initial_window);
    store_u32(p + 24, hs.max_streams);
    p[28] = static_cast<std::uint8_t>(agent_len);
    if (agent_len)
        std::memcpy(p + 29, hs.agent_version.data(), agent_len);
    return out;
}

std::optional<Handshake> decode_handshake(std::span<const std::uint8_t> payload,
                                          std::string& error) {
    if (payload.size() < kHandshakeFixedSize) {
        error = fmt::format("handshake payload of {} bytes is shorter than {}", payload.size(),
                            kHandshakeFixedSize);
        return std::nullopt;
    }
    const std::uint8_t* p = payload.data();
    if (!std::equal(kMagic.begin(), kMagic.end(), p)) {
        error = "handshake payload does not start with the magic";
        return std::nullopt;
    }
    p += kMagic.size();
    Handshake hs;
    hs.min_version = load_u16(p);
    hs.max_version = load_u16(p + 2);
    hs.chosen_version = load_u16(p + 4);
    hs.nonce = load_u64(p + 8);
    hs.max_frame_payload = load_u32(p + 16);
    hs.initial_window = load_u32(p + 20);
    hs.max_streams = load_u32(p + 24);
    const std::size_t agent_len = p[28];
    if (agent_len > kMaxAgentVersion || kHandshakeFixedSize + agent_len > payload.size()) {
        error = fmt::format("handshake agent version length {} does not fit", agent_len);
        return std::nullopt;
    }
    hs.agent_version.assign(reinterpret_cast<const char*>(p + 29), agent_len);
    for (char& c : hs.agent_version)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            c = '?';
    if (hs.min_version == 0 || hs.min_version > hs.max_version) {
        error = fmt::format("handshake version range {}..{} is invalid", hs.min_version,
                            hs.max_version);
        return std::nullopt;
    }
    if (hs.max_frame_payload < kMinFramePayload) {
        error = fmt::format("handshake max frame payload {} is below {}", hs.max_frame_payload,
                            kMinFramePayload);
        return std::nullopt;
    }
    if (hs.initial_window == 0 || hs.initial_window > kMaxWindow) {
        error = fmt::format("handshake initial window {} is invalid", hs.initial_window);
        return std::nullopt;
    }
    if (hs.max_streams == 0) {
        error = "handshake max streams is 0";
        return std::nullopt;
    }
    return hs;
}

std::vector<std::uint8_t> encode_code_reason(std::uint32_t code, std::string_view reason) {
    reason = reason.substr(0, kMaxReasonText);
    std::vector<std::uint8_t> out(4 + reason.size());
    store_u32(out.data(), code);
    if (!reason.empty())
        std::memcpy(out.data() + 4, reason.data(), reason.size());
    return out;
}

bool decode_code_reason(std::span<const std::uint8_t> payload, std::uint32_t& code,
                        std::string& reason, std::string& error) {
    if (payload.size() < 4 || payload.size() > 4 + kMaxReasonText) {
        error = fmt::format("code+reason payload has {} bytes", payload.size());
        return false;
    }
    code = load_u32(payload.data());
    reason.assign(reinterpret_cast<const char*>(payload.data() + 4), payload.size() - 4);
    // Reasons end up in logs: keep them printable.
    for (char& c : reason)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            c = '?';
    return true;
}

std::vector<std::uint8_t> encode_u32(std::uint32_t v) {
    std::vector<std::uint8_t> out(4);
    store_u32(out.data(), v);
    return out;
}
std::vector<std::uint8_t> encode_u64(std::uint64_t v) {
    std::vector<std::uint8_t> out(8);
    store_u64(out.data(), v);
    return out;
}

bool valid_service_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > kMaxServiceName)
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '/' || c == ':' || c == '-';
    });
}

FrameDecoder::FrameDecoder(std::uint32_t max_payload) : max_payload_(max_payload) {}

void FrameDecoder::clear() noexcept {
    pos_ = end_ = 0;
    failed_ = false;
    error_.clear();
}

std::span<std::uint8_t> FrameDecoder::prepare(std::size_t n) {
    // Compact before growing so the buffer holds at most one partial frame plus input.
    if (pos_ == end_) {
        pos_ = end_ = 0;
    } else if (pos_ >= 64 * 1024 || end_ + n > buf_.size()) {
        std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
    }
    if (end_ + n > buf_.size())
        buf_.resize(end_ + n);
    return {buf_.data() + end_, n};
}

void FrameDecoder::commit(std::size_t n) noexcept {
    end_ = std::min(end_ + n, buf_.size());
}

void FrameDecoder::feed(std::span<const std::uint8_t> bytes) {
    if (bytes.empty())
        return;
    auto dst = prepare(bytes.size());
    std::memcpy(dst.data(), bytes.data(), bytes.size());
    commit(bytes.size());
}

FrameDecoder::Status FrameDecoder::next(Frame& out) {
    if (failed_)
        return Status::error;
    const std::size_t avail = end_ - pos_;
    if (avail < kHeaderSize)
        return Status::need_more;
    FrameHeader h;
    if (!decode_header(buf_.data() + pos_, max_payload_, h, error_)) {
        failed_ = true;
        return Status::error;
    }
    if (avail < kHeaderSize + h.length)
        return Status::need_more;
    out.header = h;
    out.payload = std::span<const std::uint8_t>(buf_.data() + pos_ + kHeaderSize, h.length);
    pos_ += kHeaderSize + h.length;
    return Status::frame;
}

std::size_t FrameDecoder::discard(std::size_t n) noexcept {
    failed_ = false;
    error_.clear();
    n = std::min(n, end_ - pos_);
    pos_ += n;
    return n;
}

std::size_t FrameDecoder::skip_to_handshake(FrameType type) {
    failed_ = false;
    error_.clear();
    // A handshake frame starts with: type, 0 flags, 0 reserved, stream 0 (8 bytes), then
    // length (4 bytes), then the magic (8 bytes).
    const std::size_t prefix = kHeaderSize + kMagic.size();
    const std::uint8_t want[8] = {static_cast<std::uint8_t>(type), 0, 0, 0, 0, 0, 0, 0};
    std::size_t i = pos_;
    const std::size_t end = end_;
    for (; i < end; ++i) {
        // Compare what is available of the 20-byte prefix; a partial match at the tail is
        // kept until more bytes arrive.
        const std::size_t n = std::min(prefix, end - i);
        bool match = true;
        for (std::size_t k = 0; k < n && match; ++k) {
            const std::uint8_t b = buf_[i + k];
            if (k < 8)
                match = b == want[k];
            else if (k >= kHeaderSize)
                match = b == kMagic[k - kHeaderSize];
            else if (k == 8)  // length high byte: handshakes are < 64 KiB
                match = b == 0;
        }
        if (match)
            break;
    }
    const std::size_t dropped = i - pos_;
    pos_ = i;
    if (pos_ == end_)
        pos_ = end_ = 0;
    return dropped;
}

}  // namespace cordon::channel

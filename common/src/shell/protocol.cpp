#include "cordon/shell/protocol.hpp"

#include <fmt/format.h>

namespace cordon::shell {

bool known_type(std::uint8_t t) {
    switch (static_cast<MsgType>(t)) {
        case MsgType::start:
        case MsgType::stdin_data:
        case MsgType::stdin_eof:
        case MsgType::resize:
        case MsgType::stdout_data:
        case MsgType::stderr_data:
        case MsgType::exit:
        case MsgType::error:
            return true;
    }
    return false;
}

std::string encode(MsgType type, std::string_view payload) {
    std::string out;
    out.reserve(kHeaderSize + payload.size());
    out.push_back(static_cast<char>(type));
    const auto n = static_cast<std::uint32_t>(payload.size());
    out.push_back(static_cast<char>((n >> 24) & 0xff));
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    out.push_back(static_cast<char>((n >> 8) & 0xff));
    out.push_back(static_cast<char>(n & 0xff));
    out.append(payload);
    return out;
}

std::string encode_resize(std::uint16_t rows, std::uint16_t cols) {
    const char p[4] = {static_cast<char>(rows >> 8), static_cast<char>(rows & 0xff),
                       static_cast<char>(cols >> 8), static_cast<char>(cols & 0xff)};
    return encode(MsgType::resize, std::string_view(p, 4));
}

bool decode_resize(std::string_view payload, std::uint16_t& rows, std::uint16_t& cols) {
    if (payload.size() != 4)
        return false;
    auto b = [&](std::size_t i) {
        return static_cast<std::uint16_t>(static_cast<unsigned char>(payload[i]));
    };
    rows = static_cast<std::uint16_t>((b(0) << 8) | b(1));
    cols = static_cast<std::uint16_t>((b(2) << 8) | b(3));
    return true;
}

void Decoder::feed(std::string_view bytes) {
    if (!error_.empty())
        return;
    if (pos_ > 0 && pos_ >= buf_.size() / 2) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    buf_.append(bytes);
}

std::optional<Message> Decoder::next() {
    if (!error_.empty() || buf_.size() - pos_ < kHeaderSize)
        return std::nullopt;
    const auto* h = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
    if (!known_type(h[0])) {
        error_ = fmt::format("unknown shell message type 0x{:02x}", h[0]);
        return std::nullopt;
    }
    const std::uint32_t n = (std::uint32_t{h[1]} << 24) | (std::uint32_t{h[2]} << 16) |
                            (std::uint32_t{h[3]} << 8) | std::uint32_t{h[4]};
    if (n > kMaxPayload) {
        error_ = fmt::format("shell message of {} bytes (limit {})", n, kMaxPayload);
        return std::nullopt;
    }
    if (buf_.size() - pos_ < kHeaderSize + n)
        return std::nullopt;
    Message m{static_cast<MsgType>(h[0]), buf_.substr(pos_ + kHeaderSize, n)};
    pos_ += kHeaderSize + n;
    if (pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    }
    return m;
}

}  // namespace cordon::shell

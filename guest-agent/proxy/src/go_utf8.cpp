#include "cordon/proxy/go_utf8.hpp"

namespace cordon::go_utf8 {

void append_utf8(std::string& out, char32_t r) {
    if (r < 0x80) {
        out.push_back(static_cast<char>(r));
    } else if (r < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (r >> 6)));
        out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
    } else if (r < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (r >> 12)));
        out.push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (r >> 18)));
        out.push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
    }
}

// Decodes one UTF-8 sequence like Go's utf8.DecodeRune: on any invalid sequence
// (overlong, surrogate, out of range, truncated) returns U+FFFD with width 1.
char32_t decode_rune(std::string_view s, std::size_t i, std::size_t& width) {
    auto b0 = static_cast<unsigned char>(s[i]);
    width = 1;
    if (b0 < 0x80)
        return b0;
    auto cont = [&](std::size_t k) -> int {
        if (i + k >= s.size())
            return -1;
        auto b = static_cast<unsigned char>(s[i + k]);
        return (b & 0xC0) == 0x80 ? (b & 0x3F) : -1;
    };
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        int c1 = cont(1);
        if (c1 < 0)
            return kRuneError;
        width = 2;
        return static_cast<char32_t>(((b0 & 0x1F) << 6) | c1);
    }
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        int c1 = cont(1), c2 = cont(2);
        if (c1 < 0 || c2 < 0)
            return kRuneError;
        char32_t r = static_cast<char32_t>(((b0 & 0x0F) << 12) | (c1 << 6) | c2);
        if (r < 0x800 || (r >= 0xD800 && r <= 0xDFFF))
            return kRuneError;
        width = 3;
        return r;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        int c1 = cont(1), c2 = cont(2), c3 = cont(3);
        if (c1 < 0 || c2 < 0 || c3 < 0)
            return kRuneError;
        char32_t r = static_cast<char32_t>(((b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3);
        if (r < 0x10000 || r > 0x10FFFF)
            return kRuneError;
        width = 4;
        return r;
    }
    return kRuneError;
}

}  // namespace cordon::go_utf8

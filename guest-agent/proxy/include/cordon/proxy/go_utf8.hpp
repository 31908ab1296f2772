#pragma once
// UTF-8 as Go reads and writes it (unicode/utf8): the one decoder the proxy's HTTP and
// JSON readers share, so both see the same runes dockerd sees.
#include <cstddef>
#include <string>
#include <string_view>

namespace cordon::go_utf8 {

constexpr char32_t kRuneError = 0xFFFD;

// One rune at s[i] as utf8.DecodeRuneInString reads it: an invalid, overlong, surrogate,
// out-of-range or truncated sequence is U+FFFD of width 1. i must be < s.size().
char32_t decode_rune(std::string_view s, std::size_t i, std::size_t& width);

// Appends the UTF-8 encoding of r (a valid rune).
void append_utf8(std::string& out, char32_t r);

}  // namespace cordon::go_utf8

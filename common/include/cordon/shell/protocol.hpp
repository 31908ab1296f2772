#pragma once
// The "shell" channel service (vmctl shell): small framed messages on one stream, so
// the terminal size and the exit status travel beside the terminal's bytes.
//
//   message = type (1 byte) | length (u32, big-endian) | payload (length bytes)
//
// host -> guest: START (JSON: {"tty", "rows", "cols", "term", "argv"}; first and once),
//                STDIN (bytes), STDIN_EOF (empty), RESIZE (u16 rows, u16 cols, BE)
// guest -> host: STDOUT (bytes; with a tty: the terminal's output), STDERR (bytes; no
//                tty only), EXIT (JSON: {"exit_code", "signal"}; last), ERROR (text;
//                the shell could not start, last)
// Protocol text: docs/PROTOCOL.md, section "The shell service".
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cordon::shell {

enum class MsgType : std::uint8_t {
    start = 'S',
    stdin_data = 'I',
    stdin_eof = 'E',
    resize = 'W',
    stdout_data = 'O',
    stderr_data = 'R',
    exit = 'X',
    error = 'F',
};

constexpr std::size_t kHeaderSize = 5;
constexpr std::size_t kMaxPayload = 64 * 1024;

struct Message {
    MsgType type;
    std::string payload;
};

// Whether `t` is a known message type.
bool known_type(std::uint8_t t);

// One encoded message (payload must be at most kMaxPayload bytes; longer data is the
// caller's to split).
std::string encode(MsgType type, std::string_view payload = {});
std::string encode_resize(std::uint16_t rows, std::uint16_t cols);
// Reads a RESIZE payload; false when it is not 4 bytes.
bool decode_resize(std::string_view payload, std::uint16_t& rows, std::uint16_t& cols);

// Incremental decoder. feed() bytes, then next() until it returns nothing. A bad header
// (unknown type, oversized length) sets error() and the decoder stops.
class Decoder {
  public:
    void feed(std::string_view bytes);
    std::optional<Message> next();
    const std::string& error() const { return error_; }
    std::size_t buffered() const { return buf_.size() - pos_; }

  private:
    std::string buf_;
    std::size_t pos_ = 0;
    std::string error_;
};

}  // namespace cordon::shell

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
#include <vector>

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

// The START message: what the host asks for. Defaults are what a missing key means.
struct StartRequest {
    bool tty = false;
    std::uint16_t rows = 24;  // 1..kMaxTerminalSide, used with a tty only
    std::uint16_t cols = 80;
    std::string term;               // empty: the guest picks ("xterm" with a tty, else "dumb")
    std::vector<std::string> argv;  // empty: the guest's login shell
};
constexpr std::uint16_t kMaxTerminalSide = 10000;
constexpr std::size_t kMaxTermName = 64;

// The START payload (JSON) for `req`.
std::string encode_start(const StartRequest& req);
// Parses a START payload strictly: a JSON object whose known keys have the documented
// types ("tty" bool, "rows"/"cols" integers in 1..10000, "term" a short name without
// '=' or control characters, "argv" an array of strings without NUL); unknown keys are
// ignored. Throws cordon::Error saying which key is wrong rather than guessing.
StartRequest parse_start(std::string_view payload);

// The EXIT message: how the shell ended, as ssh reports it (128+N when signal N killed it).
struct ExitReport {
    int exit_code = 0;  // 0..255
    int signal = 0;     // 0: it exited by itself
};
std::string encode_exit(const ExitReport& report);
// Throws cordon::Error unless the payload is an object with "exit_code" in 0..255 and an
// optional "signal" in 0..127 (a guest that says otherwise is broken or hostile).
ExitReport parse_exit(std::string_view payload);

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

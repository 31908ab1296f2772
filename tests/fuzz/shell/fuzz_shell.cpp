// libFuzzer target: the shell service's framing (both directions) and its START and
// EXIT payloads, as the guest reads the host's and the host reads the guest's.
// Invariants: no crash; bad input only ever as cordon::Error; every decoded message
// re-encodes to exactly the bytes it came from; an accepted START or EXIT survives
// encode/parse unchanged and is within the documented ranges.
#include <cstdint>
#include <string>

#include "cordon/error.hpp"
#include "cordon/shell/protocol.hpp"

using namespace cordon::shell;

namespace {

void check_start(const std::string& payload) {
    StartRequest r;
    try {
        r = parse_start(payload);
    } catch (const cordon::Error&) {
        return;
    }
    if (r.rows < 1 || r.rows > kMaxTerminalSide || r.cols < 1 || r.cols > kMaxTerminalSide)
        __builtin_trap();
    if (r.term.size() > kMaxTermName || r.term.find_first_of("=\n\r") != std::string::npos)
        __builtin_trap();
    for (const auto& a : r.argv)
        if (a.find('\0') != std::string::npos)
            __builtin_trap();
    const StartRequest back = parse_start(encode_start(r));  // must not throw
    if (back.tty != r.tty || back.rows != r.rows || back.cols != r.cols || back.term != r.term ||
        back.argv != r.argv)
        __builtin_trap();
}

void check_exit(const std::string& payload) {
    ExitReport r;
    try {
        r = parse_exit(payload);
    } catch (const cordon::Error&) {
        return;
    }
    if (r.exit_code < 0 || r.exit_code > 255 || r.signal < 0 || r.signal > 127)
        __builtin_trap();
    const ExitReport back = parse_exit(encode_exit(r));
    if (back.exit_code != r.exit_code || back.signal != r.signal)
        __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    const std::size_t chunk = 1 + data[0] % 97;
    const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

    // The payload parsers on the raw input (most START/EXIT mutations land here).
    check_start(std::string(in));
    check_exit(std::string(in));

    Decoder d;
    std::string consumed;  // what the decoded messages re-encode to
    for (std::size_t off = 0; off < in.size(); off += chunk) {
        d.feed(in.substr(off, chunk));
        while (auto m = d.next()) {
            if (!known_type(static_cast<std::uint8_t>(m->type)) || m->payload.size() > kMaxPayload)
                __builtin_trap();
            consumed += encode(m->type, m->payload);
            if (m->type == MsgType::start)
                check_start(m->payload);
            else if (m->type == MsgType::exit)
                check_exit(m->payload);
            else if (m->type == MsgType::resize) {
                std::uint16_t rows = 0, cols = 0;
                if (decode_resize(m->payload, rows, cols) != (m->payload.size() == 4))
                    __builtin_trap();
            }
        }
    }
    // The messages decoded are a prefix of the input, byte for byte.
    if (in.substr(0, consumed.size()) != consumed)
        __builtin_trap();
    if (d.error().empty() && consumed.size() + d.buffered() != in.size())
        __builtin_trap();
    return 0;
}

// libFuzzer target: the RPC line splitter and message decoder.
// Invariants: never crash or throw; lines never exceed the limit; a decoded request
// re-encodes to a line that decodes to the same method and id.
#include <cstdint>
#include <string>

#include "cordon/rpc/codec.hpp"

using namespace cordon::rpc;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    const std::size_t chunk = 1 + data[0] % 64;
    const std::size_t max_line = (data[0] & 0x80) ? 64 : 4096;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

    LineDecoder d(max_line);
    std::string line;
    for (std::size_t off = 0; off < in.size(); off += chunk) {
        d.feed(in.substr(off, chunk));
        for (;;) {
            auto st = d.next(line);
            if (st != LineDecoder::Status::line)
                break;
            if (line.size() > max_line)
                __builtin_trap();
            Message m;
            RemoteError err;
            std::optional<std::uint64_t> id;
            if (!decode_message(line, m, err, id)) {
                if (err.code.empty() || err.message.empty())
                    __builtin_trap();
                (void)encode_error(id, err);
                continue;
            }
            if (m.kind == Message::Kind::request) {
                auto re = encode_request(*m.id, m.method, m.params);
                Message back;
                if (!decode_message(std::string_view(re).substr(0, re.size() - 1), back, err, id))
                    __builtin_trap();
                if (back.method != m.method || back.id != m.id)
                    __builtin_trap();
            } else if (m.kind == Message::Kind::response && m.error) {
                (void)encode_error(m.id, *m.error);
            } else if (m.kind == Message::Kind::response) {
                (void)encode_result(m.id, m.result);
            } else {
                (void)encode_notification(m.method, m.params);
            }
        }
    }
    // The whole input as one line too.
    Message m;
    RemoteError err;
    std::optional<std::uint64_t> id;
    (void)decode_message(in, m, err, id);
    return 0;
}

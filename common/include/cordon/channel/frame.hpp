#pragma once
// Frame codec of the host<->guest channel: pure functions, no I/O, so it can be unit
// tested and fuzzed without sockets. The wire format is specified in docs/PROTOCOL.md.
//
// Every frame is a fixed 12-byte header (all integers big-endian) and a payload:
//   type:u8 | flags:u8 | reserved:u16 (0) | stream:u32 | length:u32 | payload[length]
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cordon/channel/errors.hpp"

namespace cordon::channel {

// The protocol version this build speaks (the handshake negotiates within [min, max]).
inline constexpr std::uint16_t kProtocolVersion = 1;

inline constexpr std::size_t kHeaderSize = 12;
// First bytes of every HELLO and WELCOME payload; the resync scanner looks for them.
inline constexpr std::array<std::uint8_t, 8> kMagic = {0x89, 'C', 'O', 'R', 'D', 'O', 'N', 0x0a};

// Hard limits of the protocol (options may only lower the negotiable ones).
inline constexpr std::uint32_t kMaxFramePayloadLimit = 1u << 20;  // 1 MiB
inline constexpr std::uint32_t kMinFramePayload = 1024;
inline constexpr std::size_t kMaxServiceName = 64;
inline constexpr std::size_t kMaxAgentVersion = 64;
inline constexpr std::size_t kMaxReasonText = 256;
inline constexpr std::size_t kMaxHandshakePayload = 512;
inline constexpr std::uint32_t kMaxWindow = 0x7fffffffu;

enum class FrameType : std::uint8_t {
    hello = 1,    // host -> guest, stream 0: versions, nonce, limits, agent version
    welcome = 2,  // guest -> host, stream 0: chosen version (0 = none), echoed nonce, limits
    open = 3,     // opener -> peer: open stream `stream` for the service named in the payload
    accept = 4,   // peer -> opener: the open succeeded (empty payload)
    data = 5,     // stream bytes; flag fin = sender half-closed after these bytes
    window = 6,   // u32 window increment for `stream`
    reset = 7,    // abort `stream` both ways: u32 ResetCode + reason text
    ping = 8,     // stream 0, u64 opaque; flag ack = reply
    go_away = 9,  // stream 0: u32 GoAwayCode + reason text; the session ends
};

namespace flag {
inline constexpr std::uint8_t fin = 0x01;  // data
inline constexpr std::uint8_t ack = 0x01;  // ping
}  // namespace flag

struct FrameHeader {
    FrameType type = FrameType::data;
    std::uint8_t flags = 0;
    std::uint32_t stream = 0;
    std::uint32_t length = 0;
};

const char* to_string(FrameType type) noexcept;

// Writes the 12-byte header. Does not validate (the decoder does).
void encode_header(const FrameHeader& header, std::uint8_t* out) noexcept;
// Header + payload in one buffer.
std::vector<std::uint8_t> encode_frame(const FrameHeader& header,
                                       std::span<const std::uint8_t> payload = {});

// Payload of HELLO and WELCOME. The layout of these two frames is frozen for every
// protocol version, so that peers of any version can negotiate:
//   magic[8] | min:u16 | max:u16 | chosen:u16 | reserved:u16 | nonce:u64 |
//   max_frame_payload:u32 | initial_window:u32 | max_streams:u32 |
//   agent_len:u8 | agent[agent_len] | (future extensions, ignored)
struct Handshake {
    std::uint16_t min_version = kProtocolVersion;
    std::uint16_t max_version = kProtocolVersion;
    std::uint16_t chosen_version = 0;  // WELCOME only; 0 = no common version
    std::uint64_t nonce = 0;           // chosen by the host, echoed by the guest
    std::uint32_t max_frame_payload = 0;
    std::uint32_t initial_window = 0;
    std::uint32_t max_streams = 0;
    std::string agent_version;
};
inline constexpr std::size_t kHandshakeFixedSize = 8 + 2 + 2 + 2 + 2 + 8 + 4 + 4 + 4 + 1;

std::vector<std::uint8_t> encode_handshake(const Handshake& hs);
// Returns nullopt and sets `error` on a malformed payload.
std::optional<Handshake> decode_handshake(std::span<const std::uint8_t> payload,
                                          std::string& error);

// RESET and GOAWAY payloads: code:u32 | reason text (UTF-8, at most kMaxReasonText bytes;
// encode truncates longer text).
std::vector<std::uint8_t> encode_code_reason(std::uint32_t code, std::string_view reason);
bool decode_code_reason(std::span<const std::uint8_t> payload, std::uint32_t& code,
                        std::string& reason, std::string& error);

std::vector<std::uint8_t> encode_u32(std::uint32_t v);
std::vector<std::uint8_t> encode_u64(std::uint64_t v);
std::uint32_t load_u32(const std::uint8_t* p) noexcept;
std::uint64_t load_u64(const std::uint8_t* p) noexcept;

// A service name is 1..kMaxServiceName bytes of [A-Za-z0-9._/:-].
bool valid_service_name(std::string_view name) noexcept;

// A decoded frame; `payload` points into the decoder's buffer and stays valid until the
// next call to feed(), next(), skip_to_handshake() or clear().
struct Frame {
    FrameHeader header;
    std::span<const std::uint8_t> payload;
};

// Incremental decoder: feed it bytes as they arrive, then call next() until it stops
// returning Status::frame. Each frame is checked: known type, zero reserved bits, known
// flags, stream id 0 for session frames and non-zero for stream frames, payload length
// within the limit and exact for fixed-size frames. After Status::error the decoder
// stays in error until clear() (a framing error means the byte stream cannot be trusted).
class FrameDecoder {
  public:
    enum class Status { frame, need_more, error };

    explicit FrameDecoder(std::uint32_t max_payload = kMaxFramePayloadLimit);

    void feed(std::span<const std::uint8_t> bytes);
    // Zero-copy feeding: read up to n bytes into prepare(n), then commit() how many arrived.
    std::span<std::uint8_t> prepare(std::size_t n);
    void commit(std::size_t n) noexcept;
    Status next(Frame& out);
    // The precise reason of the last Status::error, e.g. "frame type 0x2a is unknown".
    const std::string& error() const noexcept { return error_; }

    // Resync: discard bytes until the buffer starts with the header of a `type`
    // (hello or welcome) frame followed by the magic, or keep only a tail that might
    // be the start of one. Clears an error state. Returns how many bytes were dropped.
    std::size_t skip_to_handshake(FrameType type);

    // Drops up to n unconsumed bytes (resync past a bad candidate). Clears an error state.
    std::size_t discard(std::size_t n) noexcept;

    void set_max_payload(std::uint32_t max_payload) noexcept { max_payload_ = max_payload; }
    std::uint32_t max_payload() const noexcept { return max_payload_; }
    std::size_t buffered() const noexcept { return end_ - pos_; }
    void clear() noexcept;

  private:
    std::vector<std::uint8_t> buf_;
    std::size_t pos_ = 0;  // unconsumed bytes are buf_[pos_, end_)
    std::size_t end_ = 0;
    std::uint32_t max_payload_;
    bool failed_ = false;
    std::string error_;
};

// Decodes and checks one 12-byte header on its own (what next() does before waiting for
// the payload). Returns false and sets `error` when it is invalid.
bool decode_header(const std::uint8_t* raw, std::uint32_t max_payload, FrameHeader& out,
                   std::string& error);

}  // namespace cordon::channel

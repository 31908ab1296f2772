#pragma once
// Error codes of the host<->guest channel (cordon::channel). Asio-style: the session
// and its streams report boost::system::error_code values from this category; the
// session also keeps a human-readable reason (Session::failure_reason(), Stream::reset_reason()).
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <type_traits>

namespace cordon::channel {

enum class errc {
    version_mismatch = 1,    // no common protocol version (both sides log who must update)
    handshake_timeout,       // host: no WELCOME within SessionOptions::handshake_timeout
    session_closed,          // the session ended (local close, transport EOF/error, peer reconnect)
    peer_went_away,          // the peer sent GOAWAY
    protocol_error,          // framing error or protocol violation: session reset
    keepalive_timeout,       // no answer to our PING within keepalive_timeout
    peer_not_reading,        // our transport queue overflowed: the peer stopped reading
    stream_reset,            // the peer reset the stream (see Stream::reset_reason())
    stream_refused,          // the peer refused our OPEN (unknown service, limits)
    too_many_streams,        // local limit: max_streams reached
    too_many_pending_opens,  // local limit: max_pending_opens reached
    invalid_service_name,    // empty, too long or not [A-Za-z0-9._/:-]
    stream_closed,           // write after shutdown_send(), or operation on a finished stream
    stream_ids_exhausted,    // 2^31 streams opened in one session: reconnect
    operation_in_progress,   // a second concurrent async_read_some/async_write on one stream
    not_established,         // open() before the handshake completed (or after it failed)
};

const boost::system::error_category& category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), category()};
}

// Reason codes carried by RESET frames (u32 on the wire; see docs/PROTOCOL.md).
enum class ResetCode : std::uint32_t {
    cancelled = 0,  // the application reset the stream
    refused = 1,    // no such service / the service refused
    too_many_streams = 2,
    too_many_pending_opens = 3,
    invalid_service_name = 4,
    protocol_error = 5,  // window overrun, data before accept, unknown stream id...
    internal = 6,
};

// Reason codes carried by GOAWAY frames.
enum class GoAwayCode : std::uint32_t {
    normal = 0,  // orderly shutdown
    protocol_error = 1,
    version_mismatch = 2,
    keepalive_timeout = 3,
    peer_not_reading = 4,
    internal = 5,
};

}  // namespace cordon::channel

namespace boost::system {
template <>
struct is_error_code_enum<cordon::channel::errc> : std::true_type {};
}  // namespace boost::system

#pragma once
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positive inside Asio
// clang-format on

// Helpers shared by the channel tests: socketpairs, running an io_context until a
// condition holds, a raw peer that speaks frames by hand (for malformed input).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstring>
#include <functional>

#include "cordon/channel/frame.hpp"
#include "cordon/channel/session.hpp"
#include "cordon/unique_fd.hpp"

namespace cordon::channel::test {

inline std::pair<UniqueFd, UniqueFd> socket_pair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        std::abort();
    return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

// Runs handlers until pred() holds; false on timeout.
template <typename Pred>
bool run_until(boost::asio::io_context& io, Pred pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        if (io.stopped())
            io.restart();
        io.run_one_for(std::chrono::milliseconds(20));
    }
    return true;
}

// Runs handlers for a while (to let things that must NOT happen have a chance).
inline void run_for(boost::asio::io_context& io, std::chrono::milliseconds d) {
    const auto deadline = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < deadline) {
        if (io.stopped())
            io.restart();
        io.run_one_for(std::chrono::milliseconds(5));
    }
}

inline SessionOptions host_options() {
    SessionOptions o;
    o.role = Role::host;
    o.agent_version = "cordon-hostagent test";
    o.hello_interval = std::chrono::milliseconds(50);
    o.reconnect_poll = std::chrono::milliseconds(20);
    return o;
}

inline SessionOptions guest_options() {
    SessionOptions o = host_options();
    o.role = Role::guest;
    o.agent_version = "cordon-guest-agent test";
    return o;
}

// A peer that writes and reads frames by hand over a raw fd (non-blocking reads).
struct RawPeer {
    UniqueFd fd;
    FrameDecoder decoder{kMaxFramePayloadLimit};
    struct Owned {
        FrameHeader header;
        std::vector<std::uint8_t> payload;
    };
    std::vector<Owned> frames;
    boost::asio::io_context* io = nullptr;  // run while a write would block

    explicit RawPeer(UniqueFd f) : fd(std::move(f)) {
        ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
    }

    void write_bytes(const std::vector<std::uint8_t>& bytes) {
        std::size_t off = 0;
        while (off < bytes.size()) {
            ssize_t n = ::send(fd.get(), bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += static_cast<std::size_t>(n);
            } else if (n < 0 && errno == EAGAIN) {
                if (io) {
                    if (io->stopped())
                        io->restart();
                    io->run_one_for(std::chrono::milliseconds(5));
                    pump();
                } else {
                    pollfd p{fd.get(), POLLOUT, 0};
                    ::poll(&p, 1, 100);
                }
            } else {
                return;
            }
        }
    }
    void send(FrameType type, std::uint8_t flags, std::uint32_t stream,
              std::span<const std::uint8_t> payload = {}) {
        write_bytes(encode_frame({type, flags, stream, 0}, payload));
    }
    void send_hello(std::uint64_t nonce, std::uint16_t min_v = 1, std::uint16_t max_v = 1) {
        Handshake hs;
        hs.min_version = min_v;
        hs.max_version = max_v;
        hs.nonce = nonce;
        hs.max_frame_payload = 65536;
        hs.initial_window = 256 * 1024;
        hs.max_streams = 1024;
        hs.agent_version = "raw test host";
        send(FrameType::hello, 0, 0, encode_handshake(hs));
    }
    void send_open(std::uint32_t id, const std::string& service) {
        send(FrameType::open, 0, id,
             std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(service.data()),
                                           service.size()));
    }
    // Reads whatever is available and decodes it into `frames`.
    void pump() {
        std::uint8_t buf[65536];
        for (;;) {
            ssize_t n = ::read(fd.get(), buf, sizeof buf);
            if (n <= 0)
                break;
            decoder.feed(std::span<const std::uint8_t>(buf, static_cast<std::size_t>(n)));
        }
        Frame f;
        while (decoder.next(f) == FrameDecoder::Status::frame)
            frames.push_back({f.header, {f.payload.begin(), f.payload.end()}});
    }
    std::size_t count(FrameType t) const {
        std::size_t n = 0;
        for (auto& f : frames) n += f.header.type == t;
        return n;
    }
    const Owned* find(FrameType t, std::uint32_t stream = 0xffffffffu) const {
        for (auto& f : frames)
            if (f.header.type == t && (stream == 0xffffffffu || f.header.stream == stream))
                return &f;
        return nullptr;
    }
};

// xorshift64*: fast deterministic bytes for bulk transfers.
struct ByteGen {
    std::uint64_t s;
    explicit ByteGen(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ULL + 1) {}
    void fill(std::uint8_t* p, std::size_t n) {
        std::size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            const std::uint64_t v = s * 2685821657736338717ULL;
            std::memcpy(p + i, &v, 8);
        }
        for (; i < n; ++i) {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            p[i] = static_cast<std::uint8_t>(s * 2685821657736338717ULL);
        }
    }
};

}  // namespace cordon::channel::test

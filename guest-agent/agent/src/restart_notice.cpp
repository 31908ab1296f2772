#include "restart_notice.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "cordon/channel/errors.hpp"
#include "cordon/channel/frame.hpp"
#include "cordon/error.hpp"
#include "cordon/log.hpp"

namespace cordon::agent {

bool send_restart_notice(int port_fd) noexcept {
    try {
        const auto payload = channel::encode_code_reason(
            static_cast<std::uint32_t>(channel::GoAwayCode::normal), "the guest agent (re)started");
        channel::FrameHeader h;
        h.type = channel::FrameType::go_away;
        h.length = static_cast<std::uint32_t>(payload.size());
        const auto frame = channel::encode_frame(h, payload);
        const int flags = ::fcntl(port_fd, F_GETFL);
        if (flags < 0 || ::fcntl(port_fd, F_SETFL, flags | O_NONBLOCK) != 0)
            return false;
        ssize_t n;
        do {
            n = ::write(port_fd, frame.data(), frame.size());
        } while (n < 0 && errno == EINTR);
        const int err = errno;
        ::fcntl(port_fd, F_SETFL, flags);
        if (n == static_cast<ssize_t>(frame.size())) {
            log::info("agent", "told the host that a new guest agent serves the channel");
            return true;
        }
        log::debug("agent", "no restart notice sent ({})",
                   n < 0 ? errno_string(err) : std::string("short write"));
    } catch (const std::exception& e) {
        log::warn("agent", "cannot encode the restart notice: {}", e.what());
    }
    return false;
}

}  // namespace cordon::agent

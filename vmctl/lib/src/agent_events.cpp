#include "cordon/host/agent_events.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cordon/error.hpp"
#include "cordon/log.hpp"
#include "cordon/rpc/codec.hpp"

namespace cordon::host {

namespace {
constexpr const char* kAgentEventsLog = "events";
// Heartbeats come every 15 s: three missed ones mean the link is dead.
constexpr int kSilenceMs = 45'000;
}  // namespace

AgentEventWatcher::AgentEventWatcher(std::filesystem::path control_socket, EventHandler on_event,
                                     LinkHandler on_link, std::chrono::milliseconds retry)
    : socket_(std::move(control_socket)),
      on_event_(std::move(on_event)),
      on_link_(std::move(on_link)),
      retry_(retry),
      stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!stop_fd_)
        throw_errno("cannot create an eventfd", "agent events");
    thread_ = std::thread([this] { run(); });
}

AgentEventWatcher::~AgentEventWatcher() {
    stop();
}

void AgentEventWatcher::stop() {
    if (!stopping_.exchange(true)) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(stop_fd_.get(), &one, sizeof one);
    }
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
        thread_.join();
}

void AgentEventWatcher::run() {
    while (!stopping_) {
        bool unsupported = false;
        const std::string why = watch_once(unsupported);
        if (stopping_)
            break;
        if (linked_.exchange(false) || !why.empty()) {
            if (on_link_)
                on_link_(false, why);
        }
        pollfd p{stop_fd_.get(), POLLIN, 0};
        ::poll(&p, 1, unsupported ? 30'000 : static_cast<int>(retry_.count()));
    }
}

std::string AgentEventWatcher::watch_once(bool& unsupported) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = socket_.string();
    if (path.size() >= sizeof addr.sun_path)
        return "socket path too long: " + path;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        return "cannot reach the host agent (" + path + "): " + errno_string(errno);
    const std::string req = rpc::encode_request(1, "events.watch", rpc::json::object());
    if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
        return "cannot send events.watch: " + errno_string(errno);

    rpc::LineDecoder decoder;
    std::string buf(64 * 1024, '\0'), line;
    for (;;) {
        pollfd p[2] = {{fd.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
        const int r = ::poll(p, 2, kSilenceMs);
        if (stopping_)
            return "";
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return "no event or heartbeat from the guest agent for 45 s";
        const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n == 0)
            return "the connection to the guest agent closed (VM stopped or restarting?)";
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return "reading events: " + errno_string(errno);
        }
        decoder.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        for (;;) {
            const auto st = decoder.next(line);
            if (st == rpc::LineDecoder::Status::need_more)
                break;
            if (st == rpc::LineDecoder::Status::too_long)
                return "an event line is too long";
            rpc::Message m;
            rpc::RemoteError err;
            std::optional<std::uint64_t> id;
            if (!rpc::decode_message(line, m, err, id)) {
                log::debug(kAgentEventsLog, "ignoring a malformed line: {}", err.message);
                continue;
            }
            if (m.kind == rpc::Message::Kind::response) {
                if (m.error) {
                    unsupported = m.error->code == rpc::code::unknown_method;
                    return unsupported ? "the guest agent has no events.watch (an older image): "
                                         "state is polled instead"
                                       : "events.watch refused: " + m.error->message;
                }
                return "the guest agent ended the watch";
            }
            if (m.kind != rpc::Message::Kind::notification || m.method != "event")
                continue;
            AgentEvent ev;
            ev.type = m.params.is_object() ? m.params.value("type", "") : "";
            ev.data = std::move(m.params);
            if (ev.type == "snapshot" && !linked_.exchange(true) && on_link_)
                on_link_(true, "");
            ++events_;
            if (on_event_)
                on_event_(ev);
        }
    }
}

}  // namespace cordon::host

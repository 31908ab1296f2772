#include "cordon/host/shell_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

#include "cordon/error.hpp"
#include "cordon/host/host_error.hpp"
#include "cordon/shell/protocol.hpp"
#include "cordon/unique_fd.hpp"

namespace cordon::host {

using shell::MsgType;

namespace {

constexpr std::size_t kMaxQueued = 256 * 1024;  // stop reading stdin beyond this

UniqueFd connect_socket(const std::filesystem::path& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string p = path.string();
    if (p.size() >= sizeof addr.sun_path)
        throw HostError(ErrorKind::usage, "socket path too long", p);
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw HostError(ErrorKind::agent_unreachable,
                        "cannot reach the host agent's shell socket: " + errno_string(errno), p,
                        "start the VM with `vmctl start` (a host agent older than the shell "
                        "service has no shell.sock: `vmctl restart`)");
    }
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
    return fd;
}

// Writes all of `data` to a (blocking or not) fd, waiting with poll when it is full.
void write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, -1);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return;  // the reader went away (EPIPE): drop the output, as a closed pipe does
        }
    }
}

}  // namespace

int run_shell(const std::filesystem::path& shell_socket, const ShellRequest& req) {
    UniqueFd sock = connect_socket(shell_socket);
    std::string out;  // bytes queued for the socket
    shell::StartRequest start;
    start.tty = req.tty;
    start.rows = req.rows;
    start.cols = req.cols;
    start.term = req.term;
    start.argv = req.argv;
    out += shell::encode(MsgType::start, shell::encode_start(start));

    shell::Decoder decoder;
    bool in_open = req.in_fd >= 0;
    bool eof_sent = !in_open;
    if (!in_open)
        out += shell::encode(MsgType::stdin_eof);
    std::string buf(32 * 1024, '\0');
    for (;;) {
        pollfd fds[3];
        nfds_t n = 0;
        fds[n++] = {sock.get(), static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT)), 0};
        const int in_slot = in_open && out.size() < kMaxQueued ? static_cast<int>(n) : -1;
        if (in_slot >= 0)
            fds[n++] = {req.in_fd, POLLIN, 0};
        const int wake_slot = req.wake_fd >= 0 ? static_cast<int>(n) : -1;
        if (wake_slot >= 0)
            fds[n++] = {req.wake_fd, POLLIN, 0};
        if (::poll(fds, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            throw HostError(ErrorKind::generic, "poll failed: " + errno_string(errno));
        }
        if (wake_slot >= 0 && (fds[wake_slot].revents & POLLIN)) {
            char drain[64];
            while (::read(req.wake_fd, drain, sizeof drain) > 0) {
            }
            if (req.on_wake) {
                const ShellRequest::Wake w = req.on_wake();
                if (w.stop != 0)
                    return w.stop;
                if (w.rows > 0 && w.cols > 0 && req.tty)
                    out += shell::encode_resize(w.rows, w.cols);
            }
        }
        if (in_slot >= 0 && (fds[in_slot].revents & (POLLIN | POLLHUP | POLLERR))) {
            const ssize_t got = ::read(req.in_fd, buf.data(), buf.size());
            if (got > 0) {
                out += shell::encode(MsgType::stdin_data,
                                     std::string_view(buf.data(), static_cast<std::size_t>(got)));
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                in_open = false;
                if (!eof_sent) {
                    out += shell::encode(MsgType::stdin_eof);
                    eof_sent = true;
                }
            }
        }
        if (!out.empty() && (fds[0].revents & POLLOUT)) {
            const ssize_t w = ::send(sock.get(), out.data(), out.size(), MSG_NOSIGNAL);
            if (w > 0)
                out.erase(0, static_cast<std::size_t>(w));
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                throw HostError(ErrorKind::agent_unreachable,
                                "the shell connection failed: " + errno_string(errno),
                                shell_socket.string(), "check `vmctl status`");
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            const ssize_t got = ::read(sock.get(), buf.data(), buf.size());
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                throw HostError(ErrorKind::agent_unreachable,
                                "the shell connection closed before the shell ended",
                                shell_socket.string(),
                                "the guest agent may be too old for `vmctl shell` (rebuild the "
                                "image) or the VM stopped: see `vmctl status` and hostagent.log");
            }
            if (got > 0)
                decoder.feed(std::string_view(buf.data(), static_cast<std::size_t>(got)));
            while (auto m = decoder.next()) {
                switch (m->type) {
                    case MsgType::stdout_data:
                        write_all(req.out_fd, m->payload);
                        break;
                    case MsgType::stderr_data:
                        write_all(req.err_fd, m->payload);
                        break;
                    case MsgType::exit: {
                        try {
                            return shell::parse_exit(m->payload).exit_code;
                        } catch (const Error& e) {
                            throw HostError(ErrorKind::rpc, e.failure(), shell_socket.string());
                        }
                    }
                    case MsgType::error:
                        throw HostError(ErrorKind::rpc,
                                        "the guest agent cannot run the shell: " + m->payload,
                                        shell_socket.string());
                    default:
                        throw HostError(ErrorKind::rpc,
                                        "the guest sent an unexpected shell message",
                                        shell_socket.string());
                }
            }
            if (!decoder.error().empty())
                throw HostError(ErrorKind::rpc,
                                "bad shell message from the guest: " + decoder.error(),
                                shell_socket.string());
        }
    }
}

}  // namespace cordon::host

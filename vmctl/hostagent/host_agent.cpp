// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include "host_agent.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "cordon/atomic_file.hpp"
#include "cordon/error.hpp"
#include "cordon/log.hpp"
#include "cordon/unique_fd.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using boost::system::error_code;

namespace cordon::hostagent {
namespace {

constexpr const char* kHostAgentLog = "hostagent";

bool fill_addr(const fs::path& path, sockaddr_un& addr) {
    addr = {};
    addr.sun_family = AF_UNIX;
    const std::string p = path.string();
    if (p.size() >= sizeof addr.sun_path)
        return false;
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    return true;
}

// Connects a unix stream socket now (unix connects do not block); returns -1 with errno.
int connect_unix(const fs::path& path) {
    sockaddr_un addr{};
    if (!fill_addr(path, addr)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd)
        return -1;
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        return -1;
    return fd.release();
}

pid_t live_pid_in(const fs::path& pid_file) {
    std::ifstream in(pid_file);
    long long pid = 0;
    if (!(in >> pid) || pid <= 0 || pid == ::getpid())
        return 0;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
        return 0;
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(comm, name);
    return name == "cordon-hostagen" || name == "cordon-hostagent" ? static_cast<pid_t>(pid) : 0;
}

}  // namespace

HostAgent::HostAgent(asio::io_context& io, Options options)
    : io_(io),
      opt_(std::move(options)),
      reconnect_timer_(io),
      pending_timer_(io),
      backoff_(opt_.min_backoff),
      clock_(io, [this] { return session_; }, opt_.clock_sync_interval) {}

HostAgent::~HostAgent() {
    stop("host agent destroyed");
}

std::unique_ptr<HostAgent::Acceptor> HostAgent::listen(const fs::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            throw Error("a file that is not a socket is in the way", path.string(), "remove it");
        }
        int fd = connect_unix(path);
        if (fd >= 0) {
            ::close(fd);
            throw Error("another process serves this socket", path.string(),
                        "stop the other host agent (vmctl stop) or remove the socket");
        }
        // Nobody serves it: a leftover of a process that died.
        log::info(kHostAgentLog, "removing stale socket {}", path.string());
        ::unlink(path.c_str());
    }
    // The socket is bound and listening under a temporary name, then renamed into place:
    // a client that sees the file never meets a socket that refuses connections.
    const fs::path bound = path.string() + "~";
    sockaddr_un addr{};
    if (!fill_addr(path, addr) || !fill_addr(bound, addr))
        throw Error("socket path too long", path.string(), "use a shorter runtime folder");
    ::unlink(bound.c_str());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd)
        throw_errno("cannot create a socket", path.string());
    // Bind under umask 077 so the socket is never, even briefly, usable by others.
    const mode_t old = ::umask(077);
    const int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    const int err = errno;
    ::umask(old);
    if (rc != 0) {
        errno = err;
        throw_errno("cannot bind", bound.string());
    }
    ::chmod(bound.c_str(), 0600);
    if (::listen(fd.get(), 128) != 0 || ::rename(bound.c_str(), path.c_str()) != 0) {
        const int failed = errno;
        ::unlink(bound.c_str());
        errno = failed;
        throw_errno("cannot listen", path.string());
    }
    auto acceptor = std::make_unique<Acceptor>(io_);
    acceptor->assign(asio::local::stream_protocol(), fd.release());
    return acceptor;
}

void HostAgent::start() {
    if (pid_t other = live_pid_in(opt_.pid_file)) {
        throw Error("another host agent runs for this VM (pid " + std::to_string(other) + ")",
                    opt_.pid_file.string(), "stop it first (vmctl stop)");
    }
    write_file_atomically(opt_.pid_file.string(), std::to_string(::getpid()) + "\n", 0644);
    pid_written_ = true;
    docker_ = listen(opt_.docker_socket);
    control_ = listen(opt_.control_socket);
    log::info(kHostAgentLog, "serving {} (docker) and {} (rpc) for VM {}", opt_.docker_socket.string(),
              opt_.control_socket.string(), opt_.vm_name);
    accept(*docker_, "docker");
    accept(*control_, "rpc");
    if (opt_.forward_ports) {
        ForwardOptions fo;
        fo.state_file = opt_.ports_file.empty() ? opt_.control_socket.parent_path() / "ports.json"
                                                : opt_.ports_file;
        ports_ = std::make_unique<PortForwarder>(io_, fo);
    }
    if (!opt_.shell_socket.empty()) {
        shell_ = listen(opt_.shell_socket);
        accept(*shell_, "shell");
    }
    connect_channel();
    clock_.start();
}

void HostAgent::stop(const std::string& reason) {
    if (stopped_)
        return;
    stopped_ = true;
    log::info(kHostAgentLog, "stopping: {}", reason);
    reconnect_timer_.cancel();
    pending_timer_.cancel();
    clock_.stop();
    error_code ec;
    for (auto* a : {docker_.get(), control_.get(), shell_.get()}) {
        if (a)
            a->close(ec);
    }
    if (docker_)
        ::unlink(opt_.docker_socket.c_str());
    if (control_)
        ::unlink(opt_.control_socket.c_str());
    if (shell_)
        ::unlink(opt_.shell_socket.c_str());
    pending_.clear();
    if (ports_)
        ports_->stop();
    waiting_.clear();
    if (session_) {
        auto s = std::move(session_);
        s->close(reason);
    }
    if (pid_written_ && live_pid_in(opt_.pid_file) == 0)
        ::unlink(opt_.pid_file.c_str());
}

void HostAgent::accept(Acceptor& acceptor, std::string service) {
    acceptor.async_accept([this, &acceptor, service](error_code ec, Socket socket) {
        if (stopped_ || ec == asio::error::operation_aborted)
            return;
        if (ec) {
            log::warn(kHostAgentLog, "accept on {} socket: {}", service, ec.message());
        } else {
            route(std::move(socket), service);
        }
        accept(acceptor, service);
    });
}

void HostAgent::route(Socket socket, const std::string& service) {
    if (session_ && session_->established()) {
        open_stream(std::move(socket), service);
        return;
    }
    if (pending_.size() >= opt_.max_pending) {
        log::warn(
            kHostAgentLog,
            "the channel to the guest is down and {} connections wait: refusing a {} connection",
            pending_.size(), service);
        return;  // closing the socket tells the client
    }
    log::debug(kHostAgentLog, "the channel is not up yet: a {} connection waits", service);
    pending_.push_back({std::move(socket), service, std::chrono::steady_clock::now()});
    if (pending_.size() == 1)
        expire_pending();
}

void HostAgent::expire_pending() {
    pending_timer_.expires_after(std::chrono::seconds(1));
    pending_timer_.async_wait([this](error_code ec) {
        if (ec || stopped_)
            return;
        const auto now = std::chrono::steady_clock::now();
        while (!pending_.empty() && now - pending_.front().since > opt_.pending_timeout) {
            log::warn(
                kHostAgentLog, "a {} connection waited {} s for the channel to the guest: closing it",
                pending_.front().service,
                std::chrono::duration_cast<std::chrono::seconds>(opt_.pending_timeout).count());
            pending_.pop_front();
        }
        if (!pending_.empty())
            expire_pending();
    });
}

void HostAgent::open_stream(Socket socket, const std::string& service) {
    const auto now = std::chrono::steady_clock::now();
    if (!waiting_.empty() || !has_capacity()) {
        waiting_.push_back({std::move(socket), service, now});
        return;
    }
    start_open(std::move(socket), service, now);
}

void HostAgent::start_open(Socket socket, const std::string& service,
                           std::chrono::steady_clock::time_point since) {
    ++opening_;
    auto sock = std::make_shared<Socket>(std::move(socket));
    const auto now = since;
    std::weak_ptr<int> alive = alive_;
    std::weak_ptr<channel::Session> from = session_;
    session_->open(service, [this, alive, from, sock, service, now](
                                error_code ec, std::shared_ptr<channel::Stream> stream) {
        if (alive.expired())
            return;
        const bool current = !from.expired() && from.lock() == session_;
        if (current && opening_ > 0)
            --opening_;
        if (current && (ec == channel::errc::too_many_streams ||
                        ec == channel::errc::too_many_pending_opens)) {
            // A local limit: wait for capacity (an open completing, a stream ending).
            waiting_.push_front({std::move(*sock), service, now});
            if (opening_ == 0 && ec == channel::errc::too_many_pending_opens)
                open_next();
            return;
        }
        if (ec) {
            log::warn(kHostAgentLog, "the guest refused a {} stream: {}{}", service, ec.message(),
                      stream && !stream->reset_reason().empty()
                          ? " (" + stream->reset_reason() + ")"
                          : "");
            open_next();
            return;  // the socket closes with sock
        }
        log::debug(kHostAgentLog, "stream {} ({}) opened", stream->id(), service);
        channel::splice(
            stream, std::move(*sock), [this, alive, id = stream->id(), service](error_code e) {
                if (e)
                    log::debug(kHostAgentLog, "stream {} ({}) ended: {}", id, service, e.message());
                if (!alive.expired())
                    open_next();  // a stream slot is free
            });
        open_next();
    });
}

bool HostAgent::has_capacity() const {
    const auto& o = session_->options();
    return opening_ < o.max_pending_opens &&
           session_->stats().open_streams < std::min(o.max_streams, session_->peer().max_streams);
}

void HostAgent::open_next() {
    if (stopped_ || !session_ || !session_->established())
        return;
    const auto now = std::chrono::steady_clock::now();
    while (!waiting_.empty() && has_capacity()) {
        Pending p = std::move(waiting_.front());
        waiting_.pop_front();
        if (now - p.since > opt_.pending_timeout) {
            log::warn(
                kHostAgentLog, "a {} connection waited {} s for a channel stream: closing it", p.service,
                std::chrono::duration_cast<std::chrono::seconds>(opt_.pending_timeout).count());
            continue;
        }
        start_open(std::move(p.socket), p.service, p.since);
    }
}

void HostAgent::connect_channel() {
    if (stopped_)
        return;
    int fd = connect_unix(opt_.channel_socket);
    if (fd < 0) {
        std::string err = errno_string(errno);
        if (err != last_connect_error_) {
            log::info(kHostAgentLog, "waiting for the channel socket {}: {}", opt_.channel_socket.string(),
                      err);
            last_connect_error_ = err;
        }
        schedule_reconnect();
        return;
    }
    last_connect_error_.clear();
    channel::SessionOptions so;
    so.role = channel::Role::host;
    so.agent_version = "cordon-hostagent 0.1.0";
    so.log_component = "hostagent.channel";
    so.trim_heap_when_idle = opt_.trim_heap_when_idle;
    so.peer_paused = opt_.vm_paused;
    try {
        session_ = channel::Session::create(io_, UniqueFd(fd), so);
    } catch (const Error& e) {
        log::error(kHostAgentLog, "cannot start a channel session: {}", e.what());
        schedule_reconnect();
        return;
    }
    auto s = session_;
    s->set_close_handler(
        [this, weak = std::weak_ptr<channel::Session>(s)](error_code, const std::string& reason) {
            auto locked = weak.lock();
            if (stopped_ || !locked || locked != session_)
                return;
            on_session_closed(reason);
        });
    s->start([this, weak = std::weak_ptr<channel::Session>(s)](error_code ec,
                                                               const channel::PeerInfo& peer) {
        auto locked = weak.lock();
        if (stopped_ || !locked || locked != session_)
            return;
        if (ec) {
            log::warn(kHostAgentLog, "channel handshake failed: {}", ec.message());
            return;  // the close handler follows
        }
        log::info(kHostAgentLog, "channel up: guest agent {} (protocol {})", peer.agent_version,
                  peer.version);
        on_session_ready();
    });
    log::info(kHostAgentLog, "connected to the channel socket; waiting for the guest agent's handshake");
}

void HostAgent::on_session_ready() {
    ++sessions_;
    backoff_ = opt_.min_backoff;
    while (!pending_.empty()) {
        Pending p = std::move(pending_.front());
        pending_.pop_front();
        open_stream(std::move(p.socket), p.service);
    }
    if (ports_)
        ports_->attach(session_);
    clock_.sync_now("the channel came up");
}

void HostAgent::on_session_closed(const std::string& reason) {
    log::info(kHostAgentLog, "channel down: {}; reconnecting", reason.empty() ? "closed" : reason);
    session_.reset();
    if (ports_)
        ports_->detach(reason.empty() ? "the channel closed" : reason);
    opening_ = 0;
    while (!waiting_.empty()) {  // they wait for the next session like new connections
        pending_.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
    }
    if (!pending_.empty())
        expire_pending();
    schedule_reconnect();
}

void HostAgent::schedule_reconnect() {
    if (stopped_)
        return;
    reconnect_timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, opt_.max_backoff);
    reconnect_timer_.async_wait([this](error_code ec) {
        if (!ec)
            connect_channel();
    });
}

}  // namespace cordon::hostagent

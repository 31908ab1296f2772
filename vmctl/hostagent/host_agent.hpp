#pragma once
// cordon-hostagent: one per VM. Owns the host end of the channel (the unix socket
// QEMU serves for the virtio-serial port) as a Session with role host, and serves
// two unix sockets that only the user can use (0600):
//   docker.sock  -> every connection becomes a channel stream of service "docker"
//   control.sock -> every connection becomes a channel stream of service "rpc"
//   shell.sock   -> every connection becomes a channel stream of service "shell"
// It reconnects to the channel socket with backoff (guest reboots, QEMU restarts),
// queues client connections that arrive while the channel is down (up to a limit
// and a deadline), writes a pid file, and removes its sockets and pid file on exit.
// It also forwards the containers' published ports (PortForwarder).
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "clock_sync.hpp"
#include "cordon/channel/session.hpp"
#include "port_forwarder.hpp"

namespace cordon::hostagent {

struct Options {
    std::string vm_name = "cordon";
    std::filesystem::path channel_socket;
    std::filesystem::path docker_socket;
    std::filesystem::path control_socket;
    std::filesystem::path shell_socket;  // empty: no shell socket
    std::filesystem::path pid_file;
    // Published ports (port_forwarder.hpp): the state file; empty = beside control_socket.
    std::filesystem::path ports_file;
    bool forward_ports = true;
    std::chrono::milliseconds min_backoff{100};
    std::chrono::milliseconds max_backoff{2000};
    std::chrono::milliseconds pending_timeout{60'000};  // a client waits this long for the channel
    std::size_t max_pending = 128;
    std::chrono::milliseconds clock_sync_interval{10'000};  // pushes the host's time (0: never)
    // malloc_trim after this long without streams opening or ending (0: never): see
    // channel::SessionOptions::trim_heap_when_idle.
    std::chrono::milliseconds trim_heap_when_idle{1000};
    // Whether the VM is paused (asked only when the guest stopped answering keepalives):
    // while it is, the channel waits instead of ending. Empty: silence ends the channel.
    std::function<bool()> vm_paused;
};

class HostAgent {
  public:
    HostAgent(boost::asio::io_context& io, Options options);
    ~HostAgent();
    HostAgent(const HostAgent&) = delete;
    HostAgent& operator=(const HostAgent&) = delete;

    // Writes the pid file, binds the sockets (removing stale ones; refusing live ones)
    // and starts connecting. Throws cordon::Error when it cannot.
    void start();
    // Closes everything and removes the sockets and the pid file. Idempotent.
    void stop(const std::string& reason);

  private:
    using Socket = boost::asio::local::stream_protocol::socket;
    using Acceptor = boost::asio::local::stream_protocol::acceptor;
    struct Pending {
        Socket socket;
        std::string service;
        std::chrono::steady_clock::time_point since;
    };

    std::unique_ptr<Acceptor> listen(const std::filesystem::path& path);
    void accept(Acceptor& acceptor, std::string service);
    void route(Socket socket, const std::string& service);
    void open_stream(Socket socket, const std::string& service);
    void connect_channel();
    void schedule_reconnect();
    void on_session_ready();
    void on_session_closed(const std::string& reason);
    void expire_pending();
    void start_open(Socket socket, const std::string& service,
                    std::chrono::steady_clock::time_point since);
    void open_next();
    bool has_capacity() const;

    boost::asio::io_context& io_;
    Options opt_;
    std::unique_ptr<Acceptor> docker_;
    std::unique_ptr<Acceptor> control_;
    std::unique_ptr<Acceptor> shell_;
    std::shared_ptr<channel::Session> session_;
    boost::asio::steady_timer reconnect_timer_;
    boost::asio::steady_timer pending_timer_;
    std::chrono::milliseconds backoff_;
    std::deque<Pending> pending_;
    // Connections waiting for channel capacity (opens awaiting the guest's ACCEPT are
    // capped by the channel's max_pending_opens, streams by max_streams): served in order
    // as opens complete and streams end, instead of being refused (issue 9, 200 clients).
    std::deque<Pending> waiting_;
    std::size_t opening_ = 0;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
    bool stopped_ = false;
    bool pid_written_ = false;
    std::string last_connect_error_;
    std::uint64_t sessions_ = 0;
    std::unique_ptr<PortForwarder> ports_;
    ClockSync clock_;  // last: its handlers read session_
};

}  // namespace cordon::hostagent

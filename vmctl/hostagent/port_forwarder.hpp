#pragma once
// Published ports on the host: the host agent's half of port forwarding.
//
// While the channel is up, the forwarder keeps one `ports.watch` RPC open to the guest
// agent (a "ports" notification with the full set now and after every change). For each
// published TCP port it listens on 127.0.0.1:<port> and [::1]:<port>, and turns every
// accepted connection into a channel stream "port:tcp:<port>" that the guest agent
// connects to the container's docker-proxy. For each published UDP port it binds UDP
// sockets on the same addresses and carries each client's datagrams over a stream
// "port:udp:<port>" (udp_forwarder.hpp). Listeners close when the port disappears
// from the set. A port it cannot listen on (taken by another program, below 1024 without
// the right) is reported in the log and in the state file, and retried every few seconds.
//
// The state file (ports.json beside control.sock) is what `vmctl ports`, `vmctl status`
// and the desktop app read through the host library (cordon/host/ports.hpp).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cordon/channel/session.hpp"
#include "udp_forwarder.hpp"

namespace cordon::hostagent {

struct ForwardOptions {
    std::filesystem::path state_file;  // empty: no state file
    std::vector<std::string> listen_addresses{"127.0.0.1", "::1"};
    // Listeners that failed are retried this often.
    std::chrono::milliseconds retry_interval{5000};
    // Listeners stay open this long after the channel went down (a guest reboot, a
    // keepalive hiccup under load); the guest's first snapshot afterwards reconciles them.
    std::chrono::milliseconds grace{15'000};
    // The watch is re-opened after it ended while the channel is up.
    std::chrono::milliseconds rewatch_delay{1000};
    // UDP: a client's flow (its stream to the guest) closes after this long without a
    // datagram either way; at most this many flows per published UDP port.
    std::chrono::milliseconds udp_idle{60'000};
    std::size_t udp_max_flows = 256;
};

class PortForwarder {
  public:
    PortForwarder(boost::asio::io_context& io, ForwardOptions options);
    ~PortForwarder();
    PortForwarder(const PortForwarder&) = delete;
    PortForwarder& operator=(const PortForwarder&) = delete;

    // The channel is up: watch the guest's ports through this session.
    void attach(std::shared_ptr<channel::Session> session);
    // The channel went down; listeners are kept for `grace`.
    void detach(const std::string& reason);
    // Closes every listener and removes the state file.
    void stop();

    // What the state file holds.
    nlohmann::json state() const;

    // For tests: the host ports currently listened on (any address).
    std::vector<std::uint16_t> listening_ports() const;

  private:
    struct Listener {
        std::string address;
        std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor;
        std::shared_ptr<boost::asio::ip::udp::socket> udp_socket;
        std::string state = "pending";  // listening, failed, unavailable
        std::string error;
        std::string hint;
    };
    struct Port {
        std::string proto;
        std::uint16_t host_port = 0;
        std::uint16_t container_port = 0;
        std::string target;
        std::string container_id;
        std::string container_name;
        std::vector<Listener> listeners;
        std::shared_ptr<UdpPortForward> udp;  // udp ports: the flows
        std::uint64_t connections = 0;
        std::uint64_t failed_connections = 0;
        std::string last_error;
    };
    using Key = std::pair<std::string, std::uint16_t>;

    void open_watch();
    void read_watch(std::shared_ptr<channel::Stream> stream, std::uint64_t generation);
    void on_watch_message(const std::string& line, std::uint64_t generation);
    void watch_ended(const std::string& why, std::uint64_t generation, bool retry);
    // Reconciles the listeners with the guest's set (writing the state file on a change
    // when `write`); true when it changed.
    bool apply(const nlohmann::json& ports, bool write = true);
    void open_listeners(Port& port);
    void close_port(Port& port);
    void accept(const Key& key, std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor);
    void forward(const Key& key, boost::asio::ip::tcp::socket socket);
    void retry_failed();
    void schedule_retry();
    void write_state();
    static std::string port_state(const Port& port);

    boost::asio::io_context& io_;
    ForwardOptions opt_;
    std::shared_ptr<channel::Session> session_;
    std::map<Key, Port> ports_;
    boost::asio::steady_timer grace_timer_;
    boost::asio::steady_timer retry_timer_;
    boost::asio::steady_timer rewatch_timer_;
    bool retry_scheduled_ = false;
    std::uint64_t watch_generation_ = 0;
    std::shared_ptr<channel::Stream> watch_;
    std::string guest_ = "disconnected";  // connected, disconnected, unsupported
    std::string watch_error_;
    std::string engine_;  // the guest's watcher state ("watching", "connecting", ...)
    std::uint64_t snapshots_ = 0;
    bool stopped_ = false;
    std::shared_ptr<bool> alive_;
};

}  // namespace cordon::hostagent

#pragma once
// One published UDP port on the host: the host agent's half of UDP forwarding.
//
// PortForwarder binds the UDP sockets (127.0.0.1:<port>, [::1]:<port>) with the same
// failure reporting and retries as TCP listeners and hands them to a UdpPortForward. Each
// distinct client address is a flow: its first datagram opens a channel stream
// "port:udp:<port>" (the guest relays it to the container's docker-proxy); datagrams go
// both ways framed on that stream (cordon/ports/udp_framing.hpp), and the guest's replies
// are sent back to that client from the socket it used. A flow idle for `idle` is closed;
// at most `max_flows` flows per port (a new client beyond that is dropped and logged).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cordon/channel/session.hpp"
#include "cordon/ports/datagram_stream.hpp"
#include "cordon/ports/udp_framing.hpp"

namespace cordon::hostagent {

struct UdpForwardOptions {
    std::chrono::milliseconds idle{60'000};
    std::size_t max_flows = 256;
    // Datagrams a flow keeps while its stream is being opened; more are dropped.
    std::size_t max_pending = 64;
};

struct UdpForwardStats {
    std::uint64_t flows = 0;          // flows whose stream the guest accepted
    std::uint64_t refused = 0;        // flows the guest refused or that could not open
    std::uint64_t capped = 0;         // new clients dropped because of max_flows
    std::uint64_t expired = 0;        // flows closed because idle
    std::uint64_t datagrams_in = 0;   // from host clients
    std::uint64_t datagrams_out = 0;  // replies sent to host clients
    std::uint64_t dropped = 0;        // datagrams dropped (queues full, send failed)
    std::string last_error;
};

class UdpPortForward : public std::enable_shared_from_this<UdpPortForward> {
  public:
    using SessionGetter = std::function<std::shared_ptr<channel::Session>()>;
    // Called on the io thread when stats changed in a way the state file shows
    // (flows opened or refused).
    using ChangeHandler = std::function<void()>;

    static std::shared_ptr<UdpPortForward> create(boost::asio::io_context& io, std::uint16_t port,
                                                  UdpForwardOptions options, SessionGetter session,
                                                  ChangeHandler on_change = {});
    ~UdpPortForward();

    // Starts receiving on a bound socket (one per listen address).
    void add_socket(std::shared_ptr<boost::asio::ip::udp::socket> socket);
    // Closes every socket and flow.
    void close(const std::string& reason);

    const UdpForwardStats& stats() const { return stats_; }
    std::size_t flows() const { return table_.size(); }

  private:
    struct Flow {
        std::shared_ptr<boost::asio::ip::udp::socket> socket;  // replies leave from here
        std::shared_ptr<ports::DatagramStream> stream;         // null while opening
        std::deque<std::string> pending;
        std::uint64_t id = 0;
    };
    using Key = boost::asio::ip::udp::endpoint;

    UdpPortForward(boost::asio::io_context& io, std::uint16_t port, UdpForwardOptions options,
                   SessionGetter session, ChangeHandler on_change);
    struct Receiver;
    void receive(std::shared_ptr<Receiver> r);
    void on_datagram(const std::shared_ptr<boost::asio::ip::udp::socket>& socket, const Key& from,
                     std::string_view payload);
    void open_flow(const Key& from, std::uint64_t id);
    void end_flow(const Key& from, std::uint64_t id, const std::string& why);
    void schedule_sweep();

    std::uint16_t port_;
    UdpForwardOptions opt_;
    SessionGetter session_;
    ChangeHandler on_change_;
    std::vector<std::shared_ptr<boost::asio::ip::udp::socket>> sockets_;
    ports::FlowTable<Key, Flow> table_;
    boost::asio::steady_timer sweep_;
    bool sweeping_ = false;
    bool closed_ = false;
    bool cap_logged_ = false;
    std::uint64_t next_id_ = 0;
    UdpForwardStats stats_;
};

}  // namespace cordon::hostagent

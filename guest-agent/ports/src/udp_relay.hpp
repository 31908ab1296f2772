#pragma once
// The guest half of one UDP flow: a "port:udp:<port>" stream joined to a UDP socket
// connected to the docker-proxy in the VM. Private to cordon_guest_ports.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "cordon/ports/datagram_stream.hpp"

namespace cordon::ports {

struct UdpRelayCounters {
    std::uint64_t flows = 0;          // flows started
    std::uint64_t datagrams_in = 0;   // host -> container
    std::uint64_t datagrams_out = 0;  // container -> host
    std::uint64_t refused = 0;        // ECONNREFUSED (ICMP port unreachable): kept going
    std::uint64_t dropped = 0;        // could not be sent (socket buffer full, queue full)
};

class UdpRelay : public std::enable_shared_from_this<UdpRelay> {
  public:
    // Connects a UDP socket to `target` and relays until the stream or the socket ends.
    // Returns nullptr (the stream reset with the reason) when the socket cannot be set up.
    static std::shared_ptr<UdpRelay> start(boost::asio::io_context& io,
                                           std::shared_ptr<channel::Stream> stream,
                                           const boost::asio::ip::udp::endpoint& target,
                                           std::shared_ptr<UdpRelayCounters> counters);
    // Ends the flow now (the stream is reset with `reason`).
    void stop(const std::string& reason);
    bool active() const { return !done_; }

  private:
    UdpRelay(boost::asio::io_context& io, std::shared_ptr<UdpRelayCounters> counters);
    void receive();
    void on_datagram(std::string_view payload);
    void finish();

    boost::asio::ip::udp::socket socket_;
    std::shared_ptr<DatagramStream> stream_;
    std::shared_ptr<UdpRelayCounters> counters_;
    std::string buf_;
    std::string target_;
    bool done_ = false;
};

}  // namespace cordon::ports

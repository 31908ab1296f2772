#pragma once
// Carries datagrams over one channel stream with the udp_framing framing, both ways.
// Used by both halves of a UDP port forward: the host agent (one per client flow) and the
// guest agent (one per "port:udp:<port>" stream, joined to a connected UDP socket).
//
// Sending never waits: datagrams queue while the stream's window is closed, up to
// max_queue bytes; beyond that they are dropped and counted (UDP may lose datagrams, a
// slow peer must not make memory grow). Lives on the session's io thread.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cordon/channel/session.hpp"
#include "cordon/ports/udp_framing.hpp"

namespace cordon::ports {

struct DatagramStreamStats {
    std::uint64_t sent = 0;      // datagrams handed to the stream
    std::uint64_t received = 0;  // datagrams read from the stream
    std::uint64_t dropped = 0;   // datagrams dropped because the queue was full
};

class DatagramStream : public std::enable_shared_from_this<DatagramStream> {
  public:
    // A datagram arrived from the peer.
    using DatagramHandler = std::function<void(std::string_view payload)>;
    // The stream ended: peer eof or reset, session closed, framing error (the stream was
    // reset with the reason), or close(). Called once; `why` is empty on a clean end.
    using EndHandler = std::function<void(const std::string& why)>;

    static std::shared_ptr<DatagramStream> create(std::shared_ptr<channel::Stream> stream,
                                                  std::size_t max_queue = 1 << 20);

    // Starts reading. Handlers are called on the io thread, never from inside start().
    void start(DatagramHandler on_datagram, EndHandler on_end);
    // Queues one datagram; false when it was dropped (queue full, or the stream ended).
    bool send(std::string_view payload);
    // Resets the stream with `reason`; the end handler is not called.
    void close(const std::string& reason);

    bool ended() const { return ended_; }
    const DatagramStreamStats& stats() const { return stats_; }
    channel::Stream& stream() { return *stream_; }

  private:
    explicit DatagramStream(std::shared_ptr<channel::Stream> stream, std::size_t max_queue);
    void read();
    void flush();
    void end(const std::string& why);

    std::shared_ptr<channel::Stream> stream_;
    std::size_t max_queue_;
    DatagramDecoder decoder_;
    std::string in_;
    std::string queued_;   // framed, waiting for the current write
    std::string writing_;  // framed, being written
    bool write_pending_ = false;
    bool ended_ = false;
    DatagramHandler on_datagram_;
    EndHandler on_end_;
    DatagramStreamStats stats_;
};

}  // namespace cordon::ports

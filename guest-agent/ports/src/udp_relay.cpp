// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include "udp_relay.hpp"

#include <boost/asio/error.hpp>

#include "cordon/log.hpp"

namespace cordon::ports {

namespace asio = boost::asio;
using boost::system::error_code;
using udp = asio::ip::udp;

namespace {
constexpr const char* kUdpRelayLog = "ports";

std::string endpoint_text(const udp::endpoint& ep) {
    const std::string a = ep.address().to_string();
    return (ep.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(ep.port());
}
}  // namespace

UdpRelay::UdpRelay(asio::io_context& io, std::shared_ptr<UdpRelayCounters> counters)
    : socket_(io), counters_(std::move(counters)) {}

std::shared_ptr<UdpRelay> UdpRelay::start(asio::io_context& io,
                                          std::shared_ptr<channel::Stream> stream,
                                          const udp::endpoint& target,
                                          std::shared_ptr<UdpRelayCounters> counters) {
    auto r = std::shared_ptr<UdpRelay>(new UdpRelay(io, std::move(counters)));
    r->target_ = endpoint_text(target);
    error_code ec;
    r->socket_.open(target.protocol(), ec);
    if (!ec)
        r->socket_.non_blocking(true, ec);
    if (!ec)
        r->socket_.connect(target, ec);  // a UDP connect only fixes the peer: no packet
    if (ec) {
        stream->reset("cannot set up a UDP socket to " + r->target_ +
                      " in the VM: " + ec.message());
        return nullptr;
    }
    ++r->counters_->flows;
    r->buf_.resize(kMaxUdpPayload + 1);
    r->stream_ = DatagramStream::create(std::move(stream));
    std::weak_ptr<UdpRelay> weak = r;
    r->stream_->start(
        [weak](std::string_view d) {
            if (auto self = weak.lock())
                self->on_datagram(d);
        },
        [weak](const std::string& why) {
            auto self = weak.lock();
            if (!self)
                return;
            if (!why.empty())
                log::debug(kUdpRelayLog, "udp flow to {} ended: {}", self->target_, why);
            self->finish();
        });
    r->receive();
    return r;
}

void UdpRelay::on_datagram(std::string_view payload) {
    if (done_)
        return;
    ++counters_->datagrams_in;
    error_code ec;
    socket_.send(asio::buffer(payload.data(), payload.size()), 0, ec);
    if (ec == asio::error::connection_refused) {
        // The previous datagram drew an ICMP port unreachable (nothing listens yet, or
        // the proxy restarted): the error is reported once; keep the flow.
        ++counters_->refused;
        socket_.send(asio::buffer(payload.data(), payload.size()), 0, ec);
    }
    if (ec == asio::error::connection_refused) {
        ++counters_->refused;
    } else if (ec) {
        ++counters_->dropped;  // would_block (buffer full) or a transient error: UDP may drop
    }
}

void UdpRelay::receive() {
    socket_.async_receive(
        asio::buffer(buf_), [self = shared_from_this()](error_code ec, std::size_t n) {
            if (self->done_ || ec == asio::error::operation_aborted)
                return;
            if (ec == asio::error::connection_refused) {
                ++self->counters_->refused;
                self->receive();
                return;
            }
            if (ec) {
                log::warn(kUdpRelayLog, "udp flow to {}: receive failed: {}", self->target_, ec.message());
                self->stop("the UDP socket in the VM failed: " + ec.message());
                return;
            }
            if (n > kMaxUdpPayload) {
                ++self->counters_->dropped;  // cannot happen on a UDP socket; never framed
            } else {
                ++self->counters_->datagrams_out;
                if (!self->stream_->send(std::string_view(self->buf_.data(), n)))
                    ++self->counters_->dropped;
            }
            self->receive();
        });
}

void UdpRelay::stop(const std::string& reason) {
    if (done_)
        return;
    if (stream_)
        stream_->close(reason);
    finish();
}

void UdpRelay::finish() {
    if (done_)
        return;
    done_ = true;
    error_code ignored;
    socket_.close(ignored);
}

}  // namespace cordon::ports

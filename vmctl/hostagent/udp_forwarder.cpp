// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include "udp_forwarder.hpp"

#include <boost/asio/error.hpp>

#include "cordon/log.hpp"

namespace cordon::hostagent {

namespace asio = boost::asio;
using boost::system::error_code;
using udp = asio::ip::udp;

namespace {
constexpr const char* kUdpForwarderLog = "ports";

std::string client_text(const udp::endpoint& ep) {
    const std::string a = ep.address().to_string();
    return (ep.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(ep.port());
}
}  // namespace

struct UdpPortForward::Receiver {
    std::shared_ptr<udp::socket> socket;
    std::string buf;
    udp::endpoint from;
};

std::shared_ptr<UdpPortForward> UdpPortForward::create(asio::io_context& io, std::uint16_t port,
                                                       UdpForwardOptions options,
                                                       SessionGetter session,
                                                       ChangeHandler on_change) {
    return std::shared_ptr<UdpPortForward>(
        new UdpPortForward(io, port, options, std::move(session), std::move(on_change)));
}

UdpPortForward::UdpPortForward(asio::io_context& io, std::uint16_t port, UdpForwardOptions options,
                               SessionGetter session, ChangeHandler on_change)
    : port_(port),
      opt_(options),
      session_(std::move(session)),
      on_change_(std::move(on_change)),
      table_(options.max_flows, options.idle),
      sweep_(io) {}

UdpPortForward::~UdpPortForward() {
    close("the port forward ended");
}

void UdpPortForward::add_socket(std::shared_ptr<udp::socket> socket) {
    if (closed_)
        return;
    error_code ignored;
    socket->non_blocking(true, ignored);
    sockets_.push_back(socket);
    auto r = std::make_shared<Receiver>();
    r->socket = std::move(socket);
    r->buf.resize(ports::kMaxUdpPayload + 1);
    receive(std::move(r));
}

void UdpPortForward::close(const std::string& reason) {
    if (closed_)
        return;
    closed_ = true;
    on_change_ = nullptr;
    sweep_.cancel();
    for (auto& [key, flow] : table_.clear()) {
        if (flow.stream)
            flow.stream->close(reason);
    }
    for (auto& s : sockets_) {
        error_code ignored;
        s->close(ignored);
    }
    sockets_.clear();
}

void UdpPortForward::receive(std::shared_ptr<Receiver> r) {
    std::weak_ptr<UdpPortForward> weak = shared_from_this();
    r->socket->async_receive_from(
        asio::buffer(r->buf), r->from, [weak, r](error_code ec, std::size_t n) {
            auto self = weak.lock();
            if (!self || self->closed_ || ec == asio::error::operation_aborted ||
                !r->socket->is_open())
                return;
            if (!ec) {
                if (n <= ports::kMaxUdpPayload)
                    self->on_datagram(r->socket, r->from, std::string_view(r->buf.data(), n));
            } else if (ec != asio::error::connection_refused) {
                // connection_refused: an ICMP error for a reply we sent to a client that
                // left; nothing to do. Anything else is logged and the loop continues.
                log::warn(kUdpForwarderLog, "udp port {}: receive failed: {}", self->port_, ec.message());
            }
            self->receive(r);
        });
}

void UdpPortForward::on_datagram(const std::shared_ptr<udp::socket>& socket, const Key& from,
                                 std::string_view payload) {
    ++stats_.datagrams_in;
    const auto now = std::chrono::steady_clock::now();
    if (Flow* f = table_.find(from, now)) {
        if (f->stream) {
            if (!f->stream->send(payload))
                ++stats_.dropped;
        } else if (f->pending.size() < opt_.max_pending) {
            f->pending.emplace_back(payload);
        } else {
            ++stats_.dropped;
        }
        return;
    }
    auto session = session_ ? session_() : nullptr;
    if (!session || !session->established()) {
        ++stats_.dropped;  // no flow: the next datagram tries again
        const std::string why = "the channel to the guest is down";
        if (stats_.last_error != why)
            log::info(kUdpForwarderLog, "udp port {}: a datagram from {} arrived while {}: dropped", port_,
                      client_text(from), why);
        stats_.last_error = why;
        return;
    }
    Flow flow;
    flow.socket = socket;
    flow.id = ++next_id_;
    flow.pending.emplace_back(payload);
    const std::uint64_t id = flow.id;
    if (!table_.add(from, std::move(flow), now)) {
        ++stats_.dropped;
        ++stats_.capped;
        if (!cap_logged_) {
            cap_logged_ = true;
            log::warn(kUdpForwarderLog,
                      "udp port {}: {} clients already have a flow (the cap): dropping datagrams "
                      "from the new client {} until a flow has been idle for {} s",
                      port_, table_.cap(), client_text(from), opt_.idle.count() / 1000.0);
        }
        return;
    }
    schedule_sweep();
    open_flow(from, id);
}

void UdpPortForward::open_flow(const Key& from, std::uint64_t id) {
    auto session = session_();
    std::weak_ptr<UdpPortForward> weak = shared_from_this();
    session->open(
        "port:udp:" + std::to_string(port_),
        [weak, from, id](error_code ec, std::shared_ptr<channel::Stream> stream) {
            auto self = weak.lock();
            if (!self || self->closed_) {
                if (stream && !ec)
                    stream->reset("the port forward ended");
                return;
            }
            Flow* f = self->table_.find(from, std::chrono::steady_clock::now());
            if (!f || f->id != id) {
                if (stream && !ec)
                    stream->reset("the flow ended before its stream opened");
                return;
            }
            if (ec) {
                const std::string why = ec.message() + (stream && !stream->reset_reason().empty()
                                                            ? " (" + stream->reset_reason() + ")"
                                                            : "");
                ++self->stats_.refused;
                self->stats_.dropped += f->pending.size();
                if (self->stats_.last_error != why)
                    log::warn(kUdpForwarderLog, "the guest refused a udp flow from {} to port {}: {}",
                              client_text(from), self->port_, why);
                self->stats_.last_error = why;
                self->table_.erase(from);
                if (self->on_change_)
                    self->on_change_();
                return;
            }
            ++self->stats_.flows;
            f->stream = ports::DatagramStream::create(std::move(stream));
            std::weak_ptr<UdpPortForward> w = self;
            f->stream->start(
                [w, from, id](std::string_view payload) {
                    auto s = w.lock();
                    if (!s || s->closed_)
                        return;
                    Flow* fl = s->table_.find(from, std::chrono::steady_clock::now());
                    if (!fl || fl->id != id)
                        return;
                    error_code sec;
                    fl->socket->send_to(asio::buffer(payload.data(), payload.size()), from, 0, sec);
                    if (sec)
                        ++s->stats_.dropped;  // would_block or the client is gone: UDP drops
                    else
                        ++s->stats_.datagrams_out;
                },
                [w, from, id](const std::string& why) {
                    if (auto s = w.lock())
                        s->end_flow(from, id, why);
                });
            while (!f->pending.empty()) {
                if (!f->stream->send(f->pending.front()))
                    ++self->stats_.dropped;
                f->pending.pop_front();
            }
            if (self->on_change_)
                self->on_change_();
        });
}

void UdpPortForward::end_flow(const Key& from, std::uint64_t id, const std::string& why) {
    // A lookup without touching: find() would mark it active.
    bool same = false;
    table_.for_each([&](const Key& k, Flow& f) { same = same || (k == from && f.id == id); });
    if (!same)
        return;
    if (!why.empty())
        log::debug(kUdpForwarderLog, "udp flow from {} to port {} ended: {}", client_text(from), port_, why);
    table_.erase(from);
    if (table_.size() < table_.cap())
        cap_logged_ = false;
}

void UdpPortForward::schedule_sweep() {
    if (sweeping_ || closed_)
        return;
    sweeping_ = true;
    // Often enough that a flow ends within about 1.25 x idle.
    auto every = opt_.idle / 4;
    if (every < std::chrono::milliseconds(10))
        every = std::chrono::milliseconds(10);
    if (every > std::chrono::milliseconds(5000))
        every = std::chrono::milliseconds(5000);
    sweep_.expires_after(every);
    std::weak_ptr<UdpPortForward> weak = shared_from_this();
    sweep_.async_wait([weak](error_code ec) {
        auto self = weak.lock();
        if (!self || ec || self->closed_)
            return;
        self->sweeping_ = false;
        for (auto& [key, flow] : self->table_.expire(std::chrono::steady_clock::now())) {
            ++self->stats_.expired;
            log::debug(kUdpForwarderLog, "udp flow from {} to port {} was idle for {} ms: closing it",
                       client_text(key), self->port_, self->opt_.idle.count());
            if (flow.stream)
                flow.stream->close("the flow was idle for " +
                                   std::to_string(self->opt_.idle.count()) + " ms");
        }
        if (self->table_.size() < self->table_.cap())
            self->cap_logged_ = false;
        if (self->table_.size() > 0)
            self->schedule_sweep();
    });
}

}  // namespace cordon::hostagent

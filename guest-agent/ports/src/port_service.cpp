// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include "cordon/ports/port_service.hpp"

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>

#include "cordon/log.hpp"
#include "udp_relay.hpp"

namespace cordon::ports {

namespace asio = boost::asio;
using boost::system::error_code;
using rpc::json;

namespace {
constexpr const char* kPortServiceLog = "ports";
constexpr std::size_t kMaxWatches = 32;
}  // namespace

PortService::PortService(asio::io_context& io, std::string dockerd_socket)
    : io_(io),
      watcher_(
          io,
          [&] {
              WatchOptions o;
              o.dockerd_socket = std::move(dockerd_socket);
              return o;
          }(),
          [this](const std::vector<Forward>& now, const Diff& d) { on_change(now, d); }),
      udp_(std::make_shared<UdpRelayCounters>()),
      alive_(std::make_shared<bool>(true)) {}

PortService::~PortService() {
    *alive_ = false;
}

void PortService::start() {
    watcher_.start();
}

void PortService::stop() {
    watcher_.stop();
    for (auto& w : watches_) w->reply(json{{"stopped", true}, {"reason", "the agent is stopping"}});
    watches_.clear();
    for (auto& w : udp_flows_)
        if (auto f = w.lock())
            f->stop("the guest agent is stopping");
    udp_flows_.clear();
}

json PortService::snapshot(const Diff* diff) const {
    json j{{"seq", seq_},
           {"engine", watcher_.state()},
           {"ports", to_json(watcher_.table().forwards())}};
    if (!watcher_.last_error().empty())
        j["engine_error"] = watcher_.last_error();
    if (diff) {
        j["added"] = to_json(diff->added);
        j["removed"] = to_json(diff->removed);
    }
    return j;
}

json PortService::status() const {
    json j = snapshot(nullptr);
    j["watches"] = watches_.size();
    j["connections"] = connections_;
    j["refused"] = refused_;
    j["resyncs"] = watcher_.resyncs();
    std::size_t active = 0;
    for (const auto& w : udp_flows_) {
        auto f = w.lock();
        active += f && f->active();
    }
    j["udp"] = json{{"flows", udp_->flows},
                    {"active_flows", active},
                    {"datagrams_in", udp_->datagrams_in},
                    {"datagrams_out", udp_->datagrams_out},
                    {"refused", udp_->refused},
                    {"dropped", udp_->dropped}};
    return j;
}

void PortService::register_methods(rpc::Server& server) {
    server.register_method("ports", [this](const json&, rpc::Call&) { return status(); });
    // A long-running call: a "ports" notification with the full set now and after every
    // change (with what was added and removed); it is answered only when the agent stops.
    server.register_async_method("ports.watch", [this](std::shared_ptr<rpc::Call> call) {
        watches_.erase(std::remove_if(watches_.begin(), watches_.end(),
                                      [](const auto& c) { return c->closed() || c->answered(); }),
                       watches_.end());
        if (watches_.size() >= kMaxWatches) {
            // The oldest watch is the most likely to be one whose client vanished.
            watches_.front()->fail(rpc::RemoteError{
                "superseded", "too many port watches: this one was ended for a newer one",
                "watch again if you still need it"});
            watches_.erase(watches_.begin());
        }
        call->notify("ports", snapshot(nullptr));
        watches_.push_back(std::move(call));
    });
}

void PortService::on_change(const std::vector<Forward>&, const Diff& diff) {
    ++seq_;
    const json j = snapshot(&diff);
    watches_.erase(std::remove_if(watches_.begin(), watches_.end(),
                                  [](const auto& c) { return c->closed() || c->answered(); }),
                   watches_.end());
    for (auto& w : watches_) w->notify("ports", j);
}

void PortService::on_stream(std::shared_ptr<channel::Stream> stream, const std::string& service) {
    const auto want = parse_port_service(service);
    if (!want) {
        ++refused_;
        stream->reset(
            "'" + service +
            "' is not a port service (expected port:tcp:<1-65535> or port:udp:<1-65535>)");
        return;
    }
    if (want->first != "tcp" && want->first != "udp") {
        ++refused_;
        stream->reset("only TCP and UDP ports are forwarded (asked for " + want->first + ")");
        return;
    }
    const auto fwd = watcher_.table().find(want->first, want->second);
    if (!fwd) {
        ++refused_;
        stream->reset("no running container publishes " + want->first + " port " +
                      std::to_string(want->second) + " in the VM");
        return;
    }
    if (want->first == "udp") {
        start_udp(std::move(stream), *fwd);
        return;
    }
    error_code ec;
    const auto addr = asio::ip::make_address(fwd->target_ip, ec);
    if (ec) {
        ++refused_;
        stream->reset("the published address " + fwd->target_ip + " is not an IP address");
        return;
    }
    auto sock = std::make_shared<asio::ip::tcp::socket>(io_);
    const asio::ip::tcp::endpoint ep(addr, fwd->host_port);
    sock->async_connect(ep, [this, sock, stream, ep, alive = alive_](error_code cec) {
        if (!*alive) {
            stream->reset("the guest agent is stopping");
            return;
        }
        if (cec) {
            ++refused_;
            stream->reset("cannot connect to " + ep.address().to_string() + ":" +
                          std::to_string(ep.port()) + " in the VM: " + cec.message());
            return;
        }
        ++connections_;
        error_code ignored;
        sock->set_option(asio::ip::tcp::no_delay(true), ignored);
        channel::splice(stream, std::move(*sock), [id = stream->id()](error_code e) {
            if (e)
                log::debug(kPortServiceLog, "port stream {} ended: {}", id, e.message());
        });
    });
}

void PortService::start_udp(std::shared_ptr<channel::Stream> stream, const Forward& fwd) {
    error_code ec;
    const auto addr = asio::ip::make_address(fwd.target_ip, ec);
    if (ec) {
        ++refused_;
        stream->reset("the published address " + fwd.target_ip + " is not an IP address");
        return;
    }
    auto relay =
        UdpRelay::start(io_, std::move(stream), asio::ip::udp::endpoint(addr, fwd.host_port), udp_);
    if (!relay) {
        ++refused_;
        return;
    }
    ++connections_;
    udp_flows_.erase(std::remove_if(udp_flows_.begin(), udp_flows_.end(),
                                    [](const auto& w) {
                                        auto f = w.lock();
                                        return !f || !f->active();
                                    }),
                     udp_flows_.end());
    udp_flows_.push_back(relay);
}

}  // namespace cordon::ports

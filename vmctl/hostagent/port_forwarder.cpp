// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include "port_forwarder.hpp"

#include <unistd.h>

#include <array>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/write.hpp>
#include <ctime>

#include "cordon/atomic_file.hpp"
#include "cordon/log.hpp"
#include "cordon/rpc/codec.hpp"

namespace cordon::hostagent {

namespace asio = boost::asio;
using boost::system::error_code;
using nlohmann::json;
using tcp = asio::ip::tcp;

namespace {
constexpr const char* kPortForwarderLog = "ports";

std::string endpoint_text(const std::string& address, std::uint16_t port) {
    if (address.find(':') != std::string::npos)
        return "[" + address + "]:" + std::to_string(port);
    return address + ":" + std::to_string(port);
}

bool valid_port_entry(const json& p) {
    return p.is_object() && p.contains("proto") && p["proto"].is_string() &&
           p.contains("host_port") && p["host_port"].is_number_unsigned() &&
           p["host_port"].get<unsigned>() >= 1 && p["host_port"].get<unsigned>() <= 65535;
}

bool forwarded_proto(const std::string& proto) {
    return proto == "tcp" || proto == "udp";
}

std::string str(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
}  // namespace

PortForwarder::PortForwarder(asio::io_context& io, ForwardOptions options)
    : io_(io),
      opt_(std::move(options)),
      grace_timer_(io),
      retry_timer_(io),
      rewatch_timer_(io),
      alive_(std::make_shared<bool>(true)) {}

PortForwarder::~PortForwarder() {
    stop();
    *alive_ = false;
}

void PortForwarder::attach(std::shared_ptr<channel::Session> session) {
    if (stopped_)
        return;
    session_ = std::move(session);
    grace_timer_.cancel();
    guest_ = "connected";
    watch_error_.clear();
    open_watch();
}

void PortForwarder::detach(const std::string& reason) {
    if (stopped_)
        return;
    session_.reset();
    ++watch_generation_;
    if (auto w = std::move(watch_))
        w->reset("the channel ended");
    rewatch_timer_.cancel();
    guest_ = "disconnected";
    watch_error_ = reason;
    if (!ports_.empty()) {
        log::info(kPortForwarderLog, "the channel is down: keeping {} port listener(s) for {} s", ports_.size(),
                  opt_.grace.count() / 1000);
        grace_timer_.expires_after(opt_.grace);
        grace_timer_.async_wait([this, alive = alive_](error_code ec) {
            if (!*alive || ec || stopped_ || session_)
                return;
            log::info(kPortForwarderLog, "the guest did not come back: closing every port listener");
            apply(json::array(), true);
        });
    }
    write_state();
}

void PortForwarder::stop() {
    if (stopped_)
        return;
    stopped_ = true;
    grace_timer_.cancel();
    retry_timer_.cancel();
    rewatch_timer_.cancel();
    ++watch_generation_;
    if (auto w = std::move(watch_))
        w->reset("the host agent is stopping");
    for (auto& [key, port] : ports_) close_port(port);
    ports_.clear();
    session_.reset();
    if (!opt_.state_file.empty())
        ::unlink(opt_.state_file.c_str());
}

void PortForwarder::open_watch() {
    if (stopped_ || !session_)
        return;
    const std::uint64_t gen = ++watch_generation_;
    session_->open("rpc", [this, gen, alive = alive_](error_code ec,
                                                      std::shared_ptr<channel::Stream> stream) {
        if (!*alive || gen != watch_generation_)
            return;
        if (ec) {
            watch_ended(
                "cannot open an rpc stream: " + ec.message() +
                    (stream && !stream->reset_reason().empty() ? " (" + stream->reset_reason() + ")"
                                                               : ""),
                gen, true);
            return;
        }
        watch_ = stream;
        auto line =
            std::make_shared<std::string>(rpc::encode_request(1, "ports.watch", json::object()));
        stream->async_write(
            asio::buffer(*line), [this, gen, line, stream, alive](error_code wec, std::size_t) {
                if (!*alive || gen != watch_generation_)
                    return;
                if (wec) {
                    watch_ended("cannot send ports.watch: " + wec.message(), gen, true);
                    return;
                }
                read_watch(stream, gen);
            });
    });
}

void PortForwarder::read_watch(std::shared_ptr<channel::Stream> stream, std::uint64_t gen) {
    struct Reader {
        std::array<char, 16 * 1024> buf{};
        rpc::LineDecoder lines;
    };
    auto reader = std::make_shared<Reader>();
    auto step = std::make_shared<std::function<void()>>();
    *step = [this, stream, gen, reader, weak_step = std::weak_ptr<std::function<void()>>(step),
             alive = alive_]() {
        auto self_step = weak_step.lock();
        stream->async_read_some(asio::buffer(reader->buf), [this, stream, gen, reader, self_step,
                                                            alive](error_code ec, std::size_t n) {
            if (!*alive || gen != watch_generation_)
                return;
            if (ec) {
                watch_ended(
                    "the ports.watch stream ended: " + ec.message() +
                        (stream->reset_reason().empty() ? "" : " (" + stream->reset_reason() + ")"),
                    gen, true);
                return;
            }
            reader->lines.feed(std::string_view(reader->buf.data(), n));
            std::string line;
            for (;;) {
                const auto st = reader->lines.next(line);
                if (st == rpc::LineDecoder::Status::need_more)
                    break;
                if (st == rpc::LineDecoder::Status::too_long) {
                    watch_ended("the guest sent a ports.watch line over 1 MiB", gen, true);
                    return;
                }
                on_watch_message(line, gen);
                if (gen != watch_generation_)
                    return;
            }
            if (self_step)
                (*self_step)();
        });
    };
    // The closure keeps itself alive through the pending read's handler (self_step).
    (*step)();
}

void PortForwarder::on_watch_message(const std::string& line, std::uint64_t gen) {
    rpc::Message m;
    rpc::RemoteError err;
    std::optional<std::uint64_t> id;
    if (!rpc::decode_message(line, m, err, id)) {
        log::warn(kPortForwarderLog, "the guest sent a malformed ports.watch message: {}", err.message);
        return;
    }
    if (m.kind == rpc::Message::Kind::notification && m.method == "ports") {
        ++snapshots_;
        guest_ = "connected";
        watch_error_.clear();
        engine_ = str(m.params, "engine");
        if (m.params.contains("engine_error") && m.params["engine_error"].is_string())
            watch_error_ = m.params["engine_error"].get<std::string>();
        // Always rewritten: the guest's state (connected, engine) may be all that changed.
        apply(m.params.contains("ports") ? m.params["ports"] : json::array(), false);
        write_state();
        return;
    }
    if (m.kind == rpc::Message::Kind::response) {
        if (m.error && m.error->code == rpc::code::unknown_method) {
            guest_ = "unsupported";
            watch_ended("the guest agent does not offer ports.watch (an older VM image): " +
                            m.error->message,
                        gen, false);
            return;
        }
        watch_ended(m.error ? "ports.watch failed: " + m.error->code + ": " + m.error->message
                            : "the guest ended ports.watch",
                    gen, true);
    }
}

void PortForwarder::watch_ended(const std::string& why, std::uint64_t gen, bool retry) {
    if (gen != watch_generation_ || stopped_)
        return;
    ++watch_generation_;
    if (auto w = std::move(watch_))
        w->reset("watch ended");
    if (why != watch_error_)
        log::warn(kPortForwarderLog, "{}", why);
    watch_error_ = why;
    write_state();
    if (!retry || !session_ || !session_->established())
        return;
    rewatch_timer_.expires_after(opt_.rewatch_delay);
    rewatch_timer_.async_wait([this, alive = alive_](error_code ec) {
        if (*alive && !ec)
            open_watch();
    });
}

bool PortForwarder::apply(const json& list, bool write) {
    if (stopped_)
        return false;
    std::map<Key, json> want;
    if (list.is_array()) {
        for (const auto& p : list) {
            if (!valid_port_entry(p)) {
                log::warn(kPortForwarderLog, "ignoring a malformed port entry from the guest: {}",
                          p.dump().substr(0, 200));
                continue;
            }
            want.emplace(Key{p["proto"].get<std::string>(),
                             static_cast<std::uint16_t>(p["host_port"].get<unsigned>())},
                         p);
        }
    }
    bool changed = false;
    // Gone, or now another container's (same port): close.
    for (auto it = ports_.begin(); it != ports_.end();) {
        auto w = want.find(it->first);
        if (w == want.end() || str(w->second, "container_id") != it->second.container_id) {
            log::info(kPortForwarderLog, "{} port {} is no longer published ({}): closing its listeners",
                      it->second.proto, it->second.host_port, it->second.container_name);
            close_port(it->second);
            it = ports_.erase(it);
            changed = true;
        } else {
            ++it;
        }
    }
    for (const auto& [key, p] : want) {
        auto it = ports_.find(key);
        if (it != ports_.end()) {
            // Same container: refresh what may have been renamed.
            it->second.container_name = str(p, "container_name");
            continue;
        }
        Port port;
        port.proto = key.first;
        port.host_port = key.second;
        port.container_port = static_cast<std::uint16_t>(p.value("container_port", 0u));
        port.target = str(p, "target");
        port.container_id = str(p, "container_id");
        port.container_name = str(p, "container_name");
        auto& stored = ports_.emplace(key, std::move(port)).first->second;
        open_listeners(stored);
        changed = true;
    }
    if (changed && write)
        write_state();
    return changed;
}

void PortForwarder::open_listeners(Port& port) {
    const Key key{port.proto, port.host_port};
    if (!forwarded_proto(port.proto)) {
        if (port.listeners.empty()) {
            log::warn(kPortForwarderLog,
                      "{} port {} ({}) is published in the VM but not forwarded: only TCP and "
                      "UDP ports are forwarded to the host",
                      port.proto, port.host_port, port.container_name);
        }
        port.last_error = "only TCP and UDP ports are forwarded to the host; " + port.proto +
                          " port " + std::to_string(port.host_port) +
                          " is reachable inside the VM only";
        return;
    }
    const bool is_udp = port.proto == "udp";
    if (is_udp && !port.udp) {
        UdpForwardOptions uo;
        uo.idle = opt_.udp_idle;
        uo.max_flows = opt_.udp_max_flows;
        port.udp = UdpPortForward::create(io_, port.host_port, uo, [this, alive = alive_] {
            return *alive ? session_ : nullptr;
        });
    }
    if (port.listeners.empty()) {
        for (const auto& a : opt_.listen_addresses)
            port.listeners.push_back(Listener{a, {}, {}, {}, {}, {}});
    }
    for (auto& l : port.listeners) {
        if (l.state == "listening" || l.state == "unavailable")
            continue;
        const std::string where = endpoint_text(l.address, port.host_port);
        error_code ec;
        const auto addr = asio::ip::make_address(l.address, ec);
        if (ec) {
            l.state = "failed";
            l.error = "'" + l.address + "' is not an IP address";
            continue;
        }
        const tcp::endpoint ep(addr, port.host_port);
        auto acc = std::make_shared<tcp::acceptor>(io_);
        auto usock = std::make_shared<asio::ip::udp::socket>(io_);
        if (is_udp) {
            // No SO_REUSEADDR: on UDP it would let two programs bind the same port.
            const asio::ip::udp::endpoint uep(addr, port.host_port);
            usock->open(uep.protocol(), ec);
            if (!ec && addr.is_v6())
                usock->set_option(asio::ip::v6_only(true), ec);
            if (!ec)
                usock->bind(uep, ec);
        } else {
            acc->open(ep.protocol(), ec);
            if (!ec && addr.is_v6())
                acc->set_option(asio::ip::v6_only(true), ec);
            if (!ec)
                acc->set_option(asio::socket_base::reuse_address(true), ec);
            if (!ec)
                acc->bind(ep, ec);
            if (!ec)
                acc->listen(asio::socket_base::max_listen_connections, ec);
        }
        if (!ec) {
            if (l.state == "failed")
                log::info(kPortForwarderLog, "{} is free now: forwarding it to the VM ({})", where,
                          port.container_name);
            else
                log::info(kPortForwarderLog, "listening on {} for {}:{} in the VM ({})", where,
                          port.container_name, port.container_port, port.target);
            l.state = "listening";
            l.error.clear();
            l.hint.clear();
            if (is_udp) {
                l.udp_socket = usock;
                port.udp->add_socket(usock);
            } else {
                l.acceptor = acc;
                accept(key, acc);
            }
            continue;
        }
        std::string error, hint, state = "failed";
        if (ec == asio::error::address_in_use) {
            error = "host port " + std::to_string(port.host_port) + " is already in use on " +
                    l.address + " (another program listens there)";
            hint = "stop that program, or publish another host port (docker run -p " +
                   std::to_string(port.host_port + 1 > 65535 ? 8080 : port.host_port + 1) + ":" +
                   std::to_string(port.container_port) + " ...); Cordon retries every " +
                   std::to_string(opt_.retry_interval.count() / 1000) + " s";
        } else if (ec == asio::error::access_denied) {
            error = "host port " + std::to_string(port.host_port) +
                    " is below 1024 and this host agent (uid " + std::to_string(::getuid()) +
                    ") may not listen on it";
            hint = "publish a port >= 1024 (docker run -p 8080:" +
                   std::to_string(port.container_port) +
                   "), or allow it: setcap cap_net_bind_service=ep on cordon-hostagent, or "
                   "sysctl net.ipv4.ip_unprivileged_port_start=" +
                   std::to_string(port.host_port);
        } else if (ec == boost::system::errc::address_not_available ||
                   ec == asio::error::address_family_not_supported) {
            state = "unavailable";
            error = l.address + " is not available on this host (" + ec.message() + ")";
        } else {
            error = "cannot listen on " + where + ": " + ec.message();
        }
        if (l.state != state || l.error != error) {
            if (state == "unavailable")
                log::info(kPortForwarderLog, "not listening on {}: {}", where, error);
            else
                log::warn(kPortForwarderLog, "cannot forward {} ({}): {}{}", where, port.container_name, error,
                          hint.empty() ? "" : " -- " + hint);
        }
        l.state = state;
        l.error = error;
        l.hint = hint;
        error_code ignored;
        acc->close(ignored);
        usock->close(ignored);
    }
    // An address that is unavailable is fine as long as another one listens.
    bool any = false;
    for (const auto& l : port.listeners) any = any || l.state == "listening";
    if (!any) {
        for (auto& l : port.listeners) {
            if (l.state == "unavailable")
                l.state = "failed";
        }
    }
    for (const auto& l : port.listeners) {
        if (l.state == "failed") {
            schedule_retry();
            break;
        }
    }
}

void PortForwarder::close_port(Port& port) {
    for (auto& l : port.listeners) {
        if (l.acceptor) {
            error_code ignored;
            l.acceptor->close(ignored);
            l.acceptor.reset();
        }
        l.udp_socket.reset();
    }
    if (port.udp) {
        port.udp->close("the port is no longer published");  // closes the UDP sockets
        port.udp.reset();
    }
    port.listeners.clear();
}

void PortForwarder::accept(const Key& key, std::shared_ptr<tcp::acceptor> acceptor) {
    acceptor->async_accept(
        [this, key, acceptor, alive = alive_](error_code ec, tcp::socket socket) {
            if (!*alive || stopped_ || ec == asio::error::operation_aborted || !acceptor->is_open())
                return;
            if (ec) {
                log::warn(kPortForwarderLog, "accept on port {}: {}", key.second, ec.message());
            } else {
                forward(key, std::move(socket));
            }
            accept(key, acceptor);
        });
}

void PortForwarder::forward(const Key& key, tcp::socket socket) {
    auto it = ports_.find(key);
    if (it == ports_.end())
        return;
    Port& port = it->second;
    if (!session_ || !session_->established()) {
        ++port.failed_connections;
        log::info(kPortForwarderLog,
                  "a connection to port {} arrived while the channel to the guest is down: "
                  "closing it",
                  key.second);
        return;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto sock = std::make_shared<tcp::socket>(std::move(socket));
    const std::string service = "port:" + key.first + ":" + std::to_string(key.second);
    session_->open(service, [this, key, sock, alive = alive_](
                                error_code ec, std::shared_ptr<channel::Stream> stream) {
        auto p = *alive ? ports_.find(key) : ports_.end();
        if (ec) {
            const std::string why = ec.message() + (stream && !stream->reset_reason().empty()
                                                        ? " (" + stream->reset_reason() + ")"
                                                        : "");
            if (p != ports_.end()) {
                ++p->second.failed_connections;
                if (p->second.last_error != why)
                    log::warn(kPortForwarderLog, "the guest refused a connection to port {}: {}", key.second,
                              why);
                p->second.last_error = why;
            }
            return;  // closing sock tells the client
        }
        if (p != ports_.end())
            ++p->second.connections;
        channel::splice(stream, std::move(*sock), [id = stream->id()](error_code e) {
            if (e)
                log::debug(kPortForwarderLog, "port stream {} ended: {}", id, e.message());
        });
    });
}

void PortForwarder::schedule_retry() {
    if (retry_scheduled_ || stopped_)
        return;
    retry_scheduled_ = true;
    retry_timer_.expires_after(opt_.retry_interval);
    retry_timer_.async_wait([this, alive = alive_](error_code ec) {
        if (!*alive || ec)
            return;
        retry_scheduled_ = false;
        retry_failed();
    });
}

void PortForwarder::retry_failed() {
    bool changed = false;
    for (auto& [key, port] : ports_) {
        bool failed = false;
        for (const auto& l : port.listeners) failed = failed || l.state == "failed";
        if (!failed)
            continue;
        const std::string before = port_state(port);
        open_listeners(port);
        changed = changed || port_state(port) != before;
    }
    if (changed)
        write_state();
}

std::string PortForwarder::port_state(const Port& port) {
    if (!forwarded_proto(port.proto))
        return "not_forwarded";
    std::size_t listening = 0, failed = 0;
    for (const auto& l : port.listeners) {
        listening += l.state == "listening";
        failed += l.state == "failed";
    }
    if (listening == 0)
        return "failed";
    return failed ? "partial" : "listening";
}

json PortForwarder::state() const {
    json ports = json::array();
    for (const auto& [key, p] : ports_) {
        json listeners = json::array();
        std::string error, hint;
        for (const auto& l : p.listeners) {
            json lj{{"address", l.address}, {"state", l.state}};
            if (!l.error.empty())
                lj["error"] = l.error;
            if (!l.hint.empty())
                lj["hint"] = l.hint;
            if (l.state == "failed" && error.empty()) {
                error = l.error;
                hint = l.hint;
            }
            listeners.push_back(std::move(lj));
        }
        if (error.empty() && !forwarded_proto(p.proto))
            error = p.last_error;
        json pj{{"proto", p.proto},
                {"host_port", p.host_port},
                {"container_port", p.container_port},
                {"container_name", p.container_name},
                {"container_id", p.container_id},
                {"target", p.target},
                {"state", port_state(p)},
                {"listeners", listeners},
                {"connections", p.connections},
                {"failed_connections", p.failed_connections}};
        if (p.udp) {
            // A UDP "connection" is a client flow (one stream to the guest).
            const auto& u = p.udp->stats();
            pj["connections"] = u.flows;
            pj["failed_connections"] = u.refused + u.capped;
            pj["udp"] = json{{"active_flows", p.udp->flows()},
                             {"max_flows", opt_.udp_max_flows},
                             {"idle_timeout_ms", opt_.udp_idle.count()},
                             {"expired_flows", u.expired},
                             {"capped", u.capped},
                             {"datagrams_in", u.datagrams_in},
                             {"datagrams_out", u.datagrams_out},
                             {"dropped", u.dropped}};
            if (!u.last_error.empty())
                pj["last_error"] = u.last_error;
        }
        if (!error.empty())
            pj["error"] = error;
        if (!hint.empty())
            pj["hint"] = hint;
        ports.push_back(std::move(pj));
    }
    json j{{"version", 1},
           {"pid", ::getpid()},
           {"updated", static_cast<long long>(std::time(nullptr))},
           {"guest", guest_},
           {"engine", engine_},
           {"snapshots", snapshots_},
           {"ports", ports}};
    if (!watch_error_.empty())
        j["error"] = watch_error_;
    return j;
}

std::vector<std::uint16_t> PortForwarder::listening_ports() const {
    std::vector<std::uint16_t> out;
    for (const auto& [key, p] : ports_) {
        for (const auto& l : p.listeners) {
            if (l.state == "listening") {
                out.push_back(key.second);
                break;
            }
        }
    }
    return out;
}

void PortForwarder::write_state() {
    if (opt_.state_file.empty() || stopped_)
        return;
    try {
        write_file_atomically(opt_.state_file.string(), state().dump(2) + "\n", 0644);
    } catch (const std::exception& e) {
        log::warn(kPortForwarderLog, "cannot write {}: {}", opt_.state_file.string(), e.what());
    }
}

}  // namespace cordon::hostagent

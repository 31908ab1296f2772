// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include "cordon/ports/engine_watch.hpp"

#include <array>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>

#include "cordon/log.hpp"
#include "cordon/percent_encode.hpp"
#include "cordon/rpc/codec.hpp"

namespace cordon::ports {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr const char* kEngineWatchLog = "ports";
constexpr std::size_t kMaxBody = 32u << 20;  // a list of many containers stays far below

bool valid_container_id(const std::string& id) {
    if (id.empty() || id.size() > 128)
        return false;
    for (char c : id) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
            return false;
    }
    return true;
}
}  // namespace

// One HTTP/1.0 GET over dockerd's unix socket. Streams the body to on_data, then calls
// on_end once (empty string = the body ended normally, else why it failed).
struct EngineWatcher::Request : std::enable_shared_from_this<EngineWatcher::Request> {
    using Socket = asio::local::stream_protocol::socket;
    Request(asio::io_context& io, std::string socket_path, std::string request_target)
        : socket(io), timer(io), path(std::move(socket_path)), target(std::move(request_target)) {}

    Socket socket;
    asio::steady_timer timer;
    std::string path, target;
    std::string request, head;
    std::array<char, 16 * 1024> buf{};
    bool headers_done = false, ended = false;
    int status = 0;
    std::function<void(int status)> on_headers;
    std::function<void(std::string_view)> on_data;
    std::function<void(const std::string& error)> on_end;

    void start(std::chrono::milliseconds timeout) {
        if (timeout.count() > 0) {
            timer.expires_after(timeout);
            timer.async_wait([self = shared_from_this(), timeout](error_code ec) {
                if (!ec)
                    self->finish("no answer from dockerd within " +
                                 std::to_string(timeout.count()) + " ms");
            });
        }
        socket.async_connect(
            asio::local::stream_protocol::endpoint(path),
            [self = shared_from_this()](error_code ec) {
                if (self->ended)
                    return;
                if (ec)
                    return self->finish("cannot connect to " + self->path + ": " + ec.message());
                self->send();
            });
    }

    void send() {
        request =
            "GET " + target + " HTTP/1.0\r\nHost: docker\r\nUser-Agent: cordon-guest-agent\r\n\r\n";
        asio::async_write(
            socket, asio::buffer(request), [self = shared_from_this()](error_code ec, std::size_t) {
                if (self->ended)
                    return;
                if (ec)
                    return self->finish("cannot send " + self->target + ": " + ec.message());
                self->read();
            });
    }

    void read() {
        socket.async_read_some(
            asio::buffer(buf), [self = shared_from_this()](error_code ec, std::size_t n) {
                if (self->ended)
                    return;
                if (ec == asio::error::eof) {
                    if (!self->headers_done)
                        return self->finish("dockerd closed the connection before answering " +
                                            self->target);
                    return self->finish("");
                }
                if (ec)
                    return self->finish("reading " + self->target + ": " + ec.message());
                std::string_view chunk(self->buf.data(), n);
                if (!self->headers_done) {
                    self->head.append(chunk);
                    const auto end = self->head.find("\r\n\r\n");
                    if (end == std::string::npos) {
                        if (self->head.size() > 64 * 1024)
                            return self->finish("dockerd's answer headers exceed 64 KiB");
                        return self->read();
                    }
                    // "HTTP/1.0 200 OK"
                    const auto sp = self->head.find(' ');
                    if (self->head.rfind("HTTP/1.", 0) != 0 || sp == std::string::npos)
                        return self->finish("dockerd's answer is not HTTP: " +
                                            self->head.substr(0, 40));
                    self->status = std::atoi(self->head.c_str() + sp + 1);
                    self->headers_done = true;
                    std::string rest = self->head.substr(end + 4);
                    self->head.clear();
                    if (self->on_headers)
                        self->on_headers(self->status);
                    if (self->ended)
                        return;
                    if (!rest.empty() && self->on_data)
                        self->on_data(rest);
                } else if (self->on_data) {
                    self->on_data(chunk);
                }
                if (!self->ended)
                    self->read();
            });
    }

    void finish(const std::string& error) {
        if (ended)
            return;
        ended = true;
        timer.cancel();
        error_code ignored;
        socket.close(ignored);
        auto end = std::move(on_end);
        on_headers = nullptr;
        on_data = nullptr;
        on_end = nullptr;
        if (end)
            end(error);
    }

    // Collects a whole body and hands it over with the status.
    static void get(
        asio::io_context& io, const std::string& path, const std::string& target,
        std::chrono::milliseconds timeout,
        std::function<void(const std::string& error, int status, std::string body)> done) {
        auto r = std::make_shared<Request>(io, path, target);
        auto body = std::make_shared<std::string>();
        std::weak_ptr<Request> weak = r;
        r->on_data = [body, weak](std::string_view d) {
            body->append(d);
            if (body->size() > kMaxBody) {
                if (auto s = weak.lock())
                    s->finish("dockerd's answer exceeds " + std::to_string(kMaxBody) + " bytes");
            }
        };
        r->on_end = [body, weak, done = std::move(done)](const std::string& error) {
            auto s = weak.lock();
            done(error, s ? s->status : 0, std::move(*body));
        };
        r->start(timeout);
    }
};

EngineWatcher::EngineWatcher(asio::io_context& io, WatchOptions options, ChangeHandler on_change)
    : io_(io),
      opt_(std::move(options)),
      on_change_(std::move(on_change)),
      retry_timer_(io),
      backoff_(opt_.min_retry),
      alive_(std::make_shared<bool>(true)) {}

EngineWatcher::~EngineWatcher() {
    *alive_ = false;
    stop();
}

void EngineWatcher::start() {
    if (!stopped_)
        return;
    stopped_ = false;
    connect_events();
}

void EngineWatcher::stop() {
    stopped_ = true;
    retry_timer_.cancel();
    if (auto e = std::move(events_))
        e->finish("stopped");
    state_ = "idle";
}

void EngineWatcher::connect_events() {
    if (stopped_)
        return;
    state_ = "connecting";
    const std::string filters =
        R"({"type":["container"],"event":["start","kill","die","stop","destroy"]})";
    auto r = std::make_shared<Request>(io_, opt_.dockerd_socket,
                                       "/events?filters=" + cordon::percent_encode(filters));
    events_ = r;
    auto lines = std::make_shared<rpc::LineDecoder>();
    std::weak_ptr<Request> weak = r;
    r->on_headers = [this, weak, alive = alive_](int status) {
        if (!*alive)
            return;
        auto self = weak.lock();
        if (!self || self != events_)
            return;
        if (status != 200) {
            self->finish("GET /events answered HTTP " + std::to_string(status));
            return;
        }
        on_events_headers(status, {});
    };
    r->on_data = [this, weak, lines, alive = alive_](std::string_view data) {
        if (!*alive)
            return;
        auto self = weak.lock();
        if (!self || self != events_)
            return;
        lines->feed(data);
        std::string line;
        for (;;) {
            const auto st = lines->next(line);
            if (st == rpc::LineDecoder::Status::need_more)
                return;
            if (st == rpc::LineDecoder::Status::too_long) {
                self->finish("an event line is longer than 1 MiB");
                return;
            }
            if (!line.empty())
                on_event_line(line);
            if (self != events_)
                return;
        }
    };
    r->on_end = [this, weak, alive = alive_](const std::string& error) {
        if (!*alive)
            return;
        auto self = weak.lock();
        if (self && self != events_)
            return;
        on_events_ended(error.empty() ? "dockerd ended the event stream" : error);
    };
    r->start(std::chrono::milliseconds(0));  // the event stream has no deadline
}

void EngineWatcher::on_events_headers(int, const std::string&) {
    // Subscribed: whatever happens from now on arrives as an event, so a list taken now
    // misses nothing.
    if (logged_unreachable_)
        log::info(kEngineWatchLog, "dockerd answers again: following its published ports");
    else
        log::info(kEngineWatchLog, "following dockerd's published ports");
    logged_unreachable_ = false;
    last_error_.clear();
    backoff_ = opt_.min_retry;
    ++resyncs_;
    list_running();
}

void EngineWatcher::list_running() {
    state_ = "syncing";
    syncing_ = true;
    touched_during_sync_.clear();
    const std::uint64_t epoch = ++sync_epoch_;
    Request::get(
        io_, opt_.dockerd_socket, "/containers/json", opt_.request_timeout,
        [this, epoch, alive = alive_](const std::string& error, int status, std::string body) {
            if (!*alive || stopped_ || epoch != sync_epoch_)
                return;
            syncing_ = false;
            if (!error.empty() || status != 200) {
                last_error_ = error.empty()
                                  ? "GET /containers/json answered HTTP " + std::to_string(status)
                                  : error;
                log::warn(kEngineWatchLog, "cannot list the running containers: {}", last_error_);
                // Start over: re-subscribe and list again.
                if (auto e = events_)
                    e->finish(last_error_);
                return;
            }
            auto j = json::parse(body, nullptr, false);
            if (!j.is_array()) {
                last_error_ = "dockerd's container list is not a JSON array";
                log::warn(kEngineWatchLog, "{}", last_error_);
                if (auto e = events_)
                    e->finish(last_error_);
                return;
            }
            state_ = "watching";
            bool changed = table_.replace_all(containers_from_list(j));
            // Containers that had events while the list was on its way: the list
            // may be older than those events, so ask again.
            auto touched = std::move(touched_during_sync_);
            touched_during_sync_.clear();
            for (const auto& id : touched) {
                changed = table_.remove_container(id) || changed;
                inspect(id);
            }
            apply(changed);
        });
}

void EngineWatcher::on_event_line(const std::string& line) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded()) {
        log::warn(kEngineWatchLog, "dockerd sent an event that is not JSON: {}", line.substr(0, 200));
        return;
    }
    auto ev = parse_event(j);
    if (!ev || ev->kind == EngineEvent::Kind::other)
        return;
    if (!valid_container_id(ev->id)) {
        log::warn(kEngineWatchLog, "ignoring an event with an odd container id: {}", ev->id.substr(0, 80));
        return;
    }
    log::debug(kEngineWatchLog, "event {} {} ({})", ev->action, ev->id.substr(0, 12), ev->name);
    ++generation_[ev->id];
    if (syncing_)
        touched_during_sync_.insert(ev->id);
    switch (ev->kind) {
        case EngineEvent::Kind::started:
        case EngineEvent::Kind::check:
            inspect(ev->id);
            break;
        case EngineEvent::Kind::stopped:
            apply(table_.remove_container(ev->id));
            if (ev->action == "destroy")
                generation_.erase(ev->id);
            break;
        case EngineEvent::Kind::other:
            break;
    }
}

void EngineWatcher::inspect(const std::string& id) {
    const std::uint64_t gen = generation_[id];
    Request::get(
        io_, opt_.dockerd_socket, "/containers/" + cordon::percent_encode(id) + "/json",
        opt_.request_timeout,
        [this, id, gen, alive = alive_](const std::string& error, int status, std::string body) {
            if (!*alive || stopped_)
                return;
            auto g = generation_.find(id);
            if (g != generation_.end() && g->second != gen)
                return;  // a newer event for this container decides (its own inspect follows)
            if (!error.empty()) {
                log::warn(kEngineWatchLog, "cannot inspect container {}: {}", id.substr(0, 12), error);
                return;
            }
            if (status == 404) {
                apply(table_.remove_container(id));
                return;
            }
            auto j = json::parse(body, nullptr, false);
            if (status != 200 || !j.is_object()) {
                log::warn(kEngineWatchLog, "inspecting container {} answered HTTP {}", id.substr(0, 12),
                          status);
                return;
            }
            const std::string name = j.contains("Name") && j["Name"].is_string()
                                         ? j["Name"].get<std::string>()
                                         : std::string();
            apply(table_.set_container(id, name, bindings_from_inspect(j)));
        });
}

void EngineWatcher::on_events_ended(const std::string& why) {
    events_.reset();
    syncing_ = false;
    ++sync_epoch_;
    if (stopped_)
        return;
    if (!logged_unreachable_) {
        log::info(kEngineWatchLog, "not following dockerd's ports: {} (retrying)", why);
        logged_unreachable_ = true;
    }
    last_error_ = why;
    state_ = "connecting";
    // dockerd is gone (or restarting): so is every docker-proxy.
    apply(table_.clear());
    retry_later();
}

void EngineWatcher::retry_later() {
    retry_timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, opt_.max_retry);
    retry_timer_.async_wait([this, alive = alive_](error_code ec) {
        if (*alive && !ec)
            connect_events();
    });
}

void EngineWatcher::apply(bool changed) {
    if (!changed)
        return;
    const auto& now = table_.forwards();
    Diff d = diff(last_, now);
    last_ = now;
    for (const auto& f : d.added)
        log::info(kEngineWatchLog, "published: {}/{} -> {}:{} ({})", f.proto, f.host_port, f.target_ip,
                  f.host_port, f.container_name);
    for (const auto& f : d.removed)
        log::info(kEngineWatchLog, "unpublished: {}/{} ({})", f.proto, f.host_port, f.container_name);
    if (on_change_ && !d.empty())
        on_change_(now, d);
}

}  // namespace cordon::ports

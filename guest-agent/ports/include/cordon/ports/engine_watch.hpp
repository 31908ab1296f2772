#pragma once
// Follows dockerd's published ports on the agent's io_context: subscribes to GET /events
// (container start/kill/die/stop/destroy) on dockerd's own socket, lists the running
// containers once subscribed (startup, and again after dockerd restarted: an isolation
// switch or a crash), inspects a container when it starts, and drops its ports when it
// dies. While dockerd is unreachable the set is empty and the watcher reconnects.
//
// The HTTP requests are HTTP/1.0, so dockerd answers without chunked framing and the
// body ends with the connection (the event stream is newline-delimited JSON).
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "cordon/ports/port_table.hpp"

namespace cordon::ports {

struct WatchOptions {
    std::string dockerd_socket = "/run/cordon/dockerd.sock";
    std::chrono::milliseconds min_retry{250};
    std::chrono::milliseconds max_retry{2000};
    std::chrono::milliseconds request_timeout{15'000};  // list and inspect
};

class EngineWatcher {
  public:
    // Called on the io thread whenever the set of forwards changed.
    using ChangeHandler = std::function<void(const std::vector<Forward>& now, const Diff& diff)>;

    EngineWatcher(boost::asio::io_context& io, WatchOptions options, ChangeHandler on_change);
    ~EngineWatcher();
    EngineWatcher(const EngineWatcher&) = delete;
    EngineWatcher& operator=(const EngineWatcher&) = delete;

    void start();
    void stop();

    const PortTable& table() const { return table_; }
    // "idle", "connecting", "syncing", "watching"
    const std::string& state() const { return state_; }
    const std::string& last_error() const { return last_error_; }
    std::uint64_t resyncs() const { return resyncs_; }

  private:
    struct Request;
    void connect_events();
    void on_events_headers(int status, const std::string& body_start);
    void on_event_line(const std::string& line);
    void on_events_ended(const std::string& why);
    void list_running();
    void inspect(const std::string& id);
    void apply(bool changed);
    void retry_later();

    boost::asio::io_context& io_;
    WatchOptions opt_;
    ChangeHandler on_change_;
    PortTable table_;
    std::vector<Forward> last_;
    boost::asio::steady_timer retry_timer_;
    std::chrono::milliseconds backoff_;
    std::shared_ptr<Request> events_;
    std::map<std::string, std::uint64_t> generation_;  // bumped by every event per container
    bool syncing_ = false;
    std::set<std::string> touched_during_sync_;
    std::uint64_t sync_epoch_ = 0;  // a list answer of an older epoch is ignored
    std::string state_ = "idle";
    std::string last_error_;
    bool logged_unreachable_ = false;
    bool stopped_ = true;
    std::uint64_t resyncs_ = 0;
    std::shared_ptr<bool> alive_;
};

}  // namespace cordon::ports

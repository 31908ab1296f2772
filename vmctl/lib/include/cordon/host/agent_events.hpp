#pragma once
// Events pushed by the guest agent (`events.watch`, see docs/PROTOCOL.md "events.watch")
// instead of polling `info`: engine state, isolation, dockerd restarts, shutdown. One
// thread per watcher keeps one connection to control.sock and reconnects when it drops
// (VM stopped or rebooting, host agent restarted).
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cordon/unique_fd.hpp"

namespace cordon::host {

struct AgentEvent {
    std::string type;     // "snapshot", "engine", "isolation", "dockerd_restart", "shutdown", "heartbeat"
    nlohmann::json data;  // the whole notification's params
};

class AgentEventWatcher {
  public:
    // Both handlers run on the watcher's thread. on_link(true, "") once a watch is
    // established (a "snapshot" event follows), on_link(false, why) when it is lost or
    // cannot be made (then it retries every `retry`; an agent without events.watch
    // every 30 s).
    using EventHandler = std::function<void(const AgentEvent&)>;
    using LinkHandler = std::function<void(bool up, const std::string& detail)>;

    AgentEventWatcher(std::filesystem::path control_socket, EventHandler on_event,
                      LinkHandler on_link = {},
                      std::chrono::milliseconds retry = std::chrono::seconds(2));
    ~AgentEventWatcher();  // stop() and join
    AgentEventWatcher(const AgentEventWatcher&) = delete;
    AgentEventWatcher& operator=(const AgentEventWatcher&) = delete;

    void stop();
    bool linked() const { return linked_; }
    std::uint64_t events() const { return events_; }

  private:
    void run();
    // One connection: returns why it ended.
    std::string watch_once(bool& unsupported);

    std::filesystem::path socket_;
    EventHandler on_event_;
    LinkHandler on_link_;
    std::chrono::milliseconds retry_;
    UniqueFd stop_fd_;  // eventfd
    std::atomic<bool> stopping_{false};
    std::atomic<bool> linked_{false};
    std::atomic<std::uint64_t> events_{0};
    std::thread thread_;
};

}  // namespace cordon::host

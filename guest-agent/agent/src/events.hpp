#pragma once
// The `events.watch` RPC: the host subscribes once and gets a notification per change
// instead of polling `info`. The call is never answered while the agent runs (it ends
// with the connection); each change is a notification on it:
//   {"method": "event", "params": {"type": T, "time": UNIX_S, ...}}
// T = "snapshot" (first, the whole state), "engine" (state/message changed),
// "isolation" (enabled changed, or a switch started/ended), "dockerd_restart",
// "shutdown", "heartbeat" (every heartbeat interval, so a host can tell a dead link).
// The state is sampled on the agent's thread every `interval` while someone watches
// (cheap: no I/O), so every place that changes it needs no hook of its own.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "cordon/rpc/rpc.hpp"

namespace cordon::agent {

struct EventState {
    std::string engine_state;
    std::string engine_message;
    std::optional<bool> isolation;  // unknown until the engine is set up
    bool switching = false;
    std::uint64_t dockerd_restarts = 0;
    std::string dockerd_state;
    bool shutting_down = false;
    nlohmann::json to_json() const;
};

class EventHub {
  public:
    using Sampler = std::function<EventState()>;
    EventHub(boost::asio::io_context& io, Sampler sampler,
             std::chrono::milliseconds interval = std::chrono::milliseconds(200),
             std::chrono::milliseconds heartbeat = std::chrono::seconds(15));
    ~EventHub();

    // The async handler of `events.watch`.
    void watch(std::shared_ptr<rpc::Call> call);
    // Samples now (e.g. right after a known change) instead of at the next tick.
    void poke();
    std::size_t watchers() const { return watchers_.size(); }

  private:
    void tick();
    void schedule();
    void publish(const nlohmann::json& event);

    boost::asio::io_context& io_;
    Sampler sampler_;
    std::chrono::milliseconds interval_, heartbeat_;
    boost::asio::steady_timer timer_;
    std::vector<std::shared_ptr<rpc::Call>> watchers_;
    std::optional<EventState> last_;
    std::chrono::steady_clock::time_point last_beat_{};
    bool scheduled_ = false;
    std::shared_ptr<bool> alive_;
};

}  // namespace cordon::agent

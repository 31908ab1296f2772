#include "events.hpp"

#include <ctime>

#include "cordon/log.hpp"

namespace cordon::agent {

namespace asio = boost::asio;
using nlohmann::json;

nlohmann::json EventState::to_json() const {
    return {{"engine", {{"state", engine_state}, {"message", engine_message}}},
            {"isolation", isolation ? json(*isolation) : json(nullptr)},
            {"switching", switching},
            {"dockerd", {{"state", dockerd_state}, {"restarts", dockerd_restarts}}},
            {"shutting_down", shutting_down}};
}

EventHub::EventHub(asio::io_context& io, Sampler sampler, std::chrono::milliseconds interval,
                   std::chrono::milliseconds heartbeat)
    : io_(io),
      sampler_(std::move(sampler)),
      interval_(interval),
      heartbeat_(heartbeat),
      timer_(io),
      alive_(std::make_shared<bool>(true)) {}

EventHub::~EventHub() {
    *alive_ = false;
    for (auto& w : watchers_) w->reply(json{{"ended", "the guest agent is stopping"}});
}

void EventHub::watch(std::shared_ptr<rpc::Call> call) {
    EventState now = sampler_();
    json snap = now.to_json();
    snap["type"] = "snapshot";
    snap["time"] = static_cast<std::int64_t>(std::time(nullptr));
    call->notify("event", snap);
    log::debug("events", "{}: watching events (request {})", call->peer(), call->id());
    watchers_.push_back(std::move(call));
    if (!last_)
        last_ = std::move(now);
    if (!scheduled_) {
        last_beat_ = std::chrono::steady_clock::now();
        schedule();
    }
}

void EventHub::poke() {
    if (!watchers_.empty())
        tick();
}

void EventHub::schedule() {
    scheduled_ = true;
    timer_.expires_after(interval_);
    timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
        if (!*alive || ec)
            return;
        scheduled_ = false;
        tick();
        if (!watchers_.empty())
            schedule();
    });
}

void EventHub::publish(const json& event) {
    for (auto& w : watchers_) w->notify("event", event);
}

void EventHub::tick() {
    // Watchers whose host went away.
    std::erase_if(watchers_, [](const std::shared_ptr<rpc::Call>& c) {
        if (!c->closed())
            return false;
        c->reply(json{{"ended", "connection closed"}});  // keeps the server from warning
        return true;
    });
    if (watchers_.empty()) {
        last_.reset();
        return;
    }
    EventState now = sampler_();
    const auto stamp = static_cast<std::int64_t>(std::time(nullptr));
    if (last_) {
        if (now.engine_state != last_->engine_state ||
            now.engine_message != last_->engine_message) {
            publish({{"type", "engine"},
                     {"time", stamp},
                     {"state", now.engine_state},
                     {"previous", last_->engine_state},
                     {"message", now.engine_message}});
        }
        if (now.isolation != last_->isolation || now.switching != last_->switching) {
            publish({{"type", "isolation"},
                     {"time", stamp},
                     {"enabled", now.isolation ? json(*now.isolation) : json(nullptr)},
                     {"switching", now.switching}});
        }
        if (now.dockerd_restarts > last_->dockerd_restarts) {
            publish({{"type", "dockerd_restart"},
                     {"time", stamp},
                     {"restarts", now.dockerd_restarts},
                     {"state", now.dockerd_state}});
        }
        if (now.shutting_down && !last_->shutting_down)
            publish({{"type", "shutdown"}, {"time", stamp}});
    }
    const auto t = std::chrono::steady_clock::now();
    if (t - last_beat_ >= heartbeat_) {
        last_beat_ = t;
        publish({{"type", "heartbeat"}, {"time", stamp}});
    }
    last_ = std::move(now);
}

}  // namespace cordon::agent

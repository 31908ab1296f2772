#pragma once
// The guest agent's own log, kept in a ring (the `logs {"service": "agent"}` RPC) as
// well as written to stderr (the console). Thread-safe: worker threads log too.
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "cordon/guest/log_ring.hpp"

namespace cordon::agent {

class AgentLog {
  public:
    explicit AgentLog(std::size_t capacity = 2000);
    ~AgentLog();  // stops capturing
    AgentLog(const AgentLog&) = delete;
    AgentLog& operator=(const AgentLog&) = delete;

    // The last `lines` lines (0: all kept), oldest first.
    std::vector<std::string> tail(std::size_t lines) const;
    std::uint64_t total() const;

  private:
    mutable std::mutex mutex_;
    guest::LogRing ring_;
};

}  // namespace cordon::agent

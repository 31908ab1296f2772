#include "agent_log.hpp"

#include "cordon/log.hpp"

namespace cordon::agent {

AgentLog::AgentLog(std::size_t capacity) : ring_(capacity) {
    log::set_tee([this](log::Level, std::string_view line) {
        std::lock_guard lock(mutex_);
        ring_.push(std::string(line));
    });
}

AgentLog::~AgentLog() {
    log::set_tee({});
}

std::vector<std::string> AgentLog::tail(std::size_t lines) const {
    std::lock_guard lock(mutex_);
    return ring_.tail(lines);
}

std::uint64_t AgentLog::total() const {
    std::lock_guard lock(mutex_);
    return ring_.total();
}

}  // namespace cordon::agent

#pragma once
// A small leveled logger to stderr, shared by every Cordon process.
// Lines look like: "2026-11-25T22:30:01.123Z warn channel: stream 7 reset: window overrun"
#include <fmt/format.h>
#include <cstddef>
#include <functional>
#include <string_view>

namespace cordon::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(Level level);
Level level();
// Parses "debug|info|warn|error"; returns false on anything else.
bool parse_level(std::string_view text, Level& out);
void write(Level level, std::string_view component, std::string_view message);
// Also hands every written line (with its time stamp, without the newline) to `tee`,
// e.g. the guest agent's own log ring. Called with the logger's lock held, from the
// thread that logs: keep it short. An empty function removes it.
void set_tee(std::function<void(Level level, std::string_view line)> tee);

// From now on, lines go to stderr through a queue of at most `max_lines` drained by a
// thread of its own, so that a slow or blocked stderr (the guest's serial console) never
// stalls the thread that logs; past the limit lines are dropped and counted, and the
// count is written once stderr catches up. 0 goes back to writing directly (after the
// queue has drained).
void set_stderr_queue(std::size_t max_lines);

template <typename... Args>
void debug(std::string_view component, fmt::format_string<Args...> fmt, Args&&... args) {
    if (level() <= Level::debug) write(Level::debug, component, fmt::format(fmt, std::forward<Args>(args)...));
}
template <typename... Args>
void info(std::string_view component, fmt::format_string<Args...> fmt, Args&&... args) {
    if (level() <= Level::info) write(Level::info, component, fmt::format(fmt, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(std::string_view component, fmt::format_string<Args...> fmt, Args&&... args) {
    if (level() <= Level::warn) write(Level::warn, component, fmt::format(fmt, std::forward<Args>(args)...));
}
template <typename... Args>
void error(std::string_view component, fmt::format_string<Args...> fmt, Args&&... args) {
    write(Level::error, component, fmt::format(fmt, std::forward<Args>(args)...));
}

}  // namespace cordon::log

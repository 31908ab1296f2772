#include "cordon/log.hpp"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <mutex>

namespace cordon::log {
namespace {
std::atomic<Level> g_level{Level::info};
std::mutex g_mutex;
constexpr std::string_view kNames[] = {"debug", "info", "warn", "error"};
std::function<void(Level, std::string_view)> g_tee;  // guarded by g_mutex
}  // namespace

void set_level(Level l) { g_level.store(l); }
Level level() { return g_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view text, Level& out) {
    for (int i = 0; i < 4; ++i) {
        if (text == kNames[i]) {
            out = static_cast<Level>(i);
            return true;
        }
    }
    return false;
}

void write(Level l, std::string_view component, std::string_view message) {
    timeval tv{};
    gettimeofday(&tv, nullptr);
    tm utc{};
    gmtime_r(&tv.tv_sec, &utc);
    char stamp[40];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    std::string line = fmt::format("{}.{:03}Z {} {}: {}\n", stamp, tv.tv_usec / 1000,
                                   kNames[static_cast<int>(l)], component, message);
    std::lock_guard lock(g_mutex);
    // One write per line so lines from several processes on one stderr do not interleave.
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
    if (g_tee)
        g_tee(l, std::string_view(line.data(), line.size() - 1));
}

void set_tee(std::function<void(Level, std::string_view)> tee) {
    std::lock_guard lock(g_mutex);
    g_tee = std::move(tee);
}

}  // namespace cordon::log

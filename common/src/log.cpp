#include "cordon/log.hpp"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace cordon::log {
namespace {
std::atomic<Level> g_level{Level::info};
std::mutex g_mutex;
constexpr std::string_view kNames[] = {"debug", "info", "warn", "error"};
std::function<void(Level, std::string_view)> g_tee;  // guarded by g_mutex

void write_stderr(const std::string& line) {
    // One write per line so lines from several processes on one stderr do not interleave.
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

// The queue behind set_stderr_queue: its own lock, so a blocked stderr never holds g_mutex.
class StderrQueue {
  public:
    explicit StderrQueue(std::size_t max) : max_(max), thread_([this] { drain(); }) {}
    ~StderrQueue() {
        {
            std::lock_guard g(m_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    void push(std::string line) {
        {
            std::lock_guard g(m_);
            if (lines_.size() >= max_) {
                ++dropped_;
                return;
            }
            lines_.push_back(std::move(line));
        }
        cv_.notify_one();
    }

  private:
    void drain() {
        std::unique_lock lk(m_);
        for (;;) {
            cv_.wait(lk, [this] { return stop_ || !lines_.empty() || dropped_; });
            if (lines_.empty() && !dropped_ && stop_) return;
            std::deque<std::string> batch;
            batch.swap(lines_);
            const std::uint64_t dropped = std::exchange(dropped_, 0);
            lk.unlock();
            for (const auto& l : batch) write_stderr(l);
            if (dropped)
                write_stderr(fmt::format("log: {} lines were dropped: stderr did not keep up\n",
                                         dropped));
            lk.lock();
        }
    }

    const std::size_t max_;
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::string> lines_;
    std::uint64_t dropped_ = 0;
    bool stop_ = false;
    std::thread thread_;  // last: starts once the rest is built
};

std::mutex g_queue_mutex;
std::unique_ptr<StderrQueue> g_queue;  // guarded by g_queue_mutex
}  // namespace

void set_stderr_queue(std::size_t max_lines) {
    std::unique_ptr<StderrQueue> old;
    {
        std::lock_guard g(g_queue_mutex);
        old = std::move(g_queue);
        if (max_lines) g_queue = std::make_unique<StderrQueue>(max_lines);
    }
    // `old` drains what it holds and stops here, outside the lock.
}

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
    {
        std::lock_guard lock(g_mutex);
        if (g_tee)
            g_tee(l, std::string_view(line.data(), line.size() - 1));
    }
    {
        std::lock_guard g(g_queue_mutex);
        if (g_queue) {
            g_queue->push(std::move(line));
            return;
        }
    }
    write_stderr(line);
}

void set_tee(std::function<void(Level, std::string_view)> tee) {
    std::lock_guard lock(g_mutex);
    g_tee = std::move(tee);
}

}  // namespace cordon::log

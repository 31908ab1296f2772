#include "cordon/loop_watchdog.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <fstream>
#include <sstream>

#include "cordon/log.hpp"

namespace cordon {
namespace {
using Clock = std::chrono::steady_clock;

std::string read_small(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        return {};
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
}  // namespace

LoopWatchdog::LoopWatchdog(boost::asio::io_context& io, Options options)
    : io_(io), opts_(std::move(options)) {
    thread_ = std::thread([this] { run(); });
}

LoopWatchdog::~LoopWatchdog() {
    {
        std::lock_guard lk(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

std::uint64_t LoopWatchdog::stalls() const {
    std::lock_guard lk(mutex_);
    return stalls_;
}

std::string LoopWatchdog::describe_thread(int tid) {
    const std::string dir = "/proc/self/task/" + std::to_string(tid);
    std::string out;
    const std::string wchan = read_small(dir + "/wchan");
    if (!wchan.empty() && wchan != "0")
        out = "wchan " + wchan;
    std::istringstream stack(read_small(dir + "/stack"));
    std::string frames;
    for (std::string line; std::getline(stack, line);) {
        // "[<0>] do_sys_poll+0x3f0/0x590": keep the symbol only.
        const auto sp = line.find("] ");
        std::string sym = sp == std::string::npos ? line : line.substr(sp + 2);
        if (const auto plus = sym.find('+'); plus != std::string::npos)
            sym.resize(plus);
        if (sym.empty())
            continue;
        frames += (frames.empty() ? "" : " < ") + sym;
    }
    if (!frames.empty())
        out += (out.empty() ? "" : "; ") + std::string("stack: ") + frames;
    const std::string stat = read_small(dir + "/stat");
    if (const auto rp = stat.rfind(')'); rp != std::string::npos && rp + 2 < stat.size())
        out += (out.empty() ? "" : "; ") + std::string("state ") + stat[rp + 2];
    return out.empty() ? "nothing readable in " + dir : out;
}

void LoopWatchdog::report(log::Level level, const std::string& line) const {
    if (opts_.also)
        opts_.also(line);  // first: it does not wait on the log's locks
    if (log::level() <= level)
        log::write(level, opts_.component, line);
}

void LoopWatchdog::run() {
    std::unique_lock lk(mutex_);
    while (!stop_) {
        const std::uint64_t before = probes_run_;
        const auto posted = Clock::now();
        auto counting_from = posted;  // moved on when the whole system was frozen (see below)
        boost::asio::post(io_, [this] {
            std::lock_guard g(mutex_);
            loop_tid_ = static_cast<int>(::gettid());
            ++probes_run_;
            cv_.notify_all();
        });
        // Wait for the probe; past the threshold, report once and keep waiting.
        bool reported = false;
        while (!stop_ && probes_run_ == before) {
            const auto waited = Clock::now() - counting_from;
            if (!reported && waited >= opts_.threshold && !io_.stopped()) {
                reported = true;
                ++stalls_;
                const int tid = loop_tid_;
                lk.unlock();
                const std::string line = fmt::format(
                    "the event loop has run nothing for {} ms (thread {}: {}): the channel's "
                    "keepalive and every stream wait for it",
                    std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(), tid,
                    tid ? describe_thread(tid) : "not known yet");
                report(log::Level::warn, line);
                lk.lock();
                continue;
            }
            if (reported && opts_.give_up && opts_.give_up_after.count() > 0 &&
                waited >= opts_.give_up_after && !io_.stopped()) {
                lk.unlock();
                const std::string line = fmt::format(
                    "the event loop has run nothing for {} ms: giving up on this process",
                    std::chrono::duration_cast<std::chrono::milliseconds>(waited).count());
                report(log::Level::error, line);
                opts_.give_up();
                lk.lock();
                opts_.give_up = nullptr;  // once
                continue;
            }
            const auto want =
                reported ? Clock::duration(opts_.probe_every) : opts_.threshold - waited;
            const auto slept_from = Clock::now();
            cv_.wait_for(lk, want);
            // This thread itself woke far too late: the whole machine did not run (a paused
            // VM, a starved vCPU), not only the loop. Such time is nobody's stall.
            if (Clock::now() - slept_from > want + opts_.threshold)
                counting_from += (Clock::now() - slept_from) - want;
        }
        if (stop_)
            break;
        if (reported) {
            const auto ms =
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - posted)
                    .count();
            lk.unlock();
            const std::string line = fmt::format("the event loop runs again after {} ms", ms);
            report(log::Level::warn, line);
            lk.lock();
        }
        cv_.wait_for(lk, opts_.probe_every, [this] { return stop_; });
    }
}

}  // namespace cordon

#pragma once
// Notices when an asio event loop stops running handlers, and says where its thread is
// stuck. Both agents answer the channel's keepalive PINGs from one event loop: a handler
// that blocks (a slow syscall, a filesystem in D state) silently starves every stream
// until the peer gives up. The watchdog makes that visible instead of silent: after
// `threshold` without progress it logs, once, the loop thread's kernel wait channel and
// stack (/proc/self/task/TID/{wchan,stack}; the stack needs root), and when the loop
// runs again, how long it was stalled.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "cordon/log.hpp"

namespace cordon {

class LoopWatchdog {
  public:
    struct Options {
        std::chrono::milliseconds threshold{5000};  // no handler ran for this long: a stall
        std::chrono::milliseconds probe_every{500};
        std::string component = "watchdog";
        // Called (from the watchdog thread) with each line it logs, e.g. to copy it to
        // the kernel log so that it reaches the serial console even when the agent's own
        // log cannot be read. May be empty.
        std::function<void(const std::string&)> also;
        // After this long without progress (0: never), `give_up` is called once from the
        // watchdog thread, e.g. to end a process that a supervisor restarts.
        std::chrono::milliseconds give_up_after{0};
        std::function<void()> give_up;
    };
    // Starts probing `io` at once; the loop's thread is learnt from the first probe.
    LoopWatchdog(boost::asio::io_context& io, Options options);
    ~LoopWatchdog();  // stops the thread
    LoopWatchdog(const LoopWatchdog&) = delete;
    LoopWatchdog& operator=(const LoopWatchdog&) = delete;

    std::uint64_t stalls() const;  // how many stalls were reported so far

    // Where a thread is blocked, from /proc: "wchan <name>; stack: <frames>" (parts it
    // cannot read are left out). Exposed for tests.
    static std::string describe_thread(int tid);

  private:
    void run();
    void report(log::Level level, const std::string& line) const;  // `also`, then the log

    boost::asio::io_context& io_;
    Options opts_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false;
    int loop_tid_ = 0;
    std::uint64_t probes_run_ = 0;
    std::uint64_t stalls_ = 0;
    std::thread thread_;
};

}  // namespace cordon

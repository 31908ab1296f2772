// vmctl shell: a root shell in the VM over the guest agent's "shell" service.
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "commands.hpp"
#include "cordon/host/shell_client.hpp"
#include "cordon/unique_fd.hpp"

namespace vmctl {

using namespace cordon::host;
using nlohmann::json;

namespace {

int g_wake_fd = -1;
std::atomic<int> g_resized{0};
std::atomic<int> g_stop_signal{0};

extern "C" void on_signal(int sig) {
    const int saved = errno;
    if (sig == SIGWINCH)
        g_resized = 1;
    else
        g_stop_signal = sig;
    const char b = 1;
    if (g_wake_fd >= 0) [[maybe_unused]]
        auto n = ::write(g_wake_fd, &b, 1);
    errno = saved;
}

// The local terminal in raw mode for as long as this lives: every byte (Ctrl-C, Ctrl-D,
// arrows) goes to the VM's terminal, which does its own line editing and signals.
class RawTerminal {
  public:
    explicit RawTerminal(int fd) : fd_(fd) {
        if (::tcgetattr(fd_, &saved_) != 0)
            return;
        termios raw = saved_;
        ::cfmakeraw(&raw);
        if (::tcsetattr(fd_, TCSADRAIN, &raw) == 0)
            active_ = true;
    }
    ~RawTerminal() {
        if (active_)
            ::tcsetattr(fd_, TCSADRAIN, &saved_);
    }
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;

  private:
    int fd_;
    termios saved_{};
    bool active_ = false;
};

// Installs the handlers for the session and puts the old ones back afterwards.
class SignalScope {
  public:
    SignalScope(int wake_fd, bool include_int) {
        g_wake_fd = wake_fd;
        struct sigaction sa {};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        for (int sig : {SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT}) {
            if (sig == SIGINT && !include_int)
                continue;
            struct sigaction old {};
            if (::sigaction(sig, &sa, &old) == 0)
                saved_.push_back({sig, old});
        }
    }
    ~SignalScope() {
        for (auto& [sig, old] : saved_) ::sigaction(sig, &old, nullptr);
        g_wake_fd = -1;
    }

  private:
    std::vector<std::pair<int, struct sigaction>> saved_;
};

void terminal_size(int fd, std::uint16_t& rows, std::uint16_t& cols) {
    winsize ws{};
    if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        rows = ws.ws_row;
        cols = ws.ws_col;
    }
}

}  // namespace

CLI::App* ShellCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "shell",
        "Open a root shell in the VM (not in a container) for debugging, through the guest "
        "agent's shell service. Interactive on a terminal (window size follows yours); with "
        "piped input it reads commands from stdin (`echo id | vmctl shell`). Exits with the "
        "shell's status.");
    app_->add_option("command", argv_, "Run this command instead of the shell (put it after --)");
    app_->add_flag("-t,--tty", tty_, "Ask for a terminal even when stdin is not one");
    app_->add_flag("-T,--no-tty", no_tty_, "No terminal even when stdin is one");
    app_->prefix_command(false);
    return app_;
}

int ShellCommand::run(Context& ctx) {
    if (ctx.out().json()) {
        return ctx.out().error("vmctl shell is interactive and has no --json output", Exit::usage,
                               "usage", "use `vmctl exec --json -- CMD` for a JSON result");
    }
    Vm vm = ctx.vm();
    // The same checks (and exit codes) as every agent command: defined, running, reachable.
    vm.call_agent("ping", json::object(), std::chrono::seconds(10));

    ShellRequest req;
    req.tty = !no_tty_ && (tty_ || (::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO)));
    req.argv = argv_;
    if (const char* term = std::getenv("TERM"); term && req.tty)
        req.term = term;
    const int tty_fd = ::isatty(STDIN_FILENO) ? STDIN_FILENO : -1;
    if (req.tty && tty_fd >= 0)
        terminal_size(tty_fd, req.rows, req.cols);

    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
        cordon::throw_errno("cannot create a pipe", "vmctl shell");
    cordon::UniqueFd wake_r(p[0]), wake_w(p[1]);
    req.wake_fd = wake_r.get();
    req.on_wake = [&]() {
        ShellRequest::Wake w;
        if (const int sig = g_stop_signal.exchange(0); sig != 0) {
            w.stop = 128 + sig;
            return w;
        }
        if (g_resized.exchange(0) && tty_fd >= 0)
            terminal_size(tty_fd, w.rows, w.cols);
        return w;
    };
    g_resized = 0;
    g_stop_signal = 0;
    // Raw mode only when the local stdin is a terminal we hand over; restored on every
    // way out of this scope (return, exception, a signal turned into a return).
    std::optional<RawTerminal> raw;
    if (req.tty && tty_fd >= 0)
        raw.emplace(tty_fd);
    SignalScope signals(wake_w.get(), /*include_int=*/!raw.has_value());
    return run_shell(vm.paths().shell_socket, req);
}

}  // namespace vmctl

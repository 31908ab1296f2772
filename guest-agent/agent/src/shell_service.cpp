// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include "shell_service.hpp"

#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>

#include "cordon/error.hpp"
#include "cordon/log.hpp"
#include "cordon/shell/protocol.hpp"
#include "cordon/unique_fd.hpp"

extern char** environ;

namespace cordon::agent {

namespace asio = boost::asio;
using boost::system::error_code;
using shell::MsgType;
using Fd = asio::posix::stream_descriptor;

namespace {

constexpr const char* kShellServiceLog = "shell";

// argv/envp as C arrays, built before fork() (the child may only call async-signal-safe
// functions).
struct CStrings {
    explicit CStrings(const std::vector<std::string>& v) : strings(v) {
        for (auto& s : strings) ptrs.push_back(s.data());
        ptrs.push_back(nullptr);
    }
    std::vector<std::string> strings;
    std::vector<char*> ptrs;
};

[[noreturn]] void child_fail(int report_fd) {
    const int e = errno;
    [[maybe_unused]] auto n = ::write(report_fd, &e, sizeof e);
    ::_exit(127);
}

class ShellSession : public std::enable_shared_from_this<ShellSession> {
  public:
    ShellSession(asio::io_context& io, std::shared_ptr<channel::Stream> stream, ShellOptions opt)
        : io_(io), stream_(std::move(stream)), opt_(std::move(opt)), grace_(io) {}

    ~ShellSession() {
        if (pid_ > 0 && !reaped_) {
            ::kill(-pid_, SIGKILL);
            ::kill(pid_, SIGKILL);
            int st = 0;
            while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
            }
        }
    }

    void start() {
        stream_->accept();
        if (!opt_.refusal.empty()) {
            fail(opt_.refusal);
            return;
        }
        read_stream();
    }

  private:
    void read_stream() {
        stream_->async_read_some(asio::buffer(rbuf_),
                                 [self = shared_from_this()](error_code ec, std::size_t n) {
                                     self->on_stream_data(ec, n);
                                 });
    }

    void on_stream_data(error_code ec, std::size_t n) {
        if (ec) {
            hang_up(ec == asio::error::eof ? "the host closed the shell"
                                           : "the shell stream ended: " + ec.message());
            return;
        }
        decoder_.feed(std::string_view(rbuf_.data(), n));
        while (auto m = decoder_.next()) inbox_.push_back(std::move(*m));
        // Messages before a bad header still count; the error ends the session after them.
        if (!decoder_.error().empty())
            bad_ = decoder_.error();
        process();
    }

    // Handles queued messages in order; waits for each write to the shell's input, so a
    // slow shell slows the host down (the stream's window) instead of filling memory.
    void process() {
        while (!inbox_.empty()) {
            shell::Message m = std::move(inbox_.front());
            inbox_.pop_front();
            if (!started_ && m.type != MsgType::start) {
                fail("the first shell message must be START");
                return;
            }
            switch (m.type) {
                case MsgType::start:
                    if (started_) {
                        fail("START sent twice");
                        return;
                    }
                    started_ = true;
                    if (!spawn(m.payload))
                        return;
                    break;
                case MsgType::stdin_data: {
                    if (!input_ || m.payload.empty())
                        break;
                    auto data = std::make_shared<std::string>(std::move(m.payload));
                    asio::async_write(
                        *input_, asio::buffer(*data),
                        [self = shared_from_this(), data](error_code ec, std::size_t) {
                            if (ec) {
                                // The shell closed its input (or exited): drop it.
                                self->close_input();
                            }
                            self->process();
                        });
                    return;
                }
                case MsgType::stdin_eof:
                    if (tty_ && input_) {
                        // A terminal has no EOF of its own: the line discipline's ^D.
                        auto data = std::make_shared<std::string>("\x04");
                        asio::async_write(*input_, asio::buffer(*data),
                                          [self = shared_from_this(), data](
                                              error_code, std::size_t) { self->process(); });
                        return;
                    }
                    close_input();
                    break;
                case MsgType::resize: {
                    std::uint16_t rows = 0, cols = 0;
                    if (!shell::decode_resize(m.payload, rows, cols)) {
                        fail("RESIZE needs 4 bytes");
                        return;
                    }
                    set_size(rows, cols);
                    break;
                }
                default:
                    fail("the host sent a message only the guest sends");
                    return;
            }
        }
        if (!bad_.empty()) {
            fail("bad shell message: " + bad_);
            return;
        }
        if (!closing_)
            read_stream();
    }

    void set_size(std::uint16_t rows, std::uint16_t cols) {
        if (!tty_ || master_fd_ < 0 || rows == 0 || cols == 0)
            return;
        winsize ws{};
        ws.ws_row = rows;
        ws.ws_col = cols;
        ::ioctl(master_fd_, TIOCSWINSZ, &ws);
    }

    bool spawn(const std::string& payload) {
        shell::StartRequest start;
        try {
            start = shell::parse_start(payload);
        } catch (const Error& e) {
            fail(e.failure());
            return false;
        }
        tty_ = start.tty;
        std::vector<std::string> argv = std::move(start.argv);
        if (argv.empty()) {
            argv = {opt_.shell};
            if (tty_)
                argv.push_back("-l");
        }
        std::vector<std::string> env = {
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=" + opt_.home,
            "USER=root",
            "LOGNAME=root",
            "SHELL=" + opt_.shell,
            "PS1=" + opt_.prompt};
        std::string term = start.term;
        if (term.empty())
            term = tty_ ? "xterm" : "dumb";
        env.push_back("TERM=" + term);
        CStrings cargv(argv), cenv(env);

        int report[2];
        if (::pipe2(report, O_CLOEXEC) != 0) {
            fail("cannot create a pipe: " + errno_string(errno));
            return false;
        }
        UniqueFd report_r(report[0]), report_w(report[1]);
        UniqueFd master, slave, in_r, in_w, out_r, out_w, err_r, err_w;
        if (tty_) {
            int m = -1, s = -1;
            winsize ws{};
            ws.ws_row = start.rows;
            ws.ws_col = start.cols;
            if (::openpty(&m, &s, nullptr, nullptr, &ws) != 0) {
                fail("cannot open a pseudo-terminal: " + errno_string(errno));
                return false;
            }
            master = UniqueFd(m);
            slave = UniqueFd(s);
            ::fcntl(m, F_SETFD, FD_CLOEXEC);
            ::fcntl(s, F_SETFD, FD_CLOEXEC);
        } else {
            int p[2];
            auto make = [&](UniqueFd& r, UniqueFd& w) {
                if (::pipe2(p, O_CLOEXEC) != 0)
                    return false;
                r = UniqueFd(p[0]);
                w = UniqueFd(p[1]);
                return true;
            };
            if (!make(in_r, in_w) || !make(out_r, out_w) || !make(err_r, err_w)) {
                fail("cannot create pipes: " + errno_string(errno));
                return false;
            }
        }

        const pid_t pid = ::fork();
        if (pid < 0) {
            fail("cannot fork: " + errno_string(errno));
            return false;
        }
        if (pid == 0) {
            // The child: a session of its own (the terminal becomes its controlling tty).
            sigset_t all;
            sigemptyset(&all);
            ::sigprocmask(SIG_SETMASK, &all, nullptr);
            for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
            ::setsid();
            if (tty_) {
                if (::ioctl(slave.get(), TIOCSCTTY, 0) != 0)
                    child_fail(report_w.get());
                for (int fd = 0; fd < 3; ++fd)
                    if (::dup2(slave.get(), fd) < 0)
                        child_fail(report_w.get());
            } else {
                if (::dup2(in_r.get(), 0) < 0 || ::dup2(out_w.get(), 1) < 0 ||
                    ::dup2(err_w.get(), 2) < 0)
                    child_fail(report_w.get());
            }
            if (::chdir(opt_.home.c_str()) != 0) [[maybe_unused]]
                auto r = ::chdir("/");
            ::execve(cargv.ptrs[0], cargv.ptrs.data(), cenv.ptrs.data());
            ::execvpe(cargv.ptrs[0], cargv.ptrs.data(), cenv.ptrs.data());
            child_fail(report_w.get());
        }
        pid_ = pid;
        report_w.reset();
        slave.reset();
        in_r.reset();
        out_w.reset();
        err_w.reset();
        int child_errno = 0;
        ssize_t got;
        do {
            got = ::read(report_r.get(), &child_errno, sizeof child_errno);
        } while (got < 0 && errno == EINTR);
        if (got == sizeof child_errno) {
            int st = 0;
            ::waitpid(pid_, &st, 0);
            reaped_ = true;
            fail("cannot run " + argv[0] + " in the VM: " + errno_string(child_errno));
            return false;
        }
        log::info(kShellServiceLog, "stream {}: started {} (pid {}, {})", stream_->id(), argv[0], pid_,
                  tty_ ? "terminal" : "pipes");

        const long pfd = ::syscall(SYS_pidfd_open, pid_, 0);
        if (pfd < 0) {
            fail("cannot watch the shell (pidfd_open): " + errno_string(errno));
            return false;
        }
        pidfd_ = std::make_unique<Fd>(io_, static_cast<int>(pfd));
        if (tty_) {
            master_fd_ = master.get();
            const int dup = ::fcntl(master.get(), F_DUPFD_CLOEXEC, 0);
            input_ = std::make_unique<Fd>(io_, master.release());
            stdout_ = std::make_unique<Fd>(io_, dup);
        } else {
            input_ = std::make_unique<Fd>(io_, in_w.release());
            stdout_ = std::make_unique<Fd>(io_, out_r.release());
            stderr_ = std::make_unique<Fd>(io_, err_r.release());
        }
        read_output(*stdout_, MsgType::stdout_data, obuf_);
        if (stderr_)
            read_output(*stderr_, MsgType::stderr_data, ebuf_);
        pidfd_->async_wait(Fd::wait_read, [self = shared_from_this()](error_code ec) {
            if (!ec)
                self->on_exit();
        });
        return true;
    }

    void read_output(Fd& fd, MsgType type, std::array<char, 16384>& buf) {
        ++readers_;
        read_more(fd, type, buf);
    }

    void read_more(Fd& fd, MsgType type, std::array<char, 16384>& buf) {
        fd.async_read_some(asio::buffer(buf), [self = shared_from_this(), &fd, type, &buf](
                                                  error_code ec, std::size_t n) {
            if (ec || self->closing_) {
                // EOF on a pipe; EIO on a terminal whose last user closed it.
                --self->readers_;
                self->maybe_finish();
                return;
            }
            self->send(shell::encode(type, std::string_view(buf.data(), n)),
                       [self, &fd, type, &buf] {
                           if (!self->closing_)
                               self->read_more(fd, type, buf);
                       });
        });
    }

    void on_exit() {
        int st = 0;
        pid_t r;
        do {
            r = ::waitpid(pid_, &st, WNOHANG);
        } while (r < 0 && errno == EINTR);
        if (r == 0) {
            // Not yet reapable (spurious wake-up): wait again.
            pidfd_->async_wait(Fd::wait_read, [self = shared_from_this()](error_code ec) {
                if (!ec)
                    self->on_exit();
            });
            return;
        }
        reaped_ = true;
        status_ = st;
        exited_ = true;
        // Output still in the pipes or the terminal arrives first; a background process
        // that keeps the terminal open must not hold the exit status back for long.
        grace_.expires_after(std::chrono::milliseconds(500));
        grace_.async_wait([self = shared_from_this()](error_code ec) {
            if (ec)
                return;
            self->grace_over_ = true;
            self->maybe_finish();
        });
        maybe_finish();
    }

    void maybe_finish() {
        if (closing_ || !exited_ || finished_ || (readers_ > 0 && !grace_over_))
            return;
        finished_ = true;
        shell::ExitReport x;
        x.exit_code = WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
        x.signal = WIFSIGNALED(status_) ? WTERMSIG(status_) : 0;
        const std::string report = shell::encode_exit(x);
        log::info(kShellServiceLog, "stream {}: the shell ended ({})", stream_->id(), report);
        send(shell::encode(MsgType::exit, report), [self = shared_from_this()] {
            self->stream_->shutdown_send();
            self->close_all();
        });
    }

    void fail(const std::string& message) {
        log::warn(kShellServiceLog, "stream {}: {}", stream_->id(), message);
        if (finished_)
            return;
        finished_ = true;
        send(shell::encode(MsgType::error, message), [self = shared_from_this()] {
            self->stream_->shutdown_send();
            self->close_all();
        });
    }

    // The host went away (or broke the protocol): end the shell and everything it started.
    void hang_up(const std::string& why) {
        if (pid_ > 0 && !reaped_) {
            log::info(kShellServiceLog, "stream {}: {}: hanging up the shell", stream_->id(), why);
            ::kill(-pid_, SIGHUP);
            ::kill(-pid_, SIGCONT);
            auto self = shared_from_this();
            grace_.expires_after(std::chrono::seconds(2));
            grace_.async_wait([self](error_code ec) {
                if (ec || self->reaped_)
                    return;
                ::kill(-self->pid_, SIGKILL);
            });
        }
        closing_ = true;
        close_all();
    }

    void close_input() {
        if (input_ && !tty_) {
            error_code ec;
            input_->close(ec);
            input_.reset();
        }
    }

    void close_all() {
        closing_ = true;
        error_code ec;
        if (!tty_)
            close_input();
        if (stdout_)
            stdout_->close(ec);
        if (stderr_)
            stderr_->close(ec);
        if (tty_ && input_) {
            input_->close(ec);
            master_fd_ = -1;
        }
        // A finished shell's leftovers (background jobs) end with it.
        if (pid_ > 0 && reaped_)
            ::kill(-pid_, SIGHUP);
    }

    void send(std::string bytes, std::function<void()> then) {
        outbox_.push_back({std::move(bytes), std::move(then)});
        write_next();
    }

    void write_next() {
        if (writing_ || outbox_.empty())
            return;
        writing_ = true;
        stream_->async_write(asio::buffer(outbox_.front().first),
                             [self = shared_from_this()](error_code ec, std::size_t) {
                                 self->writing_ = false;
                                 auto then = std::move(self->outbox_.front().second);
                                 self->outbox_.pop_front();
                                 if (ec) {
                                     self->outbox_.clear();
                                     self->hang_up("cannot write to the host: " + ec.message());
                                     return;
                                 }
                                 if (then)
                                     then();
                                 self->write_next();
                             });
    }

    asio::io_context& io_;
    std::shared_ptr<channel::Stream> stream_;
    ShellOptions opt_;
    shell::Decoder decoder_;
    std::string bad_;  // the decoder's error, once it has one
    std::array<char, 16384> rbuf_{};
    std::array<char, 16384> obuf_{};
    std::array<char, 16384> ebuf_{};
    std::deque<shell::Message> inbox_;
    std::deque<std::pair<std::string, std::function<void()>>> outbox_;
    bool writing_ = false;
    bool started_ = false;
    bool tty_ = false;
    bool exited_ = false;
    bool finished_ = false;
    bool grace_over_ = false;
    bool closing_ = false;
    bool reaped_ = false;
    int status_ = 0;
    int readers_ = 0;
    pid_t pid_ = -1;
    int master_fd_ = -1;
    std::unique_ptr<Fd> input_, stdout_, stderr_, pidfd_;
    asio::steady_timer grace_;
};

}  // namespace

void serve_shell(asio::io_context& io, std::shared_ptr<channel::Stream> stream,
                 ShellOptions options) {
    std::make_shared<ShellSession>(io, std::move(stream), std::move(options))->start();
}

}  // namespace cordon::agent

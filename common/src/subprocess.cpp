#include "cordon/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "cordon/error.hpp"

extern char** environ;

namespace cordon {
namespace {

using Clock = std::chrono::steady_clock;

void set_cloexec_nonblock(int fd) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

std::vector<std::string> build_env(const std::vector<std::string>& overrides) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        std::string entry(*e);
        const auto name = entry.substr(0, entry.find('='));
        bool replaced = false;
        for (const auto& o : overrides) replaced |= o.substr(0, o.find('=')) == name;
        if (!replaced) env.push_back(std::move(entry));
    }
    env.insert(env.end(), overrides.begin(), overrides.end());
    return env;
}

}  // namespace

std::string find_program(const std::string& name) {
    if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
    const char* path = ::getenv("PATH");
    std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    std::size_t start = 0;
    while (start <= p.size()) {
        const auto end = p.find(':', start);
        std::string dir = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (!dir.empty()) {
            std::string full = dir + "/" + name;
            struct stat st{};
            if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(full.c_str(), X_OK) == 0) return full;
        }
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return "";
}

Child Child::spawn(const std::vector<std::string>& argv, const SpawnOptions& opts) {
    if (argv.empty()) throw Error("cannot start a program: no program given");
    const std::string program = find_program(argv[0]);
    if (program.empty()) throw Error("cannot start " + argv[0] + ": not found on PATH or not executable", argv[0],
                                     "install it (scripts/bootstrap installs what Cordon needs)");
    int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
    auto close_all = [&] {
        for (int fd : {out[0], out[1], err[0], err[1], in[0], in[1]})
            if (fd >= 0) ::close(fd);
    };
    if ((opts.capture_output && (::pipe(out) != 0 || ::pipe(err) != 0)) || (opts.stdin_data && ::pipe(in) != 0)) {
        close_all();
        throw_errno("cannot create pipes for", argv[0]);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (opts.stdin_data) {
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    } else {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    if (opts.capture_output) {
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    }
    for (int fd : {out[0], out[1], err[0], err[1], in[0], in[1]})
        if (fd > 2) posix_spawn_file_actions_addclose(&fa, fd);
    if (!opts.working_dir.empty()) posix_spawn_file_actions_addchdir_np(&fa, opts.working_dir.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (opts.new_session) flags |= POSIX_SPAWN_SETSID;
    posix_spawnattr_setflags(&attr, flags);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);

    std::vector<std::string> env = build_env(opts.env_overrides);
    std::vector<char*> envp, args;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (auto& a : argv_copy) args.push_back(a.data());
    args.push_back(nullptr);

    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, program.c_str(), &fa, &attr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        close_all();
        throw Error("cannot start " + argv[0] + ": " + errno_string(rc), program);
    }
    Child c;
    c.pid_ = pid;
    if (opts.capture_output) {
        ::close(out[1]);
        ::close(err[1]);
        c.out_fd_ = out[0];
        c.err_fd_ = err[0];
        set_cloexec_nonblock(c.out_fd_);
        set_cloexec_nonblock(c.err_fd_);
    }
    if (opts.stdin_data) {
        ::close(in[0]);
        c.in_fd_ = in[1];
        set_cloexec_nonblock(c.in_fd_);
        c.stdin_data_ = *opts.stdin_data;
    }
    return c;
}

Child::Child(Child&& o) noexcept { *this = std::move(o); }

Child& Child::operator=(Child&& o) noexcept {
    if (this != &o) {
        if (pid_ > 0 && !status_) terminate(std::chrono::milliseconds(0));
        close_fds();
        pid_ = std::exchange(o.pid_, -1);
        out_fd_ = std::exchange(o.out_fd_, -1);
        err_fd_ = std::exchange(o.err_fd_, -1);
        in_fd_ = std::exchange(o.in_fd_, -1);
        stdin_data_ = std::move(o.stdin_data_);
        stdin_written_ = o.stdin_written_;
        status_ = std::exchange(o.status_, std::nullopt);
    }
    return *this;
}

Child::~Child() {
    if (pid_ > 0 && !status_) terminate(std::chrono::milliseconds(1000));
    close_fds();
}

void Child::close_fds() {
    for (int* fd : {&out_fd_, &err_fd_, &in_fd_}) {
        if (*fd >= 0) ::close(*fd);
        *fd = -1;
    }
}

bool Child::running() {
    if (pid_ <= 0 || status_) return false;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) status_ = st;
    return !status_;
}

ProcessResult Child::wait(std::chrono::milliseconds timeout) {
    ProcessResult res;
    const auto deadline = Clock::now() + timeout;
    char buf[65536];
    while (out_fd_ >= 0 || err_fd_ >= 0 || in_fd_ >= 0) {
        pollfd fds[3];
        int n = 0;
        if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
        if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
        if (in_fd_ >= 0) fds[n++] = {in_fd_, POLLOUT, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            res.timed_out = true;
            break;
        }
        const int pr = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(std::min<long long>(left, 200)));
        if (pr < 0 && errno != EINTR) break;
        for (int i = 0; i < n; ++i) {
            if (fds[i].revents == 0) continue;
            if (fds[i].fd == in_fd_) {
                const ssize_t w = ::write(in_fd_, stdin_data_.data() + stdin_written_, stdin_data_.size() - stdin_written_);
                if (w > 0) stdin_written_ += static_cast<std::size_t>(w);
                if (w < 0 && errno != EAGAIN && errno != EINTR) stdin_written_ = stdin_data_.size();
                if (stdin_written_ >= stdin_data_.size()) {
                    ::close(in_fd_);
                    in_fd_ = -1;
                }
                continue;
            }
            const ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
            if (r > 0) {
                (fds[i].fd == out_fd_ ? res.out : res.err).append(buf, static_cast<std::size_t>(r));
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                int& which = fds[i].fd == out_fd_ ? out_fd_ : err_fd_;
                ::close(which);
                which = -1;
            }
        }
        // A child that exits but leaves a grandchild holding the pipes must not hang us.
        if (out_fd_ < 0 && err_fd_ < 0) break;
    }
    while (!res.timed_out && running()) {
        if (Clock::now() >= deadline) {
            res.timed_out = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (res.timed_out) terminate(std::chrono::milliseconds(0));
    close_fds();
    if (status_) {
        if (WIFEXITED(*status_)) res.exit_code = WEXITSTATUS(*status_);
        if (WIFSIGNALED(*status_)) res.signal = WTERMSIG(*status_);
    }
    return res;
}

void Child::terminate(std::chrono::milliseconds grace) {
    if (pid_ <= 0 || !running()) return;
    if (grace.count() > 0) {
        ::kill(pid_, SIGTERM);
        const auto deadline = Clock::now() + grace;
        while (Clock::now() < deadline) {
            if (!running()) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = st;
}

pid_t Child::detach() {
    close_fds();
    status_ = 0;  // not ours to reap any more
    return std::exchange(pid_, -1);
}

ProcessResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout, const SpawnOptions& opts) {
    Child c = Child::spawn(argv, opts);
    return c.wait(timeout);
}

}  // namespace cordon

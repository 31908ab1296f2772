#include "cordon/guest/child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "cordon/error.hpp"

extern char** environ;

namespace cordon::guest {

std::string describe_wait_status(int status) {
    if (WIFEXITED(status))
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char* name = strsignal(sig);
        return "killed by signal " + std::to_string(sig) + " (" + (name ? name : "?") + ")";
    }
    return "wait status " + std::to_string(status);
}

namespace {

std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string entry = *e;
        const auto name = entry.substr(0, entry.find('=') + 1);
        bool replaced = false;
        for (const auto& x : extra) {
            if (x.compare(0, name.size(), name) == 0)
                replaced = true;
        }
        if (!replaced)
            env.push_back(std::move(entry));
    }
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
}

}  // namespace

ChildProcess ChildProcess::spawn(const SpawnOptions& options) {
    if (options.argv.empty() || options.argv[0].empty()) {
        throw Error("cannot start a process", "(empty command line)", "give the program to run");
    }
    // Everything the child needs is prepared before fork(): after it only async-signal-safe
    // calls are made.
    std::vector<std::string> env = merged_environment(options.env);
    std::vector<char*> argv;
    for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    // The exec error (if any) comes back through a close-on-exec pipe.
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0)
        throw_errno("cannot create a pipe", options.argv[0]);
    UniqueFd err_read(errpipe[0]);
    UniqueFd err_write(errpipe[1]);

    int devnull = -1;
    if (options.output_fd < 0) {
        devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0)
            throw_errno("cannot open /dev/null", options.argv[0]);
    }
    UniqueFd devnull_fd(devnull);
    const int out = options.output_fd >= 0 ? options.output_fd : devnull;
    const bool search_path = options.argv[0].find('/') == std::string::npos;
    UniqueFd cgroup_procs;
    if (!options.cgroup.empty()) {
        const std::string procs = options.cgroup + "/cgroup.procs";
        cgroup_procs = UniqueFd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
        if (!cgroup_procs)
            throw_errno("cannot open the cgroup to start '" + options.argv[0] + "' in", procs,
                        "cgroup2 must be mounted on /sys/fs/cgroup");
    }
    const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
    // What failed in the child, through the pipe: the step and its errno.
    enum Step : int { kJoinCgroup = 1, kChdir = 2, kExec = 3 };
    auto fail = [&err_write](int step) {
        const int report[2] = {step, errno};
        [[maybe_unused]] auto n = ::write(err_write.get(), report, sizeof report);
        _exit(127);
    };

    const pid_t pid = ::fork();
    if (pid < 0)
        throw_errno("cannot fork", options.argv[0]);
    if (pid == 0) {
        if (cgroup_procs && ::write(cgroup_procs.get(), "0", 1) != 1)
            fail(kJoinCgroup);
        if (cwd && ::chdir(cwd) != 0)
            fail(kChdir);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, nullptr);
        ::signal(SIGPIPE, SIG_DFL);
        if (options.new_session)
            setsid();
        const int in = devnull >= 0 ? devnull : ::open("/dev/null", O_RDONLY);
        if (in >= 0)
            dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        if (search_path) {
            // execvpe uses the PATH of the merged environment.
            execvpe(argv[0], argv.data(), envp.data());
        } else {
            execve(argv[0], argv.data(), envp.data());
        }
        fail(kExec);
    }
    err_write.reset();
    ChildProcess child;
    child.pid_ = pid;
    child.group_leader_ = options.new_session;
    int report[2] = {0, 0};
    ssize_t n;
    do {
        n = ::read(err_read.get(), report, sizeof report);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof report)) {
        child.wait();
        if (report[0] == kJoinCgroup)
            throw Error("cannot start '" + options.argv[0] + "' in the cgroup " + options.cgroup +
                            ": " + errno_string(report[1]),
                        options.argv[0],
                        "check that the cgroup exists and has no controllers that refuse it");
        if (report[0] == kChdir)
            throw Error("cannot start '" + options.argv[0] + "' in " + options.cwd + ": " +
                            errno_string(report[1]),
                        options.argv[0], "create the folder");
        throw Error("cannot start '" + options.argv[0] + "': " + errno_string(report[1]),
                    options.argv[0], "check that the program exists and is executable");
    }
    return child;
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      group_leader_(o.group_leader_),
      reaped_(std::exchange(o.reaped_, false)),
      status_(o.status_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
    if (this != &o) {
        kill_and_reap();
        pid_ = std::exchange(o.pid_, -1);
        group_leader_ = o.group_leader_;
        reaped_ = std::exchange(o.reaped_, false);
        status_ = o.status_;
    }
    return *this;
}

ChildProcess::~ChildProcess() {
    kill_and_reap();
}

void ChildProcess::kill_and_reap() noexcept {
    if (pid_ > 0 && !reaped_) {
        signal(SIGKILL, group_leader_);
        signal(SIGKILL, false);
        wait();
    }
    pid_ = -1;
}

UniqueFd ChildProcess::open_pidfd() const {
    const long fd = ::syscall(SYS_pidfd_open, pid_, 0);
    if (fd < 0)
        throw_errno("cannot open a pidfd", "pid " + std::to_string(pid_),
                    "needs Linux 5.3 or later");
    const int ifd = static_cast<int>(fd);
    ::fcntl(ifd, F_SETFD, FD_CLOEXEC);
    return UniqueFd(ifd);
}

bool ChildProcess::signal(int sig, bool group) const noexcept {
    if (pid_ <= 0 || reaped_)
        return false;
    return ::kill(group && group_leader_ ? -pid_ : pid_, sig) == 0;
}

bool ChildProcess::try_reap() noexcept {
    if (pid_ <= 0)
        return false;
    if (reaped_)
        return true;
    int status = 0;
    pid_t r;
    do {
        r = ::waitpid(pid_, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid_) {
        reaped_ = true;
        status_ = status;
    } else if (r < 0) {
        reaped_ = true;  // not our child any more (ECHILD): nothing to wait for
    }
    return reaped_;
}

int ChildProcess::wait() noexcept {
    if (pid_ <= 0 || reaped_)
        return status_;
    int status = 0;
    pid_t r;
    do {
        r = ::waitpid(pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    reaped_ = true;
    if (r == pid_)
        status_ = status;
    return status_;
}

}  // namespace cordon::guest

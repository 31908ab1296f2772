#include "cordon/host/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cordon/error.hpp"
#include "cordon/unique_fd.hpp"

namespace fs = std::filesystem;

namespace cordon::host {
namespace {

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
    std::vector<char*> out;
    for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
    out.push_back(nullptr);
    return out;
}

// In a forked child: only async-signal-safe calls until exec.
[[noreturn]] void exec_child(const std::vector<char*>& args) {
    ::execvp(args[0], args.data());
    const char msg[] = "cannot execute the program\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
}

}  // namespace

pid_t spawn_detached(const std::vector<std::string>& argv, const fs::path& log_file) {
    if (argv.empty())
        throw cordon::Error("spawn_detached: empty command");
    UniqueFd log(::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!log)
        throw_errno("cannot open the log file", log_file.string());
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0)
        throw_errno("cannot create a pipe");
    UniqueFd rd(pipefd[0]), wr(pipefd[1]);
    auto args = c_argv(argv);
    pid_t child = ::fork();
    if (child < 0)
        throw_errno("cannot fork", argv[0]);
    if (child == 0) {
        ::setsid();
        pid_t grandchild = ::fork();
        if (grandchild != 0) {
            [[maybe_unused]] auto n = ::write(wr.get(), &grandchild, sizeof grandchild);
            ::_exit(grandchild < 0 ? 1 : 0);
        }
        int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, STDIN_FILENO);
        ::dup2(log.get(), STDOUT_FILENO);
        ::dup2(log.get(), STDERR_FILENO);
        ::signal(SIGPIPE, SIG_DFL);
        ::signal(SIGHUP, SIG_IGN);  // detached from the terminal that started it
        exec_child(args);
    }
    wr.reset();
    pid_t pid = -1;
    ssize_t n;
    do {
        n = ::read(rd.get(), &pid, sizeof pid);
    } while (n < 0 && errno == EINTR);
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (n != sizeof pid || pid <= 0)
        throw cordon::Error("cannot start a detached process", argv[0]);
    return pid;
}

bool process_alive(pid_t pid, const std::string& name) {
    if (pid <= 0)
        return false;
    if (::kill(pid, 0) != 0 && errno == ESRCH)
        return false;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line))
        return false;
    // pid (comm) state ...
    auto open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos)
        return false;
    if (close + 2 < line.size() && line[close + 2] == 'Z') {
        // A zombie leader is dead only once every thread is: the others may still be
        // exiting, and the process's files (its listening sockets) close with the last.
        std::error_code ec;
        for (const auto& t : std::filesystem::directory_iterator(
                 "/proc/" + std::to_string(pid) + "/task", ec)) {
            std::ifstream ts(t.path() / "stat");
            std::string tl;
            if (!std::getline(ts, tl))
                continue;
            const auto tc = tl.rfind(')');
            if (tc != std::string::npos && tc + 2 < tl.size() && tl[tc + 2] != 'Z' &&
                tl[tc + 2] != 'X')
                return true;
        }
        return false;
    }
    if (name.empty())
        return true;
    std::string comm = line.substr(open + 1, close - open - 1);
    return comm == name.substr(0, 15);  // comm is cut at 15 characters
}

pid_t read_pid_file(const fs::path& file) {
    std::ifstream in(file);
    long long pid = 0;
    if (!(in >> pid) || pid <= 0 || pid > 4194304)
        return 0;
    return static_cast<pid_t>(pid);
}

}  // namespace cordon::host

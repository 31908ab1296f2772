#include "direct_docker_socket.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace cordon::e2e {

DirectDockerSocket::DirectDockerSocket(const VmEnvironment& vm)
    : path_(vm.base_dir() + "/dockerd-direct.sock") {
    const std::string cli = vm.guest_docker_cli();
    argv_ = {vmctl_path(), "shell", "-T", "--", cli, "-H", "unix:///run/cordon/dockerd.sock",
             "system", "dial-stdio"};
    // The child's environment: this process's, with the harness's on top.
    for (char** e = environ; *e; ++e) {
        const std::string kv = *e;
        const std::string name = kv.substr(0, kv.find('='));
        const bool overridden = std::any_of(vm.env().begin(), vm.env().end(), [&](const auto& o) {
            return o.compare(0, name.size() + 1, name + "=") == 0;
        });
        if (!overridden)
            envp_.push_back(kv);
    }
    envp_.insert(envp_.end(), vm.env().begin(), vm.env().end());

    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof addr.sun_path)
        throw std::runtime_error("socket path too long: " + path_);
    std::strcpy(addr.sun_path, path_.c_str());
    ::unlink(path_.c_str());
    listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener_ || ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_.get(), 64) != 0)
        throw std::runtime_error("cannot listen on " + path_ + ": " + std::strerror(errno));
    acceptor_ = std::jthread([this](std::stop_token stop) { accept_loop(stop); });
}

DirectDockerSocket::~DirectDockerSocket() {
    acceptor_.request_stop();
    if (acceptor_.joinable())
        acceptor_.join();
    {
        std::lock_guard lock(children_mutex_);
        for (pid_t pid : children_)
            ::kill(pid, SIGTERM);
    }
    reap(true);
    ::unlink(path_.c_str());
}

void DirectDockerSocket::accept_loop(std::stop_token stop) {
    while (!stop.stop_requested()) {
        pollfd p{listener_.get(), POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) {
            reap(false);
            continue;
        }
        const UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (client)
            serve(client.get());
        reap(false);
    }
}

void DirectDockerSocket::serve(int client) {
    std::vector<char*> argv;
    for (auto& a : argv_) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : envp_) envp.push_back(e.data());
    envp.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        // Only async-signal-safe calls between fork and exec.
        ::dup2(client, 0);
        ::dup2(client, 1);
        const int null = ::open("/dev/null", O_WRONLY);
        if (null >= 0)
            ::dup2(null, 2);
        ::execve(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    if (pid > 0) {
        std::lock_guard lock(children_mutex_);
        children_.push_back(pid);
    }
}

void DirectDockerSocket::reap(bool wait_all) {
    std::lock_guard lock(children_mutex_);
    for (auto it = children_.begin(); it != children_.end();) {
        int status = 0;
        const pid_t r = ::waitpid(*it, &status, wait_all ? 0 : WNOHANG);
        if (r == *it || (r < 0 && errno == ECHILD)) {
            it = children_.erase(it);
        } else {
            ++it;
        }
    }
}

}  // namespace cordon::e2e

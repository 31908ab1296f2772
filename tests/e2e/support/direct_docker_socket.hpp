#pragma once
// dockerd's own socket in the VM, reached from the host with the policy proxy bypassed:
// the baseline that Docker clients are compared with (issue 20). Each connection to the
// host socket runs `vmctl shell -T -- docker -H unix:///run/cordon/dockerd.sock system
// dial-stdio` (the host's static CLI, copied into the VM) with the connection as its
// stdin and stdout, as inetd would. It needs the VM shell (root in the VM, as any `vmctl
// shell` user has), so it adds no access: a test tool, not a product path.
#include <sys/types.h>

#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "cordon/unique_fd.hpp"
#include "cordon_e2e.hpp"

namespace cordon::e2e {

class DirectDockerSocket {
  public:
    // Listens at `vm`'s base folder; throws std::runtime_error when it cannot.
    explicit DirectDockerSocket(const VmEnvironment& vm);
    ~DirectDockerSocket();  // stops accepting, ends the relays still running
    DirectDockerSocket(const DirectDockerSocket&) = delete;
    DirectDockerSocket& operator=(const DirectDockerSocket&) = delete;

    // "unix:///..." for DOCKER_HOST.
    std::string docker_host() const { return "unix://" + path_; }

  private:
    void accept_loop(std::stop_token stop);
    void serve(int client);
    void reap(bool wait_all);

    std::string path_;
    std::vector<std::string> argv_;
    std::vector<std::string> envp_;
    UniqueFd listener_;
    std::mutex children_mutex_;
    std::vector<pid_t> children_;
    std::jthread acceptor_;
};

}  // namespace cordon::e2e

#pragma once
// The locked-down Docker socket: a unix-socket HTTP/1.1 proxy in front of dockerd that
// asks the Policy about every request (see docs/POLICY.md). Runs on the caller's
// single-threaded io_context; all I/O is asynchronous (C++20 coroutines).
#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "cordon/proxy/audit.hpp"
#include "cordon/proxy/policy.hpp"

namespace cordon::policy {

struct ProxyOptions {
    std::string listen_path;            // clients (the host agent bridges the user here)
    std::string upstream_path;          // dockerd's own socket
    std::string container_listen_path;  // optional: socket bound into allowlisted containers
    mode_t listen_mode = 0660;
    // Container root is an unprivileged VM user (userns-remap, or a range of its own per
    // container): it reaches the socket only through the bind, so the file is open to all.
    mode_t container_listen_mode = 0666;
    std::size_t max_head = 64 * 1024;
    std::size_t io_buffer = 256 * 1024;  // per direction and connection
    // Move large bodies with splice(2) once decided (off: copy through io_buffer; for
    // comparison in bench-proxy, or a kernel without splice for unix sockets).
    bool splice_bodies = true;
};

struct ProxyStats {
    std::uint64_t connections = 0;
    std::uint64_t requests = 0;
    std::uint64_t denied = 0;
    std::uint64_t tunnels = 0;
    std::uint64_t hijacks = 0;  // tunnels opened by dockerd's 200 raw-stream hijack
    std::uint64_t bad_requests = 0;
};

class PolicyProxy {
  public:
    // The audit sink must outlive every use of the io_context that runs this proxy.
    PolicyProxy(boost::asio::io_context& io, std::string listen_path, std::string upstream_path,
                PolicyConfig config, AuditSink& audit);
    PolicyProxy(boost::asio::io_context& io, ProxyOptions options, PolicyConfig config,
                AuditSink& audit);
    ~PolicyProxy();
    PolicyProxy(const PolicyProxy&) = delete;
    PolicyProxy& operator=(const PolicyProxy&) = delete;

    // Creates the listening socket(s) (replacing a stale socket file) and starts
    // accepting. Throws cordon::Error (what, which path, how to fix).
    void start();
    // Stops accepting and closes every connection.
    void stop();

    const Policy& policy() const;
    // Throws cordon::Error when the admin locked isolation on.
    void set_isolation(bool on);
    ProxyStats stats() const;

    struct Core;

  private:
    std::shared_ptr<Core> core_;
};

}  // namespace cordon::policy

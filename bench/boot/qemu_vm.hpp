#pragma once
// Boots the Cordon image in plain QEMU (no libvirt) and talks to its guest agent through
// the host side of the channel, like the host agent does. Used by the image integration
// test and the boot benchmark. Synchronous API over a private io_context.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cordon/channel/session.hpp"
#include "cordon/guest/child_process.hpp"
#include "cordon/rpc/codec.hpp"

namespace cordon::harness {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The image folder the build wrote (CMake passes it in), or $CORDON_IMAGE_DIR.
std::string image_dir();
// Empty when the image is complete; otherwise what is missing.
std::string image_missing(const std::string& dir);

struct VmConfig {
    std::string image_dir;
    std::string work_dir;                  // sockets and console log go here
    std::optional<std::string> data_disk;  // raw image attached with serial cordon-data
    std::string accel = "tcg";
    int memory_mib = 1024;
    int cpus = 2;
    std::string extra_cmdline;
};

class QemuVm {
  public:
    explicit QemuVm(VmConfig config);
    ~QemuVm();  // kills QEMU if it still runs
    QemuVm(const QemuVm&) = delete;
    QemuVm& operator=(const QemuVm&) = delete;

    void start();  // spawns QEMU; start_time() is now
    Clock::time_point start_time() const { return t0_; }

    // Connects to the channel socket and completes the handshake. Throws cordon::Error on timeout.
    void connect(std::chrono::milliseconds timeout);
    // One RPC on the "rpc" stream. Throws rpc::CallError on an error reply, cordon::Error on
    // timeout.
    json call(const std::string& method, const json& params = json::object(),
              std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // GET /_ping through a new "docker" stream; returns the HTTP status line, or throws
    // cordon::Error (stream refused/reset, timeout).
    std::string docker_get(const std::string& path,
                           std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // Polls `info` until the init has reported on the data disk; returns that info.
    json wait_data_disk(std::chrono::milliseconds timeout);
    // Polls `info` until engine.ready (or throws with the last info on timeout).
    json wait_engine_ready(std::chrono::milliseconds timeout);

    // Serves a unix socket on the host at `path`; each connection is spliced to a new
    // "docker" stream, as the host agent does (for the real docker CLI).
    void serve_docker_socket(const std::string& path);
    // Serves one fixed HTTP answer (`body`) on 127.0.0.1; returns the port. Inside the VM
    // (QEMU user networking) the host's loopback is 10.0.2.2.
    int serve_http_on_loopback(const std::string& body);
    struct CommandResult {
        int status = -1;  // wait status; -1 on timeout (the command was killed)
        std::string output;
    };
    // Runs a host command while the channel keeps serving (stdout+stderr captured).
    CommandResult run_host_command(const std::vector<std::string>& argv,
                                   std::chrono::milliseconds timeout);

    // Waits for QEMU to exit; returns its wait status, or nullopt on timeout.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    std::string console() const;  // the serial console log so far
    int pid() const { return qemu_.pid(); }

  private:
    bool run_until(const std::function<bool()>& done, Clock::time_point deadline);
    VmConfig cfg_;
    std::string socket_path_;
    std::string console_path_;
    boost::asio::io_context io_;
    guest::ChildProcess qemu_;
    Clock::time_point t0_{};
    std::shared_ptr<channel::Session> session_;
    std::shared_ptr<channel::Stream> rpc_stream_;
    rpc::LineDecoder decoder_;
    std::uint64_t next_id_ = 1;
    std::shared_ptr<void> docker_acceptor_;
    std::shared_ptr<void> http_acceptor_;
};

// Makes a blank (sparse, all zeros) raw disk of `bytes`.
void make_blank_disk(const std::string& path, std::uint64_t bytes);

}  // namespace cordon::harness

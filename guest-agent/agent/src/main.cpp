#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "agent.hpp"
#include "cordon/error.hpp"
#include "cordon/log.hpp"
#include "cordon/loop_watchdog.hpp"
#include "cordon/unique_fd.hpp"

namespace {
// One line to the kernel log (warning level), which the serial console carries to the
// host's console.log even when nothing else gets through.
void write_kernel_log(const std::string& line) {
    cordon::UniqueFd fd(::open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return;
    const std::string msg = "<4>cordon-guest-agent: " + line + "\n";
    (void)!::write(fd.get(), msg.data(), msg.size());
}
}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"cordon-guest-agent: the Cordon VM's agent (channel, RPC, engine supervision)"};
    cordon::agent::AgentOptions opts;
    std::string level = "info";
    bool no_engine = false;
    bool no_power_off = false;
    app.add_option("--port", opts.port, "virtio-serial port of the channel")->capture_default_str();
    app.add_option("--docker-socket", opts.docker_socket,
                   "unix socket that \"docker\" streams are connected to (the policy proxy)")
        ->capture_default_str();
    app.add_option("--dockerd-socket", opts.dockerd_socket,
                   "dockerd's own socket (readiness probe)")
        ->capture_default_str();
    app.add_option("--run-dir", opts.run_dir,
                   "runtime state written by the init (boot-times, data-disk)")
        ->capture_default_str();
    app.add_option("--state-dir", opts.state_dir, "persistent state on the data disk")
        ->capture_default_str();
    app.add_option("--containerd", opts.containerd, "containerd program")->capture_default_str();
    app.add_option("--dockerd", opts.dockerd, "dockerd program")->capture_default_str();
    app.add_flag("--no-engine", no_engine, "do not start containerd and dockerd");
    bool no_proxy = false;
    app.add_flag(
        "--no-proxy", no_proxy,
        "do not serve the policy proxy (\"docker\" streams then go to --docker-socket as is)");
    app.add_flag("--no-power-off", no_power_off,
                 "shutdown stops the services but does not power off");
    app.add_option("--log-level", level, "debug, info, warn or error")->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    opts.engine = !no_engine;
    opts.proxy = !no_proxy;
    {
        // cordon.noengine on the kernel command line: debugging without containerd/dockerd.
        std::ifstream cmdline("/proc/cmdline");
        std::string word;
        while (cmdline >> word) {
            if (word == "cordon.noengine")
                opts.engine = false;
        }
    }
    opts.power_off = !no_power_off;
    cordon::log::Level l;
    if (!cordon::log::parse_level(level, l)) {
        std::cerr << "cordon-guest-agent: --log-level must be debug, info, warn or error\n";
        return 2;
    }
    cordon::log::set_level(l);
    std::signal(SIGPIPE, SIG_IGN);
    // stderr is the serial console, which can be slow: the event loop must never wait on it.
    cordon::log::set_stderr_queue(4096);
    // Per-connection buffers (64-256 KiB) always come from mmap and go back to the system
    // when the connection ends: glibc's dynamic threshold would otherwise keep them in
    // the heap after a burst of connections (issue 9: no memory growth under load).
    ::mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    try {
        boost::asio::io_context io;
        cordon::agent::Agent agent(io, opts);
        agent.start();
        // A stalled event loop is reported on the console too: when the loop is stuck,
        // the agent's own log cannot be read over the channel.
        cordon::LoopWatchdog::Options wo;
        wo.component = "agent";
        wo.also = write_kernel_log;
        // Stuck for a minute: end the process. init starts a new agent at once, which takes
        // over the running engine (no container is lost) and makes the host reconnect; a
        // stuck agent would otherwise leave the Docker socket dead until the VM restarts.
        wo.give_up_after = std::chrono::seconds(60);
        wo.give_up = [] { std::abort(); };
        cordon::LoopWatchdog watchdog(io, wo);
        io.run();
    } catch (const std::exception& e) {
        cordon::log::error("agent", "{}", e.what());
        cordon::log::set_stderr_queue(0);  // drains
        return 1;
    }
    cordon::log::set_stderr_queue(0);
    return 0;
}

// cordon-hostagent: the per-VM host agent (see host_agent.hpp). Started detached by
// `vmctl start`, stopped with SIGTERM by `vmctl stop`. Logs to stderr.
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <malloc.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstring>

#include "cordon/error.hpp"
#include "cordon/log.hpp"
#include "cordon/loop_watchdog.hpp"
#include "host_agent.hpp"
#include "vm_pause_probe.hpp"

int main(int argc, char** argv) {
    cordon::hostagent::Options opt;
    std::string level = "info";
    CLI::App app{
        "cordon-hostagent: bridges docker.sock and control.sock to the Cordon VM's channel"};
    app.add_option("--vm", opt.vm_name, "VM name (for logs)");
    app.add_option("--channel", opt.channel_socket, "The unix socket QEMU serves for the channel")
        ->required();
    app.add_option("--docker-socket", opt.docker_socket, "Where to serve the Docker API (0600)")
        ->required();
    app.add_option("--control-socket", opt.control_socket, "Where to serve the RPC (0600)")
        ->required();
    app.add_option("--shell-socket", opt.shell_socket,
                   "Where to serve the VM's shell (0600; default: shell.sock beside the control "
                   "socket)");
    app.add_option("--pid-file", opt.pid_file, "The pid file")->required();
    app.add_option("--ports-file", opt.ports_file,
                   "Where to write the published ports' state (default: ports.json beside the "
                   "control socket)");
    app.add_flag("!--no-ports", opt.forward_ports, "Do not forward published ports");
    int clock_sync_s = static_cast<int>(opt.clock_sync_interval.count() / 1000);
    app.add_option("--clock-sync-interval", clock_sync_s,
                   "Seconds between pushes of the host's time to the guest (0: never)")
        ->capture_default_str()
        ->check(CLI::Range(0, 86400));
    int trim_ms = static_cast<int>(opt.trim_heap_when_idle.count());
    app.add_option("--trim-heap-when-idle", trim_ms,
                   "Milliseconds without streams opening or ending after which freed memory "
                   "goes back to the system (0: never)")
        ->capture_default_str()
        ->check(CLI::Range(0, 3'600'000));
    std::string libvirt_uri;
    app.add_option("--libvirt-uri", libvirt_uri,
                   "libvirt URI of the VM (--vm): while libvirt says it is paused, the channel "
                   "waits for it instead of timing out (empty: no such check)");
    app.add_option("--log-level", level, "debug, info, warn or error")->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    opt.clock_sync_interval = std::chrono::seconds(clock_sync_s);
    opt.trim_heap_when_idle = std::chrono::milliseconds(trim_ms);
    if (!libvirt_uri.empty())
        opt.vm_paused = cordon::hostagent::libvirt_pause_probe(libvirt_uri, opt.vm_name);
    if (opt.shell_socket.empty())
        opt.shell_socket = opt.control_socket.parent_path() / "shell.sock";
    cordon::log::Level l;
    if (cordon::log::parse_level(level, l))
        cordon::log::set_level(l);
    ::signal(SIGPIPE, SIG_IGN);
    // Per-connection buffers (64-256 KiB) always come from mmap and go back to the system
    // when the connection ends: glibc's dynamic threshold would otherwise keep them in
    // the heap after a burst of connections (issue 9: no memory growth under load).
    ::mallopt(M_MMAP_THRESHOLD, 64 * 1024);

    boost::asio::io_context io;
    cordon::hostagent::HostAgent agent(io, opt);
    boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec)
            return;
        agent.stop(std::string("signal ") + ::strsignal(sig));
        io.stop();
    });
    try {
        agent.start();
    } catch (const cordon::Error& e) {
        cordon::log::error("hostagent", "{}", e.what());
        agent.stop("start failed");
        return 3;
    }
    {
        cordon::LoopWatchdog::Options wo;
        wo.component = "hostagent";
        cordon::LoopWatchdog watchdog(io, wo);
        io.run();
    }
    agent.stop("event loop ended");
    return 0;
}

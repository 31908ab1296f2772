// bench-load: the Docker API under load through the host socket of a running VM.
// Prints requests/s, p50/p99 per request kind, and the file descriptors and RSS of
// cordon-hostagent (host) and cordon-guest-agent (guest, via `vmctl exec`) before and
// after. bench/load/run starts a VM for it.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cordon/rpc/rpc.hpp"
#include "cordon/subprocess.hpp"
#include "docker_load.hpp"

namespace {

struct Usage {
    cordon::load::ProcessUsage host, guest;
    long guest_heap = -1;  // bytes in use in the guest agent's heap (its "memory" RPC)
};

Usage usage(const std::string& vmctl, const std::string& docker_socket) {
    Usage u;
    if (vmctl.empty())
        return u;
    using namespace std::chrono_literals;
    try {
        // control.sock lies beside docker.sock (vmctl/lib paths.cpp).
        auto c = cordon::rpc::BlockingClient::connect(
            (std::filesystem::path(docker_socket).parent_path() / "control.sock").string());
        u.guest_heap = c.call("memory", nlohmann::json::object(), 60s).value("heap_in_use", -1L);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-load: the guest agent's memory RPC: %s\n", e.what());
    }
    auto st = cordon::run({vmctl, "status", "--json"}, 60s);
    auto j = nlohmann::json::parse(st.out, nullptr, false);
    if (j.is_object() && j.contains("host_agent"))
        if (pid_t pid = j["host_agent"].value("pid", 0); pid > 0)
            u.host = cordon::load::usage_of(pid);
    auto g = cordon::run(
        {vmctl, "exec", "--", "sh", "-c", cordon::load::usage_command("cordon-guest-agent")}, 120s);
    u.guest = cordon::load::parse_usage(g.out);
    return u;
}

void print(const char* when, const Usage& u) {
    std::printf(
        "%-7s cordon-hostagent fds=%d rss_kib=%ld | cordon-guest-agent fds=%d rss_kib=%ld "
        "heap_in_use=%ld\n",
        when, u.host.fds, u.host.rss_kib, u.guest.fds, u.guest.rss_kib, u.guest_heap);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"bench-load: concurrent Docker API clients through the host agent's socket"};
    cordon::load::Options o;
    std::string socket, vmctl;
    double seconds = 60, warmup = 10;
    app.add_option("--socket", socket, "the host's docker.sock (path or unix://path)")->required();
    app.add_option("--container", o.container, "a running container that prints lines")->required();
    app.add_option("--vmctl", vmctl, "vmctl binary (with the VM's environment) for agent usage");
    app.add_option("--clients", o.clients,
                   "concurrent clients (every 10th follows logs, "
                   "every 10th events)");
    app.add_option("--seconds", seconds, "measured run");
    app.add_option("--warmup", warmup, "warm-up run before the first usage sample");
    CLI11_PARSE(app, argc, argv);
    o.socket = socket.rfind("unix://", 0) == 0 ? socket.substr(7) : socket;

    print("idle", usage(vmctl, o.socket));
    if (warmup > 0) {
        o.duration = std::chrono::milliseconds(static_cast<long>(warmup * 1000));
        auto w = cordon::load::run(o);
        std::printf("warm-up: %s", cordon::load::describe(w).c_str());
    }
    // Connections wind down and the agents' idle heap trim (1 s after the last stream) runs.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    auto before = usage(vmctl, o.socket);
    print("before", before);
    o.duration = std::chrono::milliseconds(static_cast<long>(seconds * 1000));
    auto r = cordon::load::run(o);
    std::printf("bench-load: %d clients for %.0f s through %s\n%s", o.clients, seconds,
                o.socket.c_str(), cordon::load::describe(r).c_str());
    std::this_thread::sleep_for(std::chrono::seconds(3));
    auto after = usage(vmctl, o.socket);
    print("after", after);
    const double conns = static_cast<double>(r.connections > 0 ? r.connections : 1);
    std::printf(
        "growth: hostagent fds %+d rss %+ld KiB | guest agent fds %+d rss %+ld KiB heap in use "
        "%+ld B (%.1f B/connection over %llu connections)\n",
        after.host.fds - before.host.fds, after.host.rss_kib - before.host.rss_kib,
        after.guest.fds - before.guest.fds, after.guest.rss_kib - before.guest.rss_kib,
        after.guest_heap - before.guest_heap,
        static_cast<double>(after.guest_heap - before.guest_heap) / conns,
        static_cast<unsigned long long>(r.connections));
    return r.failures == 0 ? 0 : 1;
}

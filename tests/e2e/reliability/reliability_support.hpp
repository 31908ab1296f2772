#pragma once
// Helpers shared by the reliability suites: the VM's status as JSON, the guest agent's
// info straight from control.sock, QEMU's pid and RSS, virsh, and the guest clock's error.
#include <signal.h>
#include <time.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cordon/rpc/rpc.hpp"
#include "cordon_e2e.hpp"

namespace cordon::e2e::reliability {

using nlohmann::json;
using namespace std::chrono_literals;

inline json status_json(const VmEnvironment& vm) {
    auto r = vm.vmctl({"status", "--json"}, 60s);
    auto j = json::parse(r.out, nullptr, false);
    if (!j.is_object()) {
        ADD_FAILURE() << "vmctl status --json gave no JSON: " << describe(r);
        return json::object();
    }
    return j;
}

inline std::string vm_name(const VmEnvironment& vm) {
    return status_json(vm).value("vm", "");
}

// The guest agent's info through the host agent's control socket, without vmctl.
inline json agent_info(const VmEnvironment& vm, std::chrono::milliseconds timeout = 10s) {
    const std::string control = status_json(vm)["paths"].value("control_socket", "");
    auto client = rpc::BlockingClient::connect(control);
    return client.call("info", json::object(), timeout);
}

inline std::int64_t realtime_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct ClockReading {
    double error_s = 0;        // guest minus host (at the midpoint of the call)
    double uncertainty_s = 0;  // half the round trip
};

// Reads the guest's CLOCK_REALTIME through the info RPC and compares it with the host's.
inline ClockReading clock_error(const std::string& control_socket) {
    auto client = rpc::BlockingClient::connect(control_socket);
    client.call("ping", json::object(), 10s);  // warm the connection up
    const std::int64_t before = realtime_ns();
    json info = client.call("info", json::object(), 10s);
    const std::int64_t after = realtime_ns();
    const auto guest = info.at("clock").at("unix_ns").get<std::int64_t>();
    ClockReading r;
    r.error_s = static_cast<double>(guest - (before + after) / 2) / 1e9;
    r.uncertainty_s = static_cast<double>(after - before) / 2e9;
    return r;
}

inline ProcessResult virsh(const std::vector<std::string>& args,
                           std::chrono::seconds timeout = 120s) {
    std::vector<std::string> argv{"virsh", "-c", "qemu:///system"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, timeout);
}

// QEMU's pid from libvirt's pid file (qemu:///system).
inline pid_t qemu_pid(const std::string& name) {
    std::ifstream in("/run/libvirt/qemu/" + name + ".pid");
    long long pid = 0;
    in >> pid;
    return static_cast<pid_t>(pid);
}

// Resident set size of a process in MiB (VmRSS), -1 when unreadable.
inline double rss_mib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    while (in >> key) {
        if (key == "VmRSS:") {
            long long kib = 0;
            in >> kib;
            return static_cast<double>(kib) / 1024.0;
        }
        std::string rest;
        std::getline(in, rest);
    }
    return -1;
}

// Polls `docker version` until it answers; returns seconds taken or -1 after `limit`.
inline double wait_for_docker(const VmEnvironment& vm, std::chrono::seconds limit) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < limit) {
        if (vm.docker({"version", "--format", "{{.Server.Version}}"}, 30s).ok())
            return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::this_thread::sleep_for(250ms);
    }
    return -1;
}

inline std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
    return s;
}

}  // namespace cordon::e2e::reliability

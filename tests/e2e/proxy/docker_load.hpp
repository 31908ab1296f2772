#pragma once
// A Docker API load generator: N concurrent clients on a unix socket (the host agent's
// docker.sock), mixed like a busy desktop: `_ping`, `ps` (GET /containers/json), `inspect`
// (GET /containers/{id}/json) on kept-alive and on one-request connections (the docker
// CLI opens a connection per command), and long-lived `logs -f` and `events` streams.
// Used by the e2e load test (asserts) and bench-load (prints numbers).
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace cordon::load {

struct Options {
    std::string socket;     // unix socket path of the Docker API
    std::string container;  // a running container whose output `logs -f` follows
    int clients = 200;      // every 10th follows logs, every 10th (offset 5) follows events
    std::chrono::milliseconds duration{60'000};
    std::chrono::milliseconds request_timeout{60'000};
};

struct Latency {
    std::uint64_t count = 0;
    double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

struct Result {
    std::uint64_t requests = 0;  // completed request/response exchanges
    std::uint64_t failures = 0;  // wrong status, error, timeout, early end of a stream
    std::vector<std::string> failure_samples;  // the first few, for a person
    double seconds = 0;
    double requests_per_second = 0;
    Latency all, ping, list, inspect;
    int log_streams = 0, event_streams = 0;  // streams that stayed open to the end
    std::uint64_t log_bytes = 0, event_bytes = 0;
    std::uint64_t connections = 0;  // connections opened
};

// Runs the load; never throws for request failures (they are counted).
Result run(const Options& options);

// One line per figure, for logs and the bench.
std::string describe(const Result& r);

// File descriptors and resident memory of a process (read from /proc).
struct ProcessUsage {
    int fds = -1;
    long rss_kib = -1;
};
ProcessUsage usage_of(pid_t pid);
// Parses "<fds> <rss_kib>" (what the e2e test's `vmctl exec` one-liner prints).
ProcessUsage parse_usage(const std::string& text);
// The shell one-liner that prints "<fds> <rss_kib>" for the process named `name` in the VM.
std::string usage_command(const std::string& name);

}  // namespace cordon::load

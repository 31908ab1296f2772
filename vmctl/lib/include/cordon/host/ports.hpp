#pragma once
// Published ports as the host agent forwards them: read from the state file it keeps
// (ports.json in the VM's runtime folder, written atomically on every change). Used by
// `vmctl ports`, `vmctl status` and the desktop app.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cordon/host/paths.hpp"

namespace cordon::host {

struct PortListener {
    std::string address;  // "127.0.0.1", "::1"
    std::string state;    // "listening", "failed", "unavailable" (e.g. no IPv6 on this host)
    std::string error;
    std::string hint;
};

struct PublishedPort {
    std::string proto;  // "tcp", "udp" (forwarded); "sctp" is listed as not_forwarded
    std::uint16_t host_port = 0;
    std::uint16_t container_port = 0;
    std::string container_name;
    std::string container_id;
    // "listening" (forwarded), "partial" (one loopback address could not be bound),
    // "failed" (nothing listens: error and hint say why), "not_forwarded" (SCTP)
    std::string state;
    std::string error;
    std::string hint;
    std::vector<PortListener> listeners;
    bool ok() const { return state == "listening"; }
};

struct PortsReport {
    bool hostagent_running = false;
    bool known = false;  // the host agent wrote a state file
    std::string guest;   // "connected", "disconnected", "unsupported" (older guest agent)
    std::string engine;  // the guest's view of dockerd: "watching", "connecting", ...
    std::string error;   // why the host agent does not follow the guest's ports, if so
    std::vector<PublishedPort> ports;
    std::size_t problems() const;  // ports that are not fully forwarded
};

std::filesystem::path ports_state_path(const VmPaths& paths);

// Parses the state file's JSON; throws HostError(generic) naming the file when it is not
// the shape the host agent writes.
PortsReport parse_ports_state(const nlohmann::json& j, const std::string& source);
// Reads the state file when the host agent runs (known = false when it has not written
// one yet, or it is not running).
PortsReport read_ports(const VmPaths& paths);

nlohmann::json to_json(const PortsReport& r);
// "127.0.0.1:8080, [::1]:8080 -> web:80/tcp"
std::string describe(const PublishedPort& p);

}  // namespace cordon::host

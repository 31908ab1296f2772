// libFuzzer target: the port state file the host agent writes and vmctl/the GUI read
// (ports.json). Invariants: no crash; bad content is only ever a HostError naming the
// file; an accepted report re-serialises to JSON that parses to the same report.
#include <cstdint>
#include <string>

#include "cordon/host/host_error.hpp"
#include "cordon/host/ports.hpp"

using namespace cordon::host;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const json j = json::parse(data, data + size, nullptr, false);
    if (j.is_discarded())
        return 0;
    PortsReport r;
    try {
        r = parse_ports_state(j, "ports.json");
    } catch (const HostError& e) {
        if (std::string(e.what()).find("ports.json") == std::string::npos)
            __builtin_trap();
        return 0;
    }
    for (const auto& p : r.ports) {
        if (p.host_port == 0 || p.proto.empty())
            __builtin_trap();
        (void)describe(p);
    }
    const PortsReport back = parse_ports_state(to_json(r), "ports.json (re-serialised)");
    if (back.ports.size() != r.ports.size() || to_json(back) != to_json(r))
        __builtin_trap();
    return 0;
}

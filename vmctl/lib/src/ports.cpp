#include "cordon/host/ports.hpp"

#include <system_error>

#include "cordon/host/host_error.hpp"
#include "cordon/host/hostagent_control.hpp"

namespace cordon::host {

using nlohmann::json;

namespace {
std::string str(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
std::uint16_t port(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned() || it->get<unsigned long long>() > 65535)
        return 0;
    return static_cast<std::uint16_t>(it->get<unsigned>());
}
std::string endpoint(const std::string& address, std::uint16_t p) {
    return address.find(':') != std::string::npos ? "[" + address + "]:" + std::to_string(p)
                                                  : address + ":" + std::to_string(p);
}
}  // namespace

std::size_t PortsReport::problems() const {
    std::size_t n = 0;
    for (const auto& p : ports) n += !p.ok();
    return n;
}

std::filesystem::path ports_state_path(const VmPaths& paths) {
    return paths.runtime_dir / "ports.json";
}

PortsReport parse_ports_state(const json& j, const std::string& source) {
    auto bad = [&](const std::string& what) {
        return HostError(ErrorKind::generic, "the port state file is invalid: " + what, source,
                         "restart the host agent (vmctl restart) to rewrite it");
    };
    if (!j.is_object())
        throw bad("not a JSON object");
    if (!j.contains("ports") || !j["ports"].is_array())
        throw bad("no \"ports\" array");
    PortsReport r;
    r.known = true;
    r.guest = str(j, "guest");
    r.engine = str(j, "engine");
    r.error = str(j, "error");
    for (const auto& pj : j["ports"]) {
        if (!pj.is_object() || port(pj, "host_port") == 0 || str(pj, "proto").empty())
            throw bad("a port entry without proto and host_port: " + pj.dump().substr(0, 120));
        PublishedPort p;
        p.proto = str(pj, "proto");
        p.host_port = port(pj, "host_port");
        p.container_port = port(pj, "container_port");
        p.container_name = str(pj, "container_name");
        p.container_id = str(pj, "container_id");
        p.state = str(pj, "state");
        p.error = str(pj, "error");
        p.hint = str(pj, "hint");
        if (pj.contains("listeners") && pj["listeners"].is_array()) {
            for (const auto& lj : pj["listeners"]) {
                if (!lj.is_object())
                    continue;
                p.listeners.push_back(
                    {str(lj, "address"), str(lj, "state"), str(lj, "error"), str(lj, "hint")});
            }
        }
        r.ports.push_back(std::move(p));
    }
    return r;
}

PortsReport read_ports(const VmPaths& paths) {
    PortsReport r;
    r.hostagent_running = hostagent_state(paths).alive;
    if (!r.hostagent_running)
        return r;
    const auto file = ports_state_path(paths);
    std::error_code ec;
    if (!std::filesystem::exists(file, ec))
        return r;
    const json j = json::parse(read_file(file), nullptr, false);
    if (j.is_discarded())
        throw HostError(ErrorKind::generic, "the port state file is not JSON", file.string(),
                        "restart the host agent (vmctl restart) to rewrite it");
    PortsReport parsed = parse_ports_state(j, file.string());
    parsed.hostagent_running = true;
    return parsed;
}

json to_json(const PortsReport& r) {
    json ports = json::array();
    for (const auto& p : r.ports) {
        json listeners = json::array();
        for (const auto& l : p.listeners) {
            json lj{{"address", l.address}, {"state", l.state}};
            if (!l.error.empty())
                lj["error"] = l.error;
            if (!l.hint.empty())
                lj["hint"] = l.hint;
            listeners.push_back(std::move(lj));
        }
        json pj{{"proto", p.proto},
                {"host_port", p.host_port},
                {"container_port", p.container_port},
                {"container_name", p.container_name},
                {"container_id", p.container_id},
                {"state", p.state},
                {"listeners", listeners}};
        if (!p.error.empty())
            pj["error"] = p.error;
        if (!p.hint.empty())
            pj["hint"] = p.hint;
        ports.push_back(std::move(pj));
    }
    json j{{"host_agent_running", r.hostagent_running},
           {"known", r.known},
           {"guest", r.guest},
           {"engine", r.engine},
           {"problems", r.problems()},
           {"ports", ports}};
    if (!r.error.empty())
        j["error"] = r.error;
    return j;
}

std::string describe(const PublishedPort& p) {
    std::string where;
    for (const auto& l : p.listeners) {
        if (l.state != "listening")
            continue;
        where += (where.empty() ? "" : ", ") + endpoint(l.address, p.host_port);
    }
    if (where.empty())
        where = p.proto + " " + std::to_string(p.host_port);
    std::string s = where + " -> " +
                    (p.container_name.empty() ? p.container_id.substr(0, 12) : p.container_name) +
                    ":" + std::to_string(p.container_port) + "/" + p.proto;
    return s;
}

}  // namespace cordon::host

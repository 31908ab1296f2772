#include "cordon/ports/port_table.hpp"

#include <algorithm>
#include <charconv>
#include <tuple>

namespace cordon::ports {
namespace {

// Which binding a forward prefers when several share (proto, host_port).
int rank(const std::string& host_ip) {
    if (host_ip.empty() || host_ip == "0.0.0.0")
        return 0;
    if (host_ip == "127.0.0.1")
        return 1;
    if (host_ip == "::")
        return 2;
    if (host_ip == "::1")
        return 3;
    if (host_ip.find(':') == std::string::npos)
        return 4;
    return 5;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || v == 0 || v > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(v);
}

std::optional<std::uint16_t> port_of(const json& j) {
    if (j.is_number_unsigned() || j.is_number_integer()) {
        const auto v = j.get<long long>();
        if (v <= 0 || v > 65535)
            return std::nullopt;
        return static_cast<std::uint16_t>(v);
    }
    if (j.is_string())
        return parse_port(j.get_ref<const std::string&>());
    return std::nullopt;
}

bool known_proto(const std::string& p) {
    return p == "tcp" || p == "udp" || p == "sctp";
}

std::string strip_slash(std::string name) {
    if (!name.empty() && name.front() == '/')
        name.erase(0, 1);
    return name;
}

}  // namespace

std::string target_for(const std::string& host_ip) {
    if (host_ip.empty() || host_ip == "0.0.0.0")
        return "127.0.0.1";
    if (host_ip == "::")
        return "::1";
    return host_ip;
}

json to_json(const Forward& f) {
    return json{{"proto", f.proto},
                {"host_port", f.host_port},
                {"target", f.target_ip},
                {"container_port", f.container_port},
                {"container_id", f.container_id},
                {"container_name", f.container_name}};
}

json to_json(const std::vector<Forward>& fs) {
    json a = json::array();
    for (const auto& f : fs) a.push_back(to_json(f));
    return a;
}

std::vector<Binding> bindings_from_inspect(const json& inspect) {
    std::vector<Binding> out;
    if (!inspect.is_object())
        return out;
    const auto state = inspect.find("State");
    if (state == inspect.end() || !state->is_object() || !state->value("Running", false))
        return out;
    const auto ns = inspect.find("NetworkSettings");
    if (ns == inspect.end() || !ns->is_object())
        return out;
    const auto ports = ns->find("Ports");
    if (ports == ns->end() || !ports->is_object())
        return out;
    for (auto it = ports->begin(); it != ports->end(); ++it) {
        // Key "80/tcp"; value null (exposed, not published) or [{HostIp, HostPort}, ...].
        const std::string& key = it.key();
        const auto slash = key.find('/');
        const std::string proto = slash == std::string::npos ? "tcp" : key.substr(slash + 1);
        const auto cport = parse_port(std::string_view(key).substr(0, slash));
        if (!cport || !known_proto(proto) || !it->is_array())
            continue;
        for (const auto& b : *it) {
            if (!b.is_object() || !b.contains("HostPort"))
                continue;
            const auto hport = port_of(b["HostPort"]);
            if (!hport)
                continue;
            Binding bd;
            bd.proto = proto;
            bd.host_ip = b.contains("HostIp") && b["HostIp"].is_string()
                             ? b["HostIp"].get<std::string>()
                             : std::string();
            bd.host_port = *hport;
            bd.container_port = *cport;
            out.push_back(std::move(bd));
        }
    }
    return out;
}

std::vector<ListedContainer> containers_from_list(const json& list) {
    std::vector<ListedContainer> out;
    if (!list.is_array())
        return out;
    for (const auto& c : list) {
        if (!c.is_object() || !c.contains("Id") || !c["Id"].is_string())
            continue;
        // The list endpoint without all=1 gives running containers only; a State field
        // (API >= 1.23) is checked anyway.
        if (c.contains("State") && c["State"].is_string() && c["State"] != "running")
            continue;
        ListedContainer lc;
        lc.id = c["Id"].get<std::string>();
        if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty() &&
            c["Names"][0].is_string())
            lc.name = strip_slash(c["Names"][0].get<std::string>());
        if (c.contains("Ports") && c["Ports"].is_array()) {
            for (const auto& p : c["Ports"]) {
                if (!p.is_object() || !p.contains("PublicPort"))
                    continue;
                const auto hport = port_of(p["PublicPort"]);
                const auto cport = p.contains("PrivatePort") ? port_of(p["PrivatePort"])
                                                             : std::optional<std::uint16_t>{};
                const std::string proto = p.contains("Type") && p["Type"].is_string()
                                              ? p["Type"].get<std::string>()
                                              : "tcp";
                if (!hport || !cport || !known_proto(proto))
                    continue;
                Binding b;
                b.proto = proto;
                b.host_ip =
                    p.contains("IP") && p["IP"].is_string() ? p["IP"].get<std::string>() : "";
                b.host_port = *hport;
                b.container_port = *cport;
                lc.bindings.push_back(std::move(b));
            }
        }
        out.push_back(std::move(lc));
    }
    return out;
}

std::optional<EngineEvent> parse_event(const json& event) {
    if (!event.is_object())
        return std::nullopt;
    // API >= 1.22: Type/Action/Actor; older fields (status, id) as a fallback.
    const std::string type = event.contains("Type") && event["Type"].is_string()
                                 ? event["Type"].get<std::string>()
                                 : "container";
    if (type != "container")
        return std::nullopt;
    EngineEvent e;
    if (event.contains("Action") && event["Action"].is_string())
        e.action = event["Action"].get<std::string>();
    else if (event.contains("status") && event["status"].is_string())
        e.action = event["status"].get<std::string>();
    const json* actor =
        event.contains("Actor") && event["Actor"].is_object() ? &event["Actor"] : nullptr;
    if (actor && actor->contains("ID") && (*actor)["ID"].is_string())
        e.id = (*actor)["ID"].get<std::string>();
    else if (event.contains("id") && event["id"].is_string())
        e.id = event["id"].get<std::string>();
    if (e.id.empty())
        return std::nullopt;
    if (actor && actor->contains("Attributes") && (*actor)["Attributes"].is_object()) {
        const auto& attrs = (*actor)["Attributes"];
        if (attrs.contains("name") && attrs["name"].is_string())
            e.name = attrs["name"].get<std::string>();
    }
    if (e.action == "start")
        e.kind = EngineEvent::Kind::started;
    else if (e.action == "kill")
        e.kind = EngineEvent::Kind::check;
    else if (e.action == "die" || e.action == "stop" || e.action == "destroy")
        e.kind = EngineEvent::Kind::stopped;
    return e;
}

Diff diff(const std::vector<Forward>& before, const std::vector<Forward>& after) {
    Diff d;
    for (const auto& f : after) {
        if (std::find(before.begin(), before.end(), f) == before.end())
            d.added.push_back(f);
    }
    for (const auto& f : before) {
        if (std::find(after.begin(), after.end(), f) == after.end())
            d.removed.push_back(f);
    }
    return d;
}

bool PortTable::set_container(const std::string& id, const std::string& name,
                              const std::vector<Binding>& bindings) {
    if (bindings.empty())
        return remove_container(id);
    by_container_[id] = Entry{strip_slash(name), bindings};
    return rebuild();
}

bool PortTable::remove_container(const std::string& id) {
    if (by_container_.erase(id) == 0)
        return false;
    return rebuild();
}

bool PortTable::replace_all(const std::vector<ListedContainer>& containers) {
    by_container_.clear();
    for (const auto& c : containers) {
        if (!c.bindings.empty())
            by_container_[c.id] = Entry{c.name, c.bindings};
    }
    return rebuild();
}

bool PortTable::clear() {
    by_container_.clear();
    return rebuild();
}

std::optional<Forward> PortTable::find(const std::string& proto, std::uint16_t host_port) const {
    for (const auto& f : forwards_) {
        if (f.proto == proto && f.host_port == host_port)
            return f;
    }
    return std::nullopt;
}

bool PortTable::rebuild() {
    // (proto, port) -> best (rank, container id, binding)
    std::map<std::pair<std::string, std::uint16_t>,
             std::tuple<int, std::string, const Binding*, const std::string*>>
        best;
    for (const auto& [id, entry] : by_container_) {
        for (const auto& b : entry.bindings) {
            const auto key = std::make_pair(b.proto, b.host_port);
            const int r = rank(b.host_ip);
            auto it = best.find(key);
            if (it == best.end() ||
                std::tie(r, id) < std::tie(std::get<0>(it->second), std::get<1>(it->second))) {
                best[key] = {r, id, &b, &entry.name};
            }
        }
    }
    std::vector<Forward> next;
    next.reserve(best.size());
    for (const auto& [key, v] : best) {
        const Binding& b = *std::get<2>(v);
        next.push_back(Forward{key.first, key.second, target_for(b.host_ip), b.container_port,
                               std::get<1>(v), *std::get<3>(v)});
    }
    if (next == forwards_)
        return false;
    forwards_ = std::move(next);
    return true;
}

std::optional<std::pair<std::string, std::uint16_t>> parse_port_service(const std::string& name) {
    // "port:<proto>:<port>"
    if (name.rfind("port:", 0) != 0)
        return std::nullopt;
    const auto colon = name.find(':', 5);
    if (colon == std::string::npos)
        return std::nullopt;
    std::string proto = name.substr(5, colon - 5);
    if (!known_proto(proto))
        return std::nullopt;
    const auto port = parse_port(std::string_view(name).substr(colon + 1));
    if (!port)
        return std::nullopt;
    return std::make_pair(std::move(proto), *port);
}

std::string port_service_name(const std::string& proto, std::uint16_t port) {
    return "port:" + proto + ":" + std::to_string(port);
}

}  // namespace cordon::ports

#include "cordon/host/docker/objects.hpp"

#include "cordon/error.hpp"
#include "json_fields.hpp"

using nlohmann::json;

namespace cordon::host::docker {
namespace {

const json& require_list(const json& list, const char* what, const char* request) {
    if (!list.is_array())
        throw Error(std::string("the engine's ") + what + " list is not a JSON array", request);
    return list;
}

void require_object(const json& entry, const char* what, const char* request) {
    if (!entry.is_object()) {
        throw Error(std::string("an entry of the engine's ") + what + " list is not an object",
                    request);
    }
}

std::vector<Port> parse_ports(const json& c) {
    std::vector<Port> out;
    auto it = c.find("Ports");
    if (it == c.end() || !it->is_array())
        return out;
    for (const auto& p : *it) {
        if (!p.is_object())
            continue;
        Port port;
        port.ip = fields::text(p, "IP");
        port.private_port = static_cast<int>(fields::integer(p, "PrivatePort"));
        port.public_port = static_cast<int>(fields::integer(p, "PublicPort"));
        port.type = fields::text(p, "Type");
        out.push_back(std::move(port));
    }
    return out;
}

std::vector<std::string> parse_volume_mounts(const json& c) {
    std::vector<std::string> out;
    auto it = c.find("Mounts");
    if (it == c.end() || !it->is_array())
        return out;
    for (const auto& m : *it) {
        if (m.is_object() && fields::text(m, "Type") == "volume" &&
            !fields::text(m, "Name").empty())
            out.push_back(fields::text(m, "Name"));
    }
    return out;
}

std::optional<std::uint64_t> total_usage(const json& cpu_stats) {
    const json* usage = fields::object(cpu_stats, "cpu_usage");
    return usage ? fields::unsigned_number(*usage, "total_usage") : std::nullopt;
}

}  // namespace

std::string Container::compose_project() const {
    auto it = labels.find("com.docker.compose.project");
    return it == labels.end() ? std::string() : it->second;
}

std::string short_id(const std::string& id) {
    std::string s = id.rfind("sha256:", 0) == 0 ? id.substr(7) : id;
    return s.substr(0, 12);
}

std::vector<Container> parse_containers(const json& list) {
    constexpr const char* request = "GET /containers/json";
    std::vector<Container> out;
    out.reserve(require_list(list, "container", request).size());
    for (const auto& c : list) {
        require_object(c, "container", request);
        Container x;
        x.id = fields::text(c, "Id");
        if (x.id.empty())
            throw Error("an entry of the engine's container list has no \"Id\"", request);
        auto names = c.find("Names");
        if (names != c.end() && names->is_array() && !names->empty() &&
            names->front().is_string()) {
            x.name = names->front().get<std::string>();
            if (!x.name.empty() && x.name.front() == '/')
                x.name.erase(0, 1);
        }
        if (x.name.empty())
            x.name = x.id.substr(0, 12);
        x.image = fields::text(c, "Image");
        x.image_id = fields::text(c, "ImageID");
        x.state = fields::text(c, "State");
        x.status = fields::text(c, "Status");
        x.created = fields::integer(c, "Created");
        x.ports = parse_ports(c);
        x.labels = fields::labels(c, "Labels");
        x.volumes = parse_volume_mounts(c);
        out.push_back(std::move(x));
    }
    return out;
}

std::vector<Image> parse_images(const json& list) {
    constexpr const char* request = "GET /images/json";
    std::vector<Image> out;
    out.reserve(require_list(list, "image", request).size());
    for (const auto& i : list) {
        require_object(i, "image", request);
        Image x;
        x.id = fields::text(i, "Id");
        if (x.id.empty())
            throw Error("an entry of the engine's image list has no \"Id\"", request);
        auto tags = i.find("RepoTags");
        if (tags != i.end() && tags->is_array()) {
            for (const auto& t : *tags) {
                if (t.is_string() && t.get<std::string>() != "<none>:<none>")
                    x.tags.push_back(t.get<std::string>());
            }
        }
        x.size = fields::integer(i, "Size");
        x.created = fields::integer(i, "Created");
        out.push_back(std::move(x));
    }
    return out;
}

std::vector<Volume> parse_volumes(const json& answer) {
    constexpr const char* request = "GET /volumes";
    if (!answer.is_object())
        throw Error("the engine's volume answer is not a JSON object", request);
    auto it = answer.find("Volumes");
    if (it == answer.end() || it->is_null())
        return {};
    std::vector<Volume> out;
    out.reserve(require_list(*it, "volume", request).size());
    for (const auto& v : *it) {
        require_object(v, "volume", request);
        Volume x;
        x.name = fields::text(v, "Name");
        if (x.name.empty())
            throw Error("an entry of the engine's volume list has no \"Name\"", request);
        x.driver = fields::text(v, "Driver");
        x.mountpoint = fields::text(v, "Mountpoint");
        x.created_at = fields::text(v, "CreatedAt");
        x.labels = fields::labels(v, "Labels");
        out.push_back(std::move(x));
    }
    return out;
}

ContainerStats parse_stats(const json& sample) {
    ContainerStats s;
    if (!sample.is_object())
        return s;
    // CPU: the share of the host's CPU time between the two readings, times the CPUs.
    const json* cpu = fields::object(sample, "cpu_stats");
    const json* pre = fields::object(sample, "precpu_stats");
    if (cpu && pre) {
        auto total = total_usage(*cpu);
        auto pre_total = total_usage(*pre);
        auto system = fields::unsigned_number(*cpu, "system_cpu_usage");
        auto pre_system = fields::unsigned_number(*pre, "system_cpu_usage");
        auto cpus = fields::unsigned_number(*cpu, "online_cpus");
        if (total && pre_total && system && pre_system && *system > *pre_system &&
            *total >= *pre_total) {
            const double n = cpus && *cpus > 0 ? static_cast<double>(*cpus) : 1.0;
            s.cpu_percent = static_cast<double>(*total - *pre_total) /
                            static_cast<double>(*system - *pre_system) * n * 100.0;
        }
    }
    if (const json* mem = fields::object(sample, "memory_stats")) {
        auto usage = fields::unsigned_number(*mem, "usage");
        if (usage) {
            std::uint64_t cache = 0;
            if (const json* st = fields::object(*mem, "stats")) {
                // cgroup v2 reports inactive_file, v1 total_inactive_file (as docker stats).
                auto v2 = fields::unsigned_number(*st, "inactive_file");
                auto v1 = fields::unsigned_number(*st, "total_inactive_file");
                cache = v2 ? *v2 : v1.value_or(0);
            }
            s.memory_bytes = *usage > cache ? *usage - cache : 0;
        }
        s.memory_limit = fields::unsigned_number(*mem, "limit");
    }
    return s;
}

}  // namespace cordon::host::docker

#include "cordon/runtime/spec_rewrite.hpp"

#include <algorithm>
#include <cstdint>

#include "cordon/error.hpp"

namespace cordon::runtime {
namespace {

using json = nlohmann::json;
const char* kSubject = "config.json";

bool has_option(const json& m, const char* opt) {
    if (!m.contains("options") || !m["options"].is_array())
        return false;
    return std::any_of(m["options"].begin(), m["options"].end(),
                       [&](const json& o) { return o == opt; });
}

bool is_under(const std::string& path, const std::string& prefix) {
    return path == prefix || path.rfind(prefix + "/", 0) == 0;
}

// A member that must be a string when present (runc's Go structs would refuse anything
// else too); "" when absent.
std::string string_member(const json& obj, const char* key, const std::string& where) {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null())
        return {};
    if (!it->is_string())
        throw Error(where + "." + key + " is not a string", kSubject,
                    "the engine wrote a bad bundle");
    return it->get<std::string>();
}

json mapping(const IdRange& r) {
    return json::array({{{"containerID", 0}, {"hostID", r.start}, {"size", r.count}}});
}

}  // namespace

std::vector<std::size_t> bind_mounts_to_idmap(const json& spec) {
    std::vector<std::size_t> out;
    if (!spec.contains("mounts"))
        return out;
    if (!spec["mounts"].is_array())
        throw Error("\"mounts\" is not an array", kSubject, "the engine wrote a bad bundle");
    for (std::size_t i = 0; i < spec["mounts"].size(); ++i) {
        const json& m = spec["mounts"][i];
        if (!m.is_object() || !m.contains("source") || !m["source"].is_string())
            continue;
        const bool bind = string_member(m, "type", "mounts[" + std::to_string(i) + "]") == "bind" ||
                          has_option(m, "bind") || has_option(m, "rbind");
        if (!bind)
            continue;
        const std::string src = m["source"].get<std::string>();
        if (src.empty() || src.front() != '/' || is_under(src, "/dev") || is_under(src, "/proc") ||
            is_under(src, "/sys"))
            continue;
        out.push_back(i);
    }
    return out;
}

json rewrite_spec(json spec, const IdRange& uids, const IdRange& gids, const std::string& root_path,
                  const std::map<std::size_t, std::string>& new_sources) {
    if (!spec.is_object())
        throw Error("the bundle's config is not a JSON object", kSubject);
    if (!spec.contains("root") || !spec["root"].is_object() || !spec["root"].contains("path"))
        throw Error("the bundle's config has no root.path", kSubject);
    if (!spec.contains("linux") || !spec["linux"].is_object())
        spec["linux"] = json::object();
    json& linux = spec["linux"];
    for (const char* key : {"uidMappings", "gidMappings"}) {
        if (linux.contains(key) && !linux[key].empty())
            throw Error(std::string("the container already has linux.") + key, kSubject,
                        "exclusive ID ranges assign the mapping themselves: drop --userns and "
                        "userns-remap");
    }
    if (!linux.contains("namespaces"))
        linux["namespaces"] = json::array();
    if (!linux["namespaces"].is_array())
        throw Error("linux.namespaces is not an array", kSubject);
    bool has_user = false;
    bool has_net = false;
    for (auto& ns : linux["namespaces"]) {
        if (!ns.is_object())
            throw Error("an entry of linux.namespaces is not an object", kSubject);
        const std::string type = string_member(ns, "type", "linux.namespaces[]");
        if (type == "user") {
            if (ns.contains("path"))
                throw Error("the container joins an existing user namespace", kSubject,
                            "exclusive ID ranges give every container its own user namespace");
            has_user = true;
        }
        if (type == "network" && !ns.contains("path"))
            has_net = true;
        if (type == "network" && ns.contains("path"))
            has_net = true;  // joins a container's netns, not the VM's
    }
    if (!has_user)
        linux["namespaces"].push_back({{"type", "user"}});
    linux["uidMappings"] = mapping(uids);
    linux["gidMappings"] = mapping(gids);
    spec["root"]["path"] = root_path;

    if (spec.contains("mounts") && spec["mounts"].is_array()) {
        for (const auto& [index, source] : new_sources) {
            if (index >= spec["mounts"].size() || !spec["mounts"][index].is_object())
                throw Error("a mount index is out of range", kSubject);
            spec["mounts"][index]["source"] = source;
        }
        if (!has_net) {
            for (auto& m : spec["mounts"]) {
                // A "sysfs" with bind/rbind is a bind mount to runc (the flag wins over the
                // type): it keeps its (ID-mapped) source.
                if (!m.is_object() || string_member(m, "type", "mounts[]") != "sysfs" ||
                    has_option(m, "bind") || has_option(m, "rbind"))
                    continue;
                std::string destination = string_member(m, "destination", "mounts[]");
                if (destination.empty())
                    destination = "/sys";
                m = {{"destination", destination},
                     {"type", "bind"},
                     {"source", "/sys"},
                     {"options", {"rbind", "nosuid", "noexec", "nodev", "ro"}}};
            }
        }
    }
    // dockerd allows ping for every group ("0 2147483647"); inside a user namespace
    // the kernel accepts only mapped groups.
    if (linux.contains("sysctl") && linux["sysctl"].is_object() &&
        linux["sysctl"].contains("net.ipv4.ping_group_range"))
        linux["sysctl"]["net.ipv4.ping_group_range"] = "0 " + std::to_string(gids.count - 1);
    if (spec.contains("annotations") && !spec["annotations"].is_object())
        throw Error("\"annotations\" is not an object", kSubject, "the engine wrote a bad bundle");
    spec["annotations"]["org.cordon.idmap.uid-start"] = std::to_string(uids.start);
    return spec;
}

bool user_namespaced(const json& spec) {
    if (!spec.is_object() || !spec.contains("linux") || !spec["linux"].is_object())
        return false;
    const json& linux = spec["linux"];
    if (!linux.contains("namespaces") || !linux["namespaces"].is_array())
        return false;
    const bool own_userns =
        std::any_of(linux["namespaces"].begin(), linux["namespaces"].end(), [](const json& ns) {
            return ns.is_object() && ns.contains("type") && ns["type"] == "user" &&
                   !ns.contains("path");
        });
    if (!own_userns)
        return false;
    for (const char* key : {"uidMappings", "gidMappings"}) {
        if (!linux.contains(key) || !linux[key].is_array() || linux[key].empty())
            return false;
        for (const json& m : linux[key]) {
            if (!m.is_object() || !m.contains("hostID") || !m.contains("size") ||
                !m["hostID"].is_number_unsigned() || !m["size"].is_number_unsigned())
                return false;
            if (m["hostID"].get<std::uint64_t>() == 0)
                return false;  // VM root mapped in
        }
    }
    return true;
}

json replace_sources(json spec, const std::map<std::size_t, std::string>& new_sources) {
    for (const auto& [index, source] : new_sources) {
        if (!spec.contains("mounts") || !spec["mounts"].is_array() ||
            index >= spec["mounts"].size() || !spec["mounts"][index].is_object())
            throw Error("a mount index is out of range", kSubject);
        spec["mounts"][index]["source"] = source;
    }
    return spec;
}

}  // namespace cordon::runtime

// libFuzzer target: the OCI config.json edit cordon-runc makes for exclusive ID ranges.
// Invariants: no crash; a spec it cannot handle is only ever a cordon::Error; an edited
// spec has exactly one user namespace (its own, no path), the mappings onto the given
// ranges and nothing else, the new root, each chosen mount's new source, and no sysfs
// mount left when the container shares the VM's network namespace.
#include <cstdint>
#include <map>
#include <string>

#include "cordon/error.hpp"
#include "cordon/runtime/spec_rewrite.hpp"

using namespace cordon::runtime;
using nlohmann::json;

namespace {
// A member, or null: const operator[] must not be used on a missing key.
const json& at(const json& j, const char* key) {
    static const json null;
    if (!j.is_object())
        return null;
    const auto it = j.find(key);
    return it == j.end() ? null : *it;
}
// runc treats a mount with the bind or rbind option as a bind mount, whatever its type.
bool is_bind(const json& m) {
    const json& opts = at(m, "options");
    if (!opts.is_array())
        return false;
    for (const auto& o : opts)
        if (o == "bind" || o == "rbind")
            return true;
    return false;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const json spec = json::parse(data, data + size, nullptr, false);
    if (spec.is_discarded())
        return 0;
    const IdRange uids{165536, 65536}, gids{165536, 65536};
    json out;
    std::map<std::size_t, std::string> sources;
    try {
        for (std::size_t i : bind_mounts_to_idmap(spec)) {
            if (i >= at(spec, "mounts").size())
                __builtin_trap();
            sources[i] = "/run/cordon/idmap/" + std::to_string(i);
        }
        out = rewrite_spec(spec, uids, gids, "/run/cordon/rootfs", sources);
    } catch (const cordon::Error&) {
        return 0;
    }
    if (!out.is_object() || at(at(out, "root"), "path") != "/run/cordon/rootfs")
        __builtin_trap();
    const json& linux = at(out, "linux");
    const json want = json::array({{{"containerID", 0}, {"hostID", 165536}, {"size", 65536}}});
    if (at(linux, "uidMappings") != want || at(linux, "gidMappings") != want)
        __builtin_trap();
    int users = 0;
    bool net = false;
    if (!at(linux, "namespaces").is_array())
        __builtin_trap();
    for (const auto& ns : at(linux, "namespaces")) {
        if (at(ns, "type") == "user") {
            ++users;
            if (ns.contains("path"))
                __builtin_trap();
        }
        net = net || at(ns, "type") == "network";
    }
    if (users != 1)
        __builtin_trap();
    const json& mounts = at(out, "mounts");
    for (const auto& [i, src] : sources)
        if (!mounts.is_array() || i >= mounts.size() || at(mounts[i], "source") != src)
            __builtin_trap();
    if (!net && mounts.is_array())
        for (const auto& m : mounts)
            if (at(m, "type") == "sysfs" && !is_bind(m))
                __builtin_trap();
    return 0;
}

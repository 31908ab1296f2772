#pragma once
// The OCI config.json edit that puts a container into its own ID range.
#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cordon/engine/subid.hpp"

namespace cordon::runtime {

using engine::IdRange;

// Indices (in spec["mounts"]) of the bind mounts whose source the wrapper
// should present ID-mapped: every bind mount except kernel interfaces (/dev,
// /proc, /sys). Throws cordon::Error when "mounts" is not an array.
std::vector<std::size_t> bind_mounts_to_idmap(const nlohmann::json& spec);

// Returns the spec with: a new user namespace (linux.namespaces), uid and gid
// mappings of container 0..count-1 onto the ranges, root.path replaced, the given
// mounts' sources replaced, and with no network namespace of its own, sysfs
// replaced by a read-only bind of /sys (a user namespace may not mount sysfs
// for the host's network namespace), and net.ipv4.ping_group_range narrowed to
// the mapped groups. Refuses, with cordon::Error naming the key,
// a spec that already has ID mappings or joins an existing user namespace.
nlohmann::json rewrite_spec(nlohmann::json spec, const IdRange& uids, const IdRange& gids,
                            const std::string& root_path,
                            const std::map<std::size_t, std::string>& new_sources);

// True when the spec puts the container in a new user namespace whose uid and gid maps
// are set and leave VM ID 0 unmapped: what dockerd's userns-remap writes. False for a spec
// that has no user namespace, joins an existing one, or maps VM root.
bool user_namespaced(const nlohmann::json& spec);

// Returns the spec with the given mounts' sources replaced. Throws cordon::Error for an
// index that is not a mount object.
nlohmann::json replace_sources(nlohmann::json spec,
                               const std::map<std::size_t, std::string>& new_sources);

}  // namespace cordon::runtime

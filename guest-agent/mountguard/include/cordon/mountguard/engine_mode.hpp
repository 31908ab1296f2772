#pragma once
// Which dockerd configurations run under the mount guard: those with isolation
// (userns-remap, or a default runtime other than runc: exclusive ranges' cordon-idmap).
// A configuration that cannot be read or parsed counts as isolated (deny by default).
#include <nlohmann/json.hpp>
#include <string>

namespace cordon::mountguard {

bool wants_mount_guard(const nlohmann::json& daemon_config);
bool wants_mount_guard_file(const std::string& daemon_json);

}  // namespace cordon::mountguard

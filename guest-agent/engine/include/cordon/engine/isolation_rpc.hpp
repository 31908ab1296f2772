#pragma once
// The JSON shapes of the isolation RPC methods (isolation.status, isolation.set),
// shared by the guest agent that answers them and the tests that read them.
#include <nlohmann/json.hpp>

#include "cordon/engine/engine_config.hpp"
#include "cordon/engine/isolation_state.hpp"
#include "cordon/engine/isolation_switch.hpp"

namespace cordon::engine {

// {"enabled", "locked", "locked_by", "user", "uid_range": {"start","count"},
//  "gid_range", "engine_version", "changed_at"}; engine_version is empty when
// dockerd does not answer.
nlohmann::json isolation_status_json(const IsolationChoice& choice, const AdminLock& lock,
                                     const RemapUser& user, const std::string& engine_version);

nlohmann::json switch_result_json(const SwitchResult& result);

// Reads {"enabled": bool, "confirmed": bool?}; throws cordon::Error naming the bad key.
SwitchRequest parse_switch_request(const nlohmann::json& params);

// Reads the admin lock the host hands over: {"locked": bool, "enabled": bool, "source": str}.
AdminLock parse_admin_lock(const nlohmann::json& params);

}  // namespace cordon::engine

#include "cordon/mountguard/engine_mode.hpp"

#include <fstream>

namespace cordon::mountguard {

bool wants_mount_guard(const nlohmann::json& cfg) {
    if (!cfg.is_object())
        return true;
    const auto remap = cfg.find("userns-remap");
    if (remap != cfg.end() && !(remap->is_string() && remap->get<std::string>().empty()))
        return true;
    const auto runtime = cfg.find("default-runtime");
    return runtime != cfg.end() && !(runtime->is_string() && runtime->get<std::string>() == "runc");
}

bool wants_mount_guard_file(const std::string& daemon_json) {
    std::ifstream in(daemon_json);
    if (!in)
        return true;
    const auto cfg = nlohmann::json::parse(in, nullptr, false);
    return cfg.is_discarded() || wants_mount_guard(cfg);
}

}  // namespace cordon::mountguard

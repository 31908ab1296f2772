#include "cordon/engine/isolation_state.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "cordon/atomic_file.hpp"
#include "cordon/error.hpp"

namespace cordon::engine {

bool effective_isolation(const IsolationChoice& choice, const AdminLock& lock) {
    return lock.locked ? lock.enabled : choice.enabled;
}

IsolationChoice IsolationStore::load() const {
    struct stat st{};
    if (::stat(path_.c_str(), &st) != 0 && errno == ENOENT) return {};
    const std::string text = read_file(path_);
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    const std::string hint = "fix or delete the file; the default (isolation on) applies when it is absent";
    if (j.is_discarded() || !j.is_object()) throw Error("the isolation state is not a JSON object", path_, hint);
    IsolationChoice c;
    if (!j.contains("enabled") || !j["enabled"].is_boolean())
        throw Error("the isolation state's key \"enabled\" must be true or false", path_, hint);
    c.enabled = j["enabled"].get<bool>();
    if (j.contains("changed_at")) {
        if (!j["changed_at"].is_number_integer())
            throw Error("the isolation state's key \"changed_at\" must be an integer", path_, hint);
        c.changed_at = j["changed_at"].get<std::int64_t>();
    }
    if (j.contains("exclusive_ranges")) {
        if (!j["exclusive_ranges"].is_boolean())
            throw Error("the isolation state's key \"exclusive_ranges\" must be true or false", path_, hint);
        c.exclusive_ranges = j["exclusive_ranges"].get<bool>();
    }
    return c;
}

void IsolationStore::save(const IsolationChoice& choice) const {
    const nlohmann::json j = {{"enabled", choice.enabled},
                              {"changed_at", choice.changed_at},
                              {"exclusive_ranges", choice.exclusive_ranges}};
    write_file_atomically(path_, j.dump(2) + "\n", 0600);
}

}  // namespace cordon::engine

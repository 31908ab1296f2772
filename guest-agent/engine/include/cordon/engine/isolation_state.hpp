#pragma once
// The user's isolation choice, kept on the data disk so it survives restarts
// and image upgrades. An administrator's lock comes from the host at start and
// is never written here: the host's admin settings are the only source of it.
#include <cstdint>
#include <optional>
#include <string>

namespace cordon::engine {

struct IsolationChoice {
    bool enabled = true;              // the default: isolation on
    std::int64_t changed_at = 0;      // unix seconds; 0 = never changed
    bool exclusive_ranges = false;    // with isolation on: a 64K range per container (cordon-runc)
};

struct AdminLock {
    bool locked = false;
    bool enabled = true;              // the value it is locked to
    std::string source;               // e.g. "/etc/cordon/admin-settings.json on the host"
};

// The mode in force: an admin lock wins over the user's choice.
bool effective_isolation(const IsolationChoice& choice, const AdminLock& lock);

class IsolationStore {
public:
    explicit IsolationStore(std::string path) : path_(std::move(path)) {}
    // A missing file gives the default choice. A malformed one throws cordon::Error
    // naming the file and what is wrong; the file is left as it is.
    IsolationChoice load() const;
    void save(const IsolationChoice& choice) const;  // atomic replace
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace cordon::engine

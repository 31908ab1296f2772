#pragma once
// Settings, in three layers:
//   built-in defaults  <  user settings ($XDG_CONFIG_HOME/cordon/settings.json)
//                      <  admin settings (/etc/cordon/admin-settings.json)
// The admin file holds values and a "locked" list of key names:
//   { "isolation": true, "locked": ["isolation"] }
// and the administrator's policy keys, which only the admin file may hold (see
// cordon/admin_policy.hpp): socketMountImages, allowDerivedImages, commandList, lockVmShell.
// An admin value that is not locked is a default the user may override; a locked
// key always takes the admin value (or the built-in default when the admin file
// locks a key without giving a value) and the user cannot set it.
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cordon/admin_policy.hpp"
#include "cordon/host/shares.hpp"

namespace cordon::host {

enum class Accelerator { automatic, kvm, tcg };
std::string to_string(Accelerator a);

// The effective settings, typed.
struct Settings {
    int cpus = 2;
    int memory_mib = 2048;
    int disk_gib = 20;
    std::string connect_uri;  // empty: qemu:///system as root, qemu:///session otherwise
    Accelerator accelerator = Accelerator::automatic;
    std::string image_dir;  // empty: default_image_dir()
    bool isolation = true;
    bool isolation_locked = false;  // the administrator locked `isolation` to its value
    std::string vm_name = "cordon";
    // Host folders the VM mounts at the same path ("~" expanded to the owner's home).
    std::vector<SharedFolder> shared_folders;
    ShareOwner share_owner;  // who owns what containers create in them
    // The admin file's policy keys (socketMountImages, allowDerivedImages, commandList,
    // lockVmShell): admin-only, handed to the guest through fw_cfg.
    AdminPolicy admin_policy;
    // Engine settings handed to the guest through fw_cfg (cordon/engine_settings.hpp).
    std::vector<std::string> registry_mirrors;
    std::vector<std::string> insecure_registries;
    std::vector<std::string> dns;
    std::vector<std::string> extra_ca_certs;  // PEM files the engine trusts, beside the host's
};

// strings: a list of strings, typed as "a,b,c" ("" is the empty list).
enum class ValueType { integer, string, boolean, choice, folders, strings };

struct KeyInfo {
    std::string name;
    ValueType type;
    std::string description;
    long long min = 0, max = 0;        // integer
    std::vector<std::string> choices;  // choice
    nlohmann::json default_value;
};

// Every known key, in display order.
const std::vector<KeyInfo>& setting_keys();
// nullptr when unknown.
const KeyInfo* find_key(const std::string& name);

enum class Source { builtin, user, admin };
std::string to_string(Source s);

struct SettingValue {
    nlohmann::json value;
    Source source = Source::builtin;
    bool locked = false;
    std::filesystem::path file;  // the file the value came from (empty for built-in)
};

struct SettingsFiles {
    std::filesystem::path user;
    std::filesystem::path admin;
    // The real locations (honours XDG_CONFIG_HOME and CORDON_ADMIN_SETTINGS).
    static SettingsFiles standard();
};

class LayeredSettings {
  public:
    // Reads both files (a missing file is an empty layer). Throws HostError(config)
    // naming the file, the key and the expected type for an invalid file.
    static LayeredSettings load(const SettingsFiles& files);

    const SettingValue& get(const std::string& key) const;  // throws HostError(usage) if unknown
    Settings effective() const;
    const SettingsFiles& files() const { return files_; }

    // "isolation is locked on by the administrator in /etc/cordon/admin-settings.json"
    std::string locked_message(const std::string& key) const;

    // Sets a user value and writes the user file atomically (keeping the other keys
    // of the file, even unknown ones). Throws HostError(locked) for a locked key and
    // HostError(usage) for a value of the wrong type or range, or (extra_ca_certs) a file
    // that is missing or not PEM certificates; nothing is written then.
    void set_user(const std::string& key, const nlohmann::json& value);
    // Removes the key from the user file; the value falls back to admin or built-in.
    void unset_user(const std::string& key);

  private:
    void recompute();
    SettingsFiles files_;
    nlohmann::json user_doc_ = nlohmann::json::object();
    nlohmann::json admin_doc_ = nlohmann::json::object();
    std::vector<std::string> admin_locked_;
    AdminPolicy admin_policy_;
    std::map<std::string, SettingValue> values_;
};

// Parses the text a user typed ("4", "on", "tcg") into a value of the key's type.
// Throws HostError(usage) with the expected type on failure.
nlohmann::json parse_setting_text(const std::string& key, const std::string& text);

// Checks value against the key's type and range. Returns an empty string when
// valid, else a description of what was expected ("an integer from 1 to 64").
std::string check_setting_value(const KeyInfo& key, const nlohmann::json& value);

// Converts a value to the text a user reads ("on", "4", "tcg").
std::string setting_text(const nlohmann::json& value);

}  // namespace cordon::host

#include "cordon/host/settings.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "cordon/engine_settings.hpp"
#include "cordon/host/ca_certs.hpp"
#include "cordon/host/host_error.hpp"
#include "cordon/host/paths.hpp"
#include "cordon/log.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace cordon::host {

std::string to_string(Accelerator a) {
    switch (a) {
        case Accelerator::automatic:
            return "auto";
        case Accelerator::kvm:
            return "kvm";
        case Accelerator::tcg:
            return "tcg";
    }
    return "auto";
}

std::string to_string(Source s) {
    switch (s) {
        case Source::builtin:
            return "default";
        case Source::user:
            return "user";
        case Source::admin:
            return "admin";
    }
    return "default";
}

const std::vector<KeyInfo>& setting_keys() {
    static const std::vector<KeyInfo> keys = [] {
        std::vector<KeyInfo> k;
        k.push_back(
            {"vm_name", ValueType::string, "name of the libvirt domain", 0, 0, {}, "cordon"});
        k.push_back({"cpus", ValueType::integer, "virtual CPUs", 1, 64, {}, 2});
        k.push_back({"memory_mib", ValueType::integer, "memory in MiB", 256, 1048576, {}, 2048});
        k.push_back({"disk_gib",
                     ValueType::integer,
                     "size of the data disk in GiB (when created)",
                     1,
                     16384,
                     {},
                     20});
        k.push_back({"accelerator",
                     ValueType::choice,
                     "auto (probe KVM, else TCG), kvm or tcg",
                     0,
                     0,
                     {"auto", "kvm", "tcg"},
                     "auto"});
        k.push_back({"connect_uri",
                     ValueType::string,
                     "libvirt URI (empty: qemu:///system as root, qemu:///session otherwise)",
                     0,
                     0,
                     {},
                     ""});
        k.push_back({"image_dir",
                     ValueType::string,
                     "folder holding the VM image and its manifest.json (empty: the default)",
                     0,
                     0,
                     {},
                     ""});
        k.push_back({"isolation",
                     ValueType::boolean,
                     "user-namespace isolation of containers",
                     0,
                     0,
                     {},
                     true});
        k.push_back({"shared_folders",
                     ValueType::folders,
                     "host folders the VM mounts at the same path (PATH[:ro],...; ~ is the "
                     "owner's home); with isolation on, only these may be bind-mounted",
                     0,
                     0,
                     {},
                     json::array({json{{"path", "~"}, {"readonly", false}}})});
        k.push_back({"share_owner",
                     ValueType::string,
                     "host user owning what containers create in shared folders (empty: the "
                     "user running Cordon; NAME or UID:GID)",
                     0,
                     0,
                     {},
                     ""});
        k.push_back({"registry_mirrors",
                     ValueType::strings,
                     "registry mirrors dockerd tries before Docker Hub (https://HOST[:PORT],...)",
                     0,
                     0,
                     {},
                     json::array()});
        k.push_back({"insecure_registries",
                     ValueType::strings,
                     "registries dockerd reaches without TLS verification (HOST[:PORT] or "
                     "CIDR,...)",
                     0,
                     0,
                     {},
                     json::array()});
        k.push_back({"dns",
                     ValueType::strings,
                     "DNS servers of containers (IP,...; empty: the VM's)",
                     0,
                     0,
                     {},
                     json::array()});
        k.push_back({"extra_ca_certs",
                     ValueType::strings,
                     "PEM files of CA certificates the engine trusts for pulls and pushes, "
                     "beside the public CAs and the host's /etc/ssl/certs (PATH,...)",
                     0,
                     0,
                     {},
                     json::array()});
        return k;
    }();
    return keys;
}

const KeyInfo* find_key(const std::string& name) {
    for (const auto& k : setting_keys()) {
        if (k.name == name)
            return &k;
    }
    return nullptr;
}

SettingsFiles SettingsFiles::standard() {
    return {user_settings_path(), admin_settings_path()};
}

namespace {

// A value as JSON text for a message. Values typed on the command line may hold bytes
// that are not UTF-8: they are shown replaced, never thrown about.
std::string shown(const json& v) {
    return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string json_type_name(const json& v) {
    if (v.is_boolean())
        return "a boolean";
    if (v.is_number_integer())
        return "an integer";
    if (v.is_number())
        return "a number";
    if (v.is_string())
        return "a string";
    if (v.is_array())
        return "an array";
    if (v.is_object())
        return "an object";
    return "null";
}

std::string known_keys_text() {
    std::string s;
    for (const auto& k : setting_keys()) s += (s.empty() ? "" : ", ") + k.name;
    return s;
}

// Reads and parses one layer. A missing file is an empty layer.
json read_layer(const fs::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return json::object();
        const int err = errno;
        throw HostError(ErrorKind::config, "cannot read settings file: " + errno_string(err),
                        file.string(), "fix the permissions of the file or its folder");
    }
    std::string text;
    try {
        text = read_file(file);
    } catch (const cordon::Error& e) {
        throw HostError(ErrorKind::config, e.failure(), file.string(),
                        "fix the permissions of the file");
    }
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
        throw HostError(ErrorKind::config,
                        std::string("settings file is not valid JSON: ") + e.what(), file.string(),
                        "fix the syntax or remove the file to use the defaults");
    }
    if (!doc.is_object()) {
        throw HostError(ErrorKind::config,
                        "settings file must hold a JSON object, not " + json_type_name(doc),
                        file.string(), R"(write it as {"key": value, ...})");
    }
    return doc;
}

void validate_layer(const json& doc, const fs::path& file, bool admin) {
    for (auto it = doc.begin(); it != doc.end(); ++it) {
        if (admin && (it.key() == "locked" || is_admin_policy_key(it.key())))
            continue;  // "locked" and the policy keys are checked by the caller
        if (is_admin_policy_key(it.key())) {
            log::warn("settings",
                      "{}: ignoring '{}': only the administrator's settings ({}) may set it",
                      file.string(), it.key(), admin_settings_path().string());
            continue;
        }
        const KeyInfo* k = find_key(it.key());
        if (!k) {
            log::warn("settings", "{}: ignoring unknown key '{}' (known keys: {})", file.string(),
                      it.key(), known_keys_text());
            continue;
        }
        std::string expected = check_setting_value(*k, it.value());
        if (!expected.empty()) {
            throw HostError(
                ErrorKind::config,
                "key '" + it.key() + "' must be " + expected + ", not " + shown(it.value()),
                file.string(), "fix the value or remove the key to use the default");
        }
    }
}

// One element of a strings key: empty when valid, else what was expected.
std::string check_list_element(const std::string& key, const std::string& v) {
    if (key == "registry_mirrors")
        return check_registry_mirror(v);
    if (key == "insecure_registries")
        return check_insecure_registry(v);
    if (key == "dns")
        return check_dns_server(v);
    if (key == "extra_ca_certs") {
        if (v.empty() || v.front() != '/' || v.find(',') != std::string::npos)
            return "an absolute path without ','";
        return {};
    }
    return {};
}

std::string list_expected(const std::string& key) {
    if (key == "registry_mirrors")
        return "a list of http:// or https:// URLs of a host[:port], without a path";
    if (key == "insecure_registries")
        return "a list of registries, each " + check_insecure_registry("");
    if (key == "dns")
        return "a list of IPv4 or IPv6 addresses";
    return "a list of absolute paths of PEM files";
}

std::vector<std::string> string_list(const json& v) {
    std::vector<std::string> out;
    for (const auto& e : v) out.push_back(e.get<std::string>());
    return out;
}

}  // namespace

std::string check_setting_value(const KeyInfo& key, const json& v) {
    switch (key.type) {
        case ValueType::integer: {
            std::string expected =
                "an integer from " + std::to_string(key.min) + " to " + std::to_string(key.max);
            if (!v.is_number_integer())
                return expected;
            long long n = v.get<long long>();
            if (n < key.min || n > key.max)
                return expected;
            return {};
        }
        case ValueType::boolean:
            return v.is_boolean() ? std::string() : std::string("a boolean (true or false)");
        case ValueType::string:
            if (!v.is_string())
                return "a string";
            if (key.name == "vm_name") {
                try {
                    validate_vm_name(v.get<std::string>());
                } catch (const HostError&) {
                    return "a name of 1-48 letters, digits, '-', '_' or '.'";
                }
            }
            if (key.name == "share_owner") {
                try {
                    resolve_share_owner(v.get<std::string>());
                } catch (const HostError&) {
                    return "empty, a user name of this host or UID:GID";
                }
            }
            return {};
        case ValueType::folders:
            return check_shared_folders(v);
        case ValueType::strings:
            if (!v.is_array())
                return list_expected(key.name);
            for (const auto& e : v) {
                if (!e.is_string())
                    return list_expected(key.name);
                const std::string bad = check_list_element(key.name, e.get<std::string>());
                if (!bad.empty())
                    return list_expected(key.name) + " (" + shown(e) + " is not " + bad + ")";
            }
            return {};
        case ValueType::choice: {
            std::string expected = "one of";
            for (const auto& c : key.choices) expected += " \"" + c + "\"";
            if (!v.is_string())
                return expected;
            if (std::find(key.choices.begin(), key.choices.end(), v.get<std::string>()) ==
                key.choices.end())
                return expected;
            return {};
        }
    }
    return {};
}

std::string setting_text(const json& v) {
    if (v.is_array() && std::all_of(v.begin(), v.end(), [](const json& e) {
            return e.is_string();
        })) {  // a strings key: a,b,c
        std::string s;
        for (const auto& e : v) s += (s.empty() ? "" : ",") + e.get<std::string>();
        return s;
    }
    if (v.is_array()) {  // shared_folders: PATH[:ro],...
        std::string s;
        for (const auto& e : v) {
            if (!e.is_object() || !e.contains("path") || !e["path"].is_string())
                return shown(v);
            s += (s.empty() ? "" : ",") + e["path"].get<std::string>() +
                 (e.value("readonly", false) ? ":ro" : "");
        }
        return s;
    }
    if (v.is_boolean())
        return v.get<bool>() ? "on" : "off";
    if (v.is_string())
        return v.get<std::string>();
    return shown(v);
}

json parse_setting_text(const std::string& key, const std::string& text) {
    const KeyInfo* k = find_key(key);
    if (!k)
        throw HostError(ErrorKind::usage, "unknown setting '" + key + "'", {},
                        "known settings: " + known_keys_text());
    json v;
    switch (k->type) {
        case ValueType::integer: {
            long long n = 0;
            size_t used = 0;
            try {
                n = std::stoll(text, &used, 10);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != text.size() || text.empty()) {
                throw HostError(
                    ErrorKind::usage,
                    "setting '" + key + "' must be " + check_setting_value(*k, json("x")), text);
            }
            v = n;
            break;
        }
        case ValueType::boolean:
            if (text == "on" || text == "true" || text == "yes" || text == "1") {
                v = true;
            } else if (text == "off" || text == "false" || text == "no" || text == "0") {
                v = false;
            } else {
                throw HostError(ErrorKind::usage, "setting '" + key + "' must be on or off", text);
            }
            break;
        case ValueType::string:
        case ValueType::choice:
            v = text;
            break;
        case ValueType::folders:
            v = parse_shared_folders_text(text);
            break;
        case ValueType::strings: {
            v = json::array();
            std::size_t pos = 0;
            while (!text.empty() && pos <= text.size()) {
                const std::size_t comma = std::min(text.find(',', pos), text.size());
                v.push_back(text.substr(pos, comma - pos));
                pos = comma + 1;
            }
            break;
        }
    }
    std::string expected = check_setting_value(*k, v);
    if (!expected.empty())
        throw HostError(ErrorKind::usage, "setting '" + key + "' must be " + expected, text);
    return v;
}

LayeredSettings LayeredSettings::load(const SettingsFiles& files) {
    LayeredSettings s;
    s.files_ = files;
    s.user_doc_ = read_layer(files.user);
    validate_layer(s.user_doc_, files.user, false);
    s.admin_doc_ = read_layer(files.admin);
    validate_layer(s.admin_doc_, files.admin, true);
    if (auto it = s.admin_doc_.find("locked"); it != s.admin_doc_.end()) {
        if (!it->is_array()) {
            throw HostError(ErrorKind::config,
                            "key 'locked' must be an array of setting names, not " + shown(*it),
                            files.admin.string(), R"(write it as "locked": ["isolation", ...])");
        }
        for (const auto& name : *it) {
            if (!name.is_string() || !find_key(name.get<std::string>())) {
                throw HostError(ErrorKind::config,
                                "key 'locked' names an unknown setting " + shown(name),
                                files.admin.string(), "known settings: " + known_keys_text());
            }
            s.admin_locked_.push_back(name.get<std::string>());
        }
    }
    try {
        s.admin_policy_ = parse_admin_policy(s.admin_doc_);
        (void)guest_document(s.admin_policy_);  // refuses a policy too large for the guest
    } catch (const cordon::Error& e) {
        throw HostError(ErrorKind::config, e.failure() + " (" + e.subject() + ")",
                        files.admin.string(), e.hint());
    }
    s.recompute();
    return s;
}

void LayeredSettings::recompute() {
    values_.clear();
    for (const auto& k : setting_keys()) {
        SettingValue v{k.default_value, Source::builtin, false, {}};
        const bool locked =
            std::find(admin_locked_.begin(), admin_locked_.end(), k.name) != admin_locked_.end();
        auto admin_it = admin_doc_.find(k.name);
        auto user_it = user_doc_.find(k.name);
        if (locked) {
            v.locked = true;
            v.source = Source::admin;
            v.file = files_.admin;
            if (admin_it != admin_doc_.end())
                v.value = *admin_it;
        } else if (user_it != user_doc_.end()) {
            v = {*user_it, Source::user, false, files_.user};
        } else if (admin_it != admin_doc_.end()) {
            v = {*admin_it, Source::admin, false, files_.admin};
        }
        values_[k.name] = v;
    }
}

const SettingValue& LayeredSettings::get(const std::string& key) const {
    auto it = values_.find(key);
    if (it == values_.end()) {
        throw HostError(ErrorKind::usage, "unknown setting '" + key + "'", {},
                        "known settings: " + known_keys_text());
    }
    return it->second;
}

std::string LayeredSettings::locked_message(const std::string& key) const {
    const SettingValue& v = get(key);
    return key + " is locked " + (v.value.is_string() || v.value.is_number() ? "to " : "") +
           setting_text(v.value) + " by the administrator in " + files_.admin.string();
}

Settings LayeredSettings::effective() const {
    Settings s;
    s.vm_name = get("vm_name").value.get<std::string>();
    s.cpus = get("cpus").value.get<int>();
    s.memory_mib = get("memory_mib").value.get<int>();
    s.disk_gib = get("disk_gib").value.get<int>();
    const std::string acc = get("accelerator").value.get<std::string>();
    s.accelerator = acc == "kvm"   ? Accelerator::kvm
                    : acc == "tcg" ? Accelerator::tcg
                                   : Accelerator::automatic;
    s.connect_uri = get("connect_uri").value.get<std::string>();
    s.image_dir = get("image_dir").value.get<std::string>();
    s.isolation = get("isolation").value.get<bool>();
    s.isolation_locked = get("isolation").locked;
    s.share_owner = resolve_share_owner(get("share_owner").value.get<std::string>());
    s.shared_folders = shared_folders_from_json(get("shared_folders").value, s.share_owner.home);
    s.admin_policy = admin_policy_;
    s.registry_mirrors = string_list(get("registry_mirrors").value);
    s.insecure_registries = string_list(get("insecure_registries").value);
    s.dns = string_list(get("dns").value);
    s.extra_ca_certs = string_list(get("extra_ca_certs").value);
    return s;
}

void LayeredSettings::set_user(const std::string& key, const json& value) {
    const KeyInfo* k = find_key(key);
    if (!k)
        throw HostError(ErrorKind::usage, "unknown setting '" + key + "'", {},
                        "known settings: " + known_keys_text());
    if (get(key).locked) {
        throw HostError(ErrorKind::locked, locked_message(key), {},
                        "ask your administrator to unlock it");
    }
    std::string expected = check_setting_value(*k, value);
    if (!expected.empty()) {
        throw HostError(ErrorKind::usage,
                        "setting '" + key + "' must be " + expected + ", not " + shown(value));
    }
    if (key == "extra_ca_certs") {  // each file must be there and hold certificates now
        for (const auto& path : value)
            (void)read_ca_file(path.get<std::string>(), "extra_ca_certs");
    }
    json doc = user_doc_;
    doc[key] = value;
    write_file_atomic(files_.user, doc.dump(2) + "\n", 0644);
    user_doc_ = std::move(doc);
    recompute();
}

void LayeredSettings::unset_user(const std::string& key) {
    if (!find_key(key)) {
        throw HostError(ErrorKind::usage, "unknown setting '" + key + "'", {},
                        "known settings: " + known_keys_text());
    }
    if (!user_doc_.contains(key))
        return;
    json doc = user_doc_;
    doc.erase(key);
    write_file_atomic(files_.user, doc.dump(2) + "\n", 0644);
    user_doc_ = std::move(doc);
    recompute();
}

}  // namespace cordon::host

#include "cordon/admin_policy.hpp"

#include <algorithm>

#include "cordon/error.hpp"

namespace cordon {

using nlohmann::json;

namespace {

bool is_hex64(std::string_view s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// A repository name as Docker writes it: lowercase letters, digits, and the separators
// '.', '_', '-', '/', ':' (a registry port); nothing a shell or a parser would re-read.
bool is_repository(std::string_view s) {
    return !s.empty() && s.size() <= 255 && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-' || c == '/' || c == ':';
    });
}

void check_image(const std::string& s) {
    constexpr std::string_view kId = "sha256:";
    constexpr std::string_view kDigest = "@sha256:";
    if (s.starts_with(kId) && is_hex64(std::string_view(s).substr(kId.size())))
        return;
    const auto at = s.find(kDigest);
    if (at != std::string::npos && is_repository(std::string_view(s).substr(0, at)) &&
        is_hex64(std::string_view(s).substr(at + kDigest.size())))
        return;
    throw Error("bad admin setting socketMountImages: an image must be named by its digest", s,
                "write \"sha256:<64 hex digits of the image ID>\" or "
                "\"<repository>@sha256:<64 hex digits>\" (a tag can be moved to another image)");
}

// An operation name of docs/POLICY.md's endpoint table ("image.push"), a group
// ("image.*") or everything ("*").
bool is_command_pattern(std::string_view s) {
    if (s == "*")
        return true;
    if (s.ends_with(".*"))
        s.remove_suffix(2);
    if (s.empty() || s.size() > 64 || s.front() == '.' || s.back() == '.')
        return false;
    char prev = 0;
    for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || c == '_' || (c == '.' && prev != '.');
        if (!ok)
            return false;
        prev = c;
    }
    return true;
}

void need(bool ok, const std::string& key, const std::string& expected) {
    if (!ok)
        throw Error("bad admin setting " + key + ": it must be " + expected, key,
                    "fix the value in the admin settings or remove the key");
}

void parse_command_list(const json& v, AdminPolicy& p) {
    need(v.is_object(), "commandList",
         R"(an object {"type": "allow"|"deny", "commands": ["image.push", "image.*", ...]})");
    for (const auto& [k, e] : v.items()) {
        if (k == "type") {
            need(e.is_string() && (e == "allow" || e == "deny"), "commandList.type",
                 "\"allow\" or \"deny\"");
            p.command_list_type = e.get<std::string>();
        } else if (k == "commands") {
            need(e.is_array(), "commandList.commands", "an array of operation names");
            for (const auto& c : e) {
                need(c.is_string(), "commandList.commands", "an array of strings");
                const auto name = c.get<std::string>();
                if (!is_command_pattern(name))
                    throw Error("bad admin setting commandList.commands: not an operation name",
                                name,
                                "use the names of docs/POLICY.md's endpoint table "
                                "(\"image.push\"), a group (\"image.*\") or \"*\"");
                p.commands.push_back(name);
            }
        } else {
            throw Error("unknown admin setting commandList." + k, k,
                        "commandList has the keys type and commands");
        }
    }
    if (!v.contains("type"))
        throw Error("bad admin setting commandList: \"type\" is missing", "commandList.type",
                    "say \"allow\" (only the listed operations) or \"deny\" (all but them)");
}

}  // namespace

bool is_admin_policy_key(std::string_view key) {
    return std::find(std::begin(kAdminPolicyKeys), std::end(kAdminPolicyKeys), key) !=
           std::end(kAdminPolicyKeys);
}

AdminPolicy deny_all_admin_policy() {
    AdminPolicy p;
    p.command_list_type = "allow";  // an empty allow list: nothing
    p.lock_vm_shell = true;
    return p;
}

AdminPolicy parse_admin_policy(const json& admin) {
    if (!admin.is_object())
        throw Error("the admin settings must be a JSON object", "admin settings",
                    R"(write them as {"key": value, ...})");
    AdminPolicy p;
    if (auto it = admin.find("socketMountImages"); it != admin.end()) {
        need(it->is_array(), "socketMountImages", "an array of image digests");
        for (const auto& e : *it) {
            need(e.is_string(), "socketMountImages", "an array of strings");
            check_image(e.get<std::string>());
            p.socket_mount_images.push_back(e.get<std::string>());
        }
    }
    if (auto it = admin.find("allowDerivedImages"); it != admin.end()) {
        need(it->is_boolean(), "allowDerivedImages", "true or false");
        p.allow_derived_images = it->get<bool>();
    }
    if (auto it = admin.find("commandList"); it != admin.end())
        parse_command_list(*it, p);
    if (auto it = admin.find("lockVmShell"); it != admin.end()) {
        need(it->is_boolean(), "lockVmShell", "true or false");
        p.lock_vm_shell = it->get<bool>();
    }
    return p;
}

std::string guest_document(const AdminPolicy& p) {
    const json doc = {{"version", 1},
                      {"socketMountImages", p.socket_mount_images},
                      {"allowDerivedImages", p.allow_derived_images},
                      {"commandList", {{"type", p.command_list_type}, {"commands", p.commands}}},
                      {"lockVmShell", p.lock_vm_shell}};
    std::string text = doc.dump();
    if (text.size() > kMaxGuestDocument)
        throw Error("the admin policy settings are too large for the guest (" +
                        std::to_string(text.size()) + " bytes)",
                    "socketMountImages, commandList",
                    "keep them under " + std::to_string(kMaxGuestDocument) + " bytes");
    return text;
}

AdminPolicy parse_guest_document(std::string_view text) {
    if (text.size() > kMaxGuestDocument)
        throw Error("the admin settings from the host are too large (" +
                        std::to_string(text.size()) + " bytes)",
                    "admin settings", "the host sends at most 64 KiB; restart the VM with vmctl");
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {
        throw Error(std::string("the admin settings from the host are not valid JSON: ") + e.what(),
                    "admin settings", "restart the VM with vmctl");
    }
    if (!doc.is_object())
        throw Error("the admin settings from the host must be a JSON object", "admin settings",
                    "restart the VM with vmctl");
    if (!doc.contains("version") || doc["version"] != 1)
        throw Error("the admin settings from the host have an unknown version", "version",
                    "use the vmctl that came with this guest image");
    for (const auto& [k, v] : doc.items()) {
        if (k != "version" && !is_admin_policy_key(k))
            throw Error("unknown admin setting from the host", k,
                        "known keys: socketMountImages, allowDerivedImages, commandList, "
                        "lockVmShell");
    }
    return parse_admin_policy(doc);
}

}  // namespace cordon

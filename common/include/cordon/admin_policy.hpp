#pragma once
// The administrator's policy settings that the host hands to the guest (docs/POLICY.md,
// "Admin settings"): which images may hold the Docker socket, what such containers may
// do, and whether `vmctl shell`/`exec` (a root shell in the VM) is locked.
//
// The host reads them from its admin file (/etc/cordon/admin-settings.json, beside the
// vmctl settings there) with parse_admin_policy(), and passes guest_document() to the
// guest through QEMU fw_cfg (docs/ARCHITECTURE.md). The guest reads that document with
// parse_guest_document(): the same rules, checked again on the guest's side.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace cordon {

struct AdminPolicy {
    // Images that may mount the Docker socket, by digest: "sha256:<64 hex>" (an image ID)
    // or "<repository>@sha256:<64 hex>" (a repo digest).
    std::vector<std::string> socket_mount_images;
    // Docker Desktop's allowDerivedImages. Carried to the guest; only exact digests
    // are matched there today (derived images are refused: stricter, never looser).
    bool allow_derived_images = false;
    // commandList: "deny" (all but the listed operations) or "allow" (only them).
    std::string command_list_type = "deny";
    std::vector<std::string> commands;
    // lockVmShell: refuse `vmctl shell` and `vmctl exec` (a root shell in the VM).
    bool lock_vm_shell = false;

    bool operator==(const AdminPolicy&) const = default;
};

// The admin file's keys that make up the policy.
inline constexpr const char* kAdminPolicyKeys[] = {"socketMountImages", "allowDerivedImages",
                                                   "commandList", "lockVmShell"};
bool is_admin_policy_key(std::string_view key);

// What the guest uses when the settings it was told to expect are missing or malformed:
// no image may hold the socket, socket-holding containers may do nothing, the VM shell
// is locked.
AdminPolicy deny_all_admin_policy();

// Reads the policy keys of an admin settings object (other keys are left to the caller).
// Throws cordon::Error naming the key, what is wrong and how to write it.
AdminPolicy parse_admin_policy(const nlohmann::json& admin);

// The document the guest receives: {"version": 1, <the policy keys>}, compact.
std::string guest_document(const AdminPolicy& policy);
// Parses it strictly (unknown keys, another version, bad values: cordon::Error).
AdminPolicy parse_guest_document(std::string_view text);

// The largest document the host sends and the guest reads.
inline constexpr std::size_t kMaxGuestDocument = 64 * 1024;

}  // namespace cordon

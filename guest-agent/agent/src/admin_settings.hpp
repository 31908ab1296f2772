#pragma once
// The administrator's policy settings in the guest (docs/POLICY.md, "Admin settings").
// vmctl passes them as the QEMU fw_cfg file opt/org.cordon/admin and says so on the kernel
// command line (cordon.admin=fw_cfg). The agent copies what it received to
// /etc/cordon/admin-settings.json (root-only) at its start, before it serves the channel
// or the policy proxy, and loads the policy from that file. Missing or malformed settings
// that the host said it sent: the deny-all policy (no image may hold the Docker socket,
// socket-holding containers may do nothing, the VM shell is locked) and a clear error.
#include <functional>
#include <string>

#include "cordon/admin_policy.hpp"
#include "cordon/proxy/policy.hpp"

namespace cordon::agent {

struct AdminPaths {
    std::string fw_cfg_root = "/sys/firmware/qemu_fw_cfg";  // the qemu_fw_cfg module's sysfs
    std::string file = "/etc/cordon/admin-settings.json";   // the copy the policy reads
};

struct AdminState {
    std::string state = "none";  // none (no settings: defaults), ok, error (deny-all)
    std::string source;          // "fw_cfg", the file, or empty
    std::string message;         // for a person (error: what failed and how to fix it)
    AdminPolicy policy;
};

// The fw_cfg file's sysfs path under `fw_cfg_root`.
std::string admin_fw_cfg_path(const std::string& fw_cfg_root);

// Receives and loads the settings. `load_module` is called once when fw_cfg_root is
// missing (the agent runs `modprobe qemu_fw_cfg`). Never throws.
AdminState receive_admin_settings(const std::string& kernel_cmdline, const AdminPaths& paths,
                                  const std::function<void()>& load_module);

// Copies the policy keys into the proxy's configuration. Operation names the policy does
// not know make `state` an error and the policy deny-all (a typo must not loosen).
void apply_admin_policy(AdminState& admin, policy::PolicyConfig& config);

// Empty when the VM shell may be used; else why not (for `vmctl shell` and `vmctl exec`).
std::string shell_refusal(const AdminState& admin);

}  // namespace cordon::agent

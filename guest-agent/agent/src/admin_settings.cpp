#include "admin_settings.hpp"

#include <unistd.h>

#include <sstream>

#include "cmdline_words.hpp"
#include "cordon/atomic_file.hpp"
#include "cordon/error.hpp"
#include "cordon/log.hpp"

namespace cordon::agent {

namespace {

constexpr const char* kAdminSettingsLog = "admin";
constexpr const char* kFwCfgName = "opt/org.cordon/admin";

AdminState deny_all(std::string source, std::string message) {
    log::error(kAdminSettingsLog,
               "{}; denying by default: no image may hold the Docker socket, "
               "socket-holding containers may do nothing, the VM shell is locked",
               message);
    return {"error", std::move(source), std::move(message), deny_all_admin_policy()};
}

// fw_cfg -> the file. Throws cordon::Error naming what failed.
void install_from_fw_cfg(const AdminPaths& paths, const std::function<void()>& load_module) {
    if (!path_exists(paths.fw_cfg_root) && load_module)
        load_module();
    const std::string raw = admin_fw_cfg_path(paths.fw_cfg_root);
    if (!path_exists(paths.fw_cfg_root))
        throw Error("the QEMU fw_cfg interface is missing", paths.fw_cfg_root,
                    "the image must load the qemu_fw_cfg module (images/build-image.sh)");
    if (!path_exists(raw))
        throw Error("the host said it sent admin settings in fw_cfg, but there are none", raw,
                    "start the VM with vmctl (it writes them into the domain)");
    const std::string text = read_file(raw);
    parse_guest_document(text);  // refuse before writing: the file holds only what parses
    write_file_atomically(paths.file, text, 0600);
}

}  // namespace

std::string admin_fw_cfg_path(const std::string& fw_cfg_root) {
    return fw_cfg_root + "/by_name/" + kFwCfgName + "/raw";
}

AdminState receive_admin_settings(const std::string& kernel_cmdline, const AdminPaths& paths,
                                  const std::function<void()>& load_module) {
    const bool sent = cmdline_has_word(kernel_cmdline, "cordon.admin=fw_cfg");
    try {
        if (sent)
            install_from_fw_cfg(paths, load_module);
        else if (!path_exists(paths.file))
            return {"none", "", "no admin settings (the host did not send any)", {}};
        AdminState st{"ok", sent ? "fw_cfg" : paths.file, "", {}};
        st.policy = parse_guest_document(read_file(paths.file));
        st.message = "loaded from " + paths.file;
        log::info(kAdminSettingsLog,
                  "admin settings {} ({} socket image(s){}, commandList {} of {}, "
                  "VM shell {})",
                  st.message, st.policy.socket_mount_images.size(),
                  st.policy.allow_derived_images ? " and images derived from them" : "",
                  st.policy.command_list_type,
                  st.policy.commands.size(), st.policy.lock_vm_shell ? "locked" : "allowed");
        return st;
    } catch (const std::exception& e) {
        return deny_all(sent ? "fw_cfg" : paths.file,
                        std::string("cannot load the admin settings: ") + e.what());
    }
}

void apply_admin_policy(AdminState& admin, policy::PolicyConfig& config) {
    for (const auto& c : admin.policy.commands) {
        if (!policy::is_operation_pattern(c)) {
            admin = deny_all(admin.source,
                             "cannot load the admin settings: commandList names "
                             "an operation the policy does not know: " +
                                 c + " (see docs/POLICY.md's endpoint table)");
            break;
        }
    }
    config.socket_image_allowlist = admin.policy.socket_mount_images;
    config.socket_allow_derived_images = admin.policy.allow_derived_images;
    config.command_list.type = admin.policy.command_list_type == "allow"
                                   ? policy::CommandList::Type::allow
                                   : policy::CommandList::Type::deny;
    config.command_list.commands = admin.policy.commands;
}

std::string shell_refusal(const AdminState& admin) {
    if (!admin.policy.lock_vm_shell)
        return {};
    if (admin.state == "error")
        return "the VM shell is locked because the administrator's settings could not be "
               "loaded (" +
               admin.message + ")";
    return "the VM shell (vmctl shell, vmctl exec) is locked by the administrator: "
           "lockVmShell in /etc/cordon/admin-settings.json on the host";
}

}  // namespace cordon::agent

#pragma once
// The user's engine settings in the guest (cordon/engine_settings.hpp). vmctl passes them
// as the QEMU fw_cfg file opt/org.cordon/engine and says so on the kernel command line
// (cordon.engine=fw_cfg). Before dockerd starts, the agent
//  - writes the system CA bundle (/etc/ssl/certs/ca-certificates.crt, on the root's tmpfs
//    overlay): the image's public CAs, then the host's trust store and extra_ca_certs.
//    dockerd (Go) reads it once, for every registry it talks to;
//  - writes dockerd's base configuration: the image's daemon.json with registry-mirrors,
//    insecure-registries and dns merged in (engine_config.hpp adds the per-mode keys).
// Nothing sent or a bad document: the image's CAs and configuration, and an error logged
// (these settings widen what the engine trusts; none of them is a restriction).
#include <string>

#include "cordon/engine_settings.hpp"

namespace cordon::agent {

struct EngineSettingsPaths {
    std::string fw_cfg_root = "/sys/firmware/qemu_fw_cfg";
    std::string image_ca_bundle = "/usr/share/cordon/ca-certificates.crt";  // the image's
    std::string ca_bundle = "/etc/ssl/certs/ca-certificates.crt";           // what dockerd reads
    std::string image_daemon_json = "/etc/docker/daemon.json";      // the image's (read-only)
    std::string daemon_base_json = "/run/cordon/daemon.base.json";  // written here
};

struct EngineSettingsState {
    std::string state = "none";  // none (not sent), ok, error (the image's defaults)
    std::string message;         // for a person
    EngineSettings settings;
};

// The fw_cfg file's sysfs path under `fw_cfg_root`.
std::string engine_fw_cfg_path(const std::string& fw_cfg_root);

// Receives the settings and writes both files (each atomically, the bundle only when
// certificates were sent). Never throws: a failure is logged and returned.
EngineSettingsState receive_engine_settings(const std::string& kernel_cmdline,
                                            const EngineSettingsPaths& paths);

}  // namespace cordon::agent

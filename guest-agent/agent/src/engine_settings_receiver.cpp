#include "engine_settings_receiver.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cmdline_words.hpp"
#include "cordon/atomic_file.hpp"
#include "cordon/error.hpp"
#include "cordon/log.hpp"

namespace cordon::agent {

namespace {

constexpr const char* kEngineSettingsReceiverLog = "engine-settings";

nlohmann::json image_daemon_config(const EngineSettingsPaths& paths) {
    if (!path_exists(paths.image_daemon_json))
        return nlohmann::json::object();
    auto cfg = nlohmann::json::parse(read_file(paths.image_daemon_json), nullptr, false);
    if (!cfg.is_object())
        throw Error("the image's dockerd configuration is not a JSON object",
                    paths.image_daemon_json, "rebuild the VM image");
    return cfg;
}

void make_parent(const std::string& file) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(file).parent_path(), ec);
    if (ec)
        throw Error("cannot create the folder: " + ec.message(),
                    std::filesystem::path(file).parent_path().string(),
                    "is the root's overlay writable?");
}

// Writes the base configuration (the image's, plus `settings` when given).
void write_daemon_base(const EngineSettingsPaths& paths, const EngineSettings* settings) {
    auto cfg = image_daemon_config(paths);
    if (settings)
        merge_into_daemon_config(*settings, cfg);
    write_file_atomically(paths.daemon_base_json, cfg.dump(2) + "\n", 0644);
}

}  // namespace

std::string engine_fw_cfg_path(const std::string& fw_cfg_root) {
    return fw_cfg_root + "/by_name/opt/org.cordon/engine/raw";
}

EngineSettingsState receive_engine_settings(const std::string& kernel_cmdline,
                                            const EngineSettingsPaths& paths) {
    EngineSettingsState st;
    try {
        if (!cmdline_has_word(kernel_cmdline, "cordon.engine=fw_cfg")) {
            write_daemon_base(paths, nullptr);
            st.message = "no engine settings (the host did not send any)";
            return st;
        }
        const std::string raw = engine_fw_cfg_path(paths.fw_cfg_root);
        if (!path_exists(raw))
            throw Error("the host said it sent engine settings in fw_cfg, but there are none", raw,
                        "start the VM with vmctl (it writes them into the domain)");
        st.settings = parse_engine_document(read_file(raw));  // whole and valid, or nothing
        if (!st.settings.ca_certificates.empty()) {
            std::string bundle =
                path_exists(paths.image_ca_bundle) ? read_file(paths.image_ca_bundle) : std::string();
            if (!bundle.empty() && bundle.back() != '\n')
                bundle += '\n';
            bundle += st.settings.ca_certificates;
            make_parent(paths.ca_bundle);
            write_file_atomically(paths.ca_bundle, bundle, 0644);
        }
        write_daemon_base(paths, &st.settings);
        st.state = "ok";
        st.message = "registry mirrors " + std::to_string(st.settings.registry_mirrors.size()) +
                     ", insecure registries " +
                     std::to_string(st.settings.insecure_registries.size()) + ", DNS servers " +
                     std::to_string(st.settings.dns.size()) + ", host CA bytes " +
                     std::to_string(st.settings.ca_certificates.size());
        log::info(kEngineSettingsReceiverLog, "engine settings from fw_cfg: {}", st.message);
    } catch (const std::exception& e) {
        st.state = "error";
        st.message =
            std::string("cannot apply the engine settings (using the image's): ") + e.what();
        st.settings = {};
        log::error(kEngineSettingsReceiverLog, "{}", st.message);
        try {
            write_daemon_base(paths, nullptr);
        } catch (const std::exception& again) {
            log::error(kEngineSettingsReceiverLog, "cannot write dockerd's base configuration: {}", again.what());
        }
    }
    return st;
}

}  // namespace cordon::agent

// libFuzzer target: the layered settings files (user and admin) and the text a user
// types for a key (vmctl config set / the GUI).
// Input: user file bytes, a 0xff 0x00 separator, admin file bytes, separator, typed text.
// Invariants: no crash; a bad file or text is only ever a HostError (it names the file
// or the key); loading never changes either file; accepted values pass the key's own
// check, and a typed value that was accepted reads back as the same value.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cordon/host/host_error.hpp"
#include "cordon/host/settings.hpp"
#include "cordon/log.hpp"

using namespace cordon::host;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> split(std::string_view in) {
    std::vector<std::string> parts;
    const std::string_view sep("\xff\x00", 2);
    while (parts.size() < 2) {
        const auto at = in.find(sep);
        if (at == std::string_view::npos)
            break;
        parts.emplace_back(in.substr(0, at));
        in.remove_prefix(at + sep.size());
    }
    parts.emplace_back(in);
    while (parts.size() < 3) parts.emplace_back();
    return parts;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

const fs::path& dir() {
    static const fs::path d = [] {
        cordon::log::set_level(cordon::log::Level::error);  // unknown keys only warn
        fs::path p =
            fs::temp_directory_path() / ("cordon-fuzz-settings-" + std::to_string(::getpid()));
        fs::create_directories(p);
        return p;
    }();
    return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto parts = split(std::string_view(reinterpret_cast<const char*>(data), size));
    SettingsFiles files{dir() / "settings.json", dir() / "admin-settings.json"};
    // An empty part means "no such file" (the built-in layer).
    for (int i = 0; i < 2; ++i) {
        const fs::path& p = i == 0 ? files.user : files.admin;
        std::error_code ec;
        fs::remove(p, ec);
        if (!parts[i].empty())
            std::ofstream(p, std::ios::binary) << parts[i];
    }
    try {
        const LayeredSettings s = LayeredSettings::load(files);
        for (const auto& k : setting_keys()) {
            const SettingValue& v = s.get(k.name);
            // A locked key without an admin value has the built-in default; either way the
            // effective value must pass the key's own check.
            if (!check_setting_value(k, v.value).empty())
                __builtin_trap();
            (void)setting_text(v.value);
        }
        (void)s.effective();
    } catch (const HostError&) {
    }
    for (int i = 0; i < 2; ++i) {
        const fs::path& p = i == 0 ? files.user : files.admin;
        if (!parts[i].empty() && slurp(p) != parts[i])
            __builtin_trap();  // loading wrote to a settings file
    }

    // Typed text for one key, chosen by the text's first byte.
    const std::string& typed = parts[2];
    if (!typed.empty()) {
        const auto& keys = setting_keys();
        const KeyInfo& k = keys[static_cast<unsigned char>(typed[0]) % keys.size()];
        try {
            const nlohmann::json v = parse_setting_text(k.name, typed.substr(1));
            if (!check_setting_value(k, v).empty())
                __builtin_trap();
            if (k.type != ValueType::folders) {
                const nlohmann::json again = parse_setting_text(k.name, setting_text(v));
                if (again != v)
                    __builtin_trap();
            }
        } catch (const HostError&) {
        }
    }
    return 0;
}

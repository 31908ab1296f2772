#include "commands.hpp"

namespace vmctl {

using namespace cordon::host;
using nlohmann::json;

CLI::App* SettingsCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "settings", "Read or change settings (defaults < user file < administrator's locked keys)");
    app_->require_subcommand(1);
    get_ =
        app_->add_subcommand("get", "Show every setting, or one, with where its value comes from");
    get_->add_option("key", key_, "A setting name");
    set_ = app_->add_subcommand("set", "Set a setting in your settings file");
    set_->add_option("key", key_, "A setting name")->required();
    set_->add_option("value", value_, "The value (numbers, on/off, text)")->required();
    unset_ = app_->add_subcommand("unset",
                                  "Remove a setting from your settings file (back to the default)");
    unset_->add_option("key", key_, "A setting name")->required();
    return app_;
}

namespace {

json describe(const LayeredSettings& s, const KeyInfo& k) {
    const SettingValue& v = s.get(k.name);
    return {{"key", k.name},      {"value", v.value},        {"source", to_string(v.source)},
            {"locked", v.locked}, {"file", v.file.string()}, {"description", k.description}};
}

void print(std::ostream& o, const LayeredSettings& s, const KeyInfo& k) {
    const SettingValue& v = s.get(k.name);
    o << fmt::format("{:<12} {:<24} {}", k.name,
                     setting_text(v.value).empty() ? "\"\"" : setting_text(v.value),
                     v.locked ? "locked by the administrator (" + v.file.string() + ")"
                     : v.source == Source::builtin
                         ? std::string("default")
                         : to_string(v.source) + " (" + v.file.string() + ")")
      << "\n";
}

}  // namespace

int SettingsCommand::run(Context& ctx) {
    LayeredSettings& s = ctx.settings();
    if (get_->parsed()) {
        if (!key_.empty()) {
            const KeyInfo* k = find_key(key_);
            if (!k)
                s.get(key_);  // throws the unknown-key error
            ctx.out().result(describe(s, *k), [&](std::ostream& o) {
                o << setting_text(s.get(key_).value) << "\n";
            });
        } else {
            json all = json::array();
            for (const auto& k : setting_keys()) all.push_back(describe(s, k));
            ctx.out().result({{"settings", all},
                              {"user_file", s.files().user.string()},
                              {"admin_file", s.files().admin.string()}},
                             [&](std::ostream& o) {
                                 for (const auto& k : setting_keys()) print(o, s, k);
                             });
        }
        return Exit::ok;
    }
    if (set_->parsed()) {
        s.set_user(key_, parse_setting_text(key_, value_));
        ctx.out().result(describe(s, *find_key(key_)), [&](std::ostream& o) {
            o << key_ << " = " << setting_text(s.get(key_).value) << " (in "
              << s.files().user.string() << ")\n";
            if (key_ == "cpus" || key_ == "memory_mib" || key_ == "accelerator" ||
                key_ == "image_dir" || key_ == "registry_mirrors" ||
                key_ == "insecure_registries" || key_ == "dns" || key_ == "extra_ca_certs")
                o << "takes effect at the next `vmctl start` (or `vmctl restart`)\n";
            if (key_ == "disk_gib")
                o << "applies when the data disk is created (after `vmctl delete`)\n";
        });
        return Exit::ok;
    }
    s.unset_user(key_);
    ctx.out().result(describe(s, *find_key(key_)), [&](std::ostream& o) {
        o << key_ << " = " << setting_text(s.get(key_).value) << " ("
          << to_string(s.get(key_).source) << ")\n";
    });
    return Exit::ok;
}

}  // namespace vmctl

#include "settings_store.hpp"

#include "cordon/host/host_error.hpp"
#include "cordon/host/paths.hpp"

using nlohmann::json;

namespace cordon::gui {

SettingsStore::SettingsStore(host::SettingsFiles files, QObject* parent)
    : QObject(parent), files_(std::move(files)) {
    reload();
}

void SettingsStore::reload() {
    try {
        layered_ = host::LayeredSettings::load(files_);
        loadError_ = {};
    } catch (...) {
        layered_.reset();
        loadError_ = ErrorInfo::fromCurrentException();
    }
    emit changed();
}

host::Settings SettingsStore::effective() const {
    return layered_ ? layered_->effective() : host::Settings{};
}

json SettingsStore::value(const std::string& key) const {
    if (layered_)
        return layered_->get(key).value;
    const host::KeyInfo* k = host::find_key(key);
    return k ? k->default_value : json();
}

QString SettingsStore::valueText(const std::string& key) const {
    return QString::fromStdString(host::setting_text(value(key)));
}

QString SettingsStore::sourceText(const std::string& key) const {
    if (!layered_)
        return QStringLiteral("default");
    switch (layered_->get(key).source) {
        case host::Source::builtin:
            return QStringLiteral("default");
        case host::Source::user:
            return QStringLiteral("yours");
        case host::Source::admin:
            return QStringLiteral("administrator");
    }
    return {};
}

bool SettingsStore::isLocked(const std::string& key) const {
    // Settings that cannot be read are not editable either.
    if (!layered_)
        return true;
    return layered_->get(key).locked;
}

QString SettingsStore::lockReason(const std::string& key) const {
    if (!layered_) {
        return QStringLiteral("the settings cannot be read: ") + loadError_.what;
    }
    if (!layered_->get(key).locked)
        return {};
    return QString::fromStdString(layered_->locked_message(key));
}

namespace {

// libvirt URIs are driver[+transport]://[host]/path?params.
QString checkUri(const std::string& uri) {
    if (uri.empty())
        return {};
    const auto sep = uri.find("://");
    if (sep == std::string::npos || sep == 0) {
        return QStringLiteral(
            "a libvirt URI such as qemu:///system or qemu+ssh://host/system (or empty)");
    }
    for (char c : uri.substr(0, sep)) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.')) {
            return QStringLiteral(
                "a libvirt URI whose scheme has only letters, digits and + (such as qemu+ssh)");
        }
    }
    for (char c : uri) {
        if (std::isspace(static_cast<unsigned char>(c)))
            return QStringLiteral("a libvirt URI without spaces");
    }
    return {};
}

}  // namespace

QList<SettingProblem> SettingsStore::validate(const std::map<std::string, json>& changes) const {
    QList<SettingProblem> problems;
    for (const auto& [key, v] : changes) {
        const QString qkey = QString::fromStdString(key);
        const host::KeyInfo* k = host::find_key(key);
        if (!k) {
            problems.push_back({qkey, QStringLiteral("unknown setting")});
            continue;
        }
        if (isLocked(key)) {
            problems.push_back({qkey, lockReason(key)});
            continue;
        }
        std::string expected = host::check_setting_value(*k, v);
        if (!expected.empty()) {
            problems.push_back({qkey, QStringLiteral("must be %1, not %2")
                                          .arg(QString::fromStdString(expected),
                                               QString::fromStdString(v.dump()))});
            continue;
        }
        if (key == "connect_uri") {
            QString u = checkUri(v.get<std::string>());
            if (!u.isEmpty())
                problems.push_back({qkey, QStringLiteral("must be ") + u});
        }
        if (key == "vm_name") {
            try {
                host::validate_vm_name(v.get<std::string>());
            } catch (const cordon::Error& e) {
                problems.push_back({qkey, QString::fromStdString(e.failure())});
            }
        }
    }
    return problems;
}

QList<SettingProblem> SettingsStore::apply(const std::map<std::string, json>& changes,
                                           ErrorInfo* writeError) {
    QList<SettingProblem> problems = validate(changes);
    if (!problems.isEmpty() || changes.empty())
        return problems;
    // Each set_user writes the whole user file atomically; on a failure halfway,
    // the keys written so far are restored.
    std::map<std::string, host::SettingValue> before;
    for (const auto& [key, v] : changes) before[key] = layered_->get(key);
    std::vector<std::string> done;
    try {
        for (const auto& [key, v] : changes) {
            if (layered_->get(key).value == v && layered_->get(key).source == host::Source::user)
                continue;
            layered_->set_user(key, v);
            done.push_back(key);
        }
    } catch (...) {
        if (writeError)
            *writeError = ErrorInfo::fromCurrentException();
        for (const auto& key : done) {
            try {
                if (before[key].source == host::Source::user)
                    layered_->set_user(key, before[key].value);
                else
                    layered_->unset_user(key);
            } catch (...) {
            }
        }
    }
    emit changed();
    return problems;
}

}  // namespace cordon::gui

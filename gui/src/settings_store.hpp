#pragma once
// The layered settings (built-in < user < admin) as the window edits them.
// Changes are validated all together before any is written: either every
// change is applied or none is.
#include <QObject>
#include <QString>
#include <QStringList>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "cordon/host/settings.hpp"
#include "error_info.hpp"

namespace cordon::gui {

struct SettingProblem {
    QString key;
    QString message;
};

class SettingsStore : public QObject {
    Q_OBJECT
  public:
    explicit SettingsStore(host::SettingsFiles files, QObject* parent = nullptr);

    // Rereads both files. A file that cannot be read leaves the built-in
    // defaults in force and loadError() set.
    void reload();
    const ErrorInfo& loadError() const { return loadError_; }
    bool loaded() const { return layered_.has_value(); }
    const host::SettingsFiles& files() const { return files_; }

    host::Settings effective() const;
    nlohmann::json value(const std::string& key) const;
    QString valueText(const std::string& key) const;
    QString sourceText(const std::string& key) const;  // "default", "user", "administrator"
    bool isLocked(const std::string& key) const;
    // Why the key is read-only ("isolation is locked on by the administrator in ...").
    QString lockReason(const std::string& key) const;

    // Checks every change (known key, not locked, right type and range, and a
    // libvirt URI that looks like one). Returns the problems; empty means valid.
    QList<SettingProblem> validate(const std::map<std::string, nlohmann::json>& changes) const;
    // Validates, then writes them. Returns the problems (nothing written) or the
    // write error; an empty list and an empty error mean applied.
    QList<SettingProblem> apply(const std::map<std::string, nlohmann::json>& changes,
                                ErrorInfo* writeError);

  signals:
    void changed();

  private:
    host::SettingsFiles files_;
    std::optional<host::LayeredSettings> layered_;
    ErrorInfo loadError_;
};

}  // namespace cordon::gui

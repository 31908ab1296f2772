#pragma once
// The pages of the main window. Widgets that tests look up carry object names.
#include <QCheckBox>
#include <QComboBox>
#include <QFrame>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QTableView>
#include <QWidget>
#include <map>
#include <nlohmann/json.hpp>

#include "error_info.hpp"
#include "models.hpp"
#include "settings_store.hpp"
#include "vm_controller.hpp"

namespace cordon::gui {

// A selectable, word-wrapped label.
QLabel* wrapLabel(const QString& text, QWidget* parent, const char* name = nullptr);
// A read-only table of whole rows (containers, images, volumes, audit).
QTableView* makeTableView(QAbstractItemModel* model, const char* name, QWidget* parent);
QPushButton* makeRefreshButton(const char* name, QWidget* parent);

// What failed, on what, and how to fix it, with Copy and Dismiss buttons.
class ErrorBanner : public QFrame {
    Q_OBJECT
  public:
    explicit ErrorBanner(QWidget* parent = nullptr, bool dismissable = true);
    void showError(const ErrorInfo& e);
    // The outcome of a user's action: "Could not <what>: <error>", or hidden on success.
    void showActionResult(const QString& what, const ErrorInfo& e);
    const ErrorInfo& error() const { return error_; }
  signals:
    void dismissed();

  private:
    ErrorInfo error_;
    QLabel* what_;
    QLabel* subject_;
    QLabel* hint_;
};

class OverviewPage : public QWidget {
    Q_OBJECT
  public:
    OverviewPage(VmController* vm, SettingsStore* settings, QWidget* parent = nullptr);
    void update();
    QCheckBox* isolationToggle() const { return isoToggle_; }

  signals:
    void isolationRequested(bool enabled);

  private:
    VmController* vm_;
    SettingsStore* settings_;
    QLabel* stateDot_;
    QLabel* state_;
    QLabel* detail_;
    QProgressBar* progressBar_;
    QLabel* progress_;
    ErrorBanner* banner_;
    ErrorBanner* settingsBanner_;
    QPushButton* start_;
    QPushButton* stop_;
    QPushButton* restart_;
    QPushButton* cancel_;
    QLabel* cpus_;
    QLabel* memory_;
    QLabel* uptime_;
    QLabel* agent_;
    QCheckBox* isoToggle_;
    QLabel* isoState_;
    QLabel* rootMap_;
    QLabel* isoLock_;
    QLineEdit* dockerHost_;
};

class SettingsPage : public QWidget {
    Q_OBJECT
  public:
    SettingsPage(SettingsStore* store, VmController* vm, QWidget* parent = nullptr);
    // Re-reads every value from the store (discarding edits).
    void revert();
    // Validates and applies the edits; returns true when applied.
    bool apply();
    std::map<std::string, nlohmann::json> edits() const;

  private:
    struct Row {
        std::string key;
        QWidget* editor = nullptr;
        QLabel* note = nullptr;
    };
    nlohmann::json editorValue(const Row& r) const;
    SettingsStore* store_;
    VmController* vm_;
    std::vector<Row> rows_;
    QLabel* problems_;
    QLabel* restartNote_;
    ErrorBanner* loadError_;
};

class LogsPage : public QWidget {
    Q_OBJECT
  public:
    LogsPage(VmController* vm, QWidget* parent = nullptr);
    void reload();

  private:
    VmController* vm_;
    QComboBox* source_;
    QPlainTextEdit* text_;
    ErrorBanner* error_;
};

}  // namespace cordon::gui

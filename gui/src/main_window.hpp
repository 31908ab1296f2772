#pragma once
// The main window: Overview, Containers, Images, Volumes, Audit, Settings and
// Logs pages, the VM menu with its shortcuts, the tray icon, and the remembered
// geometry. The Audit tab counts the refusals not yet seen (the audit log is
// read every 20 s while the VM runs).
#include <QAction>
#include <QMainWindow>
#include <QSystemTrayIcon>
#include <QTabWidget>
#include <QTimer>
#include <map>

#include "audit_page.hpp"
#include "containers_page.hpp"
#include "docker_controller.hpp"
#include "images_volumes_pages.hpp"
#include "pages.hpp"
#include "settings_store.hpp"
#include "vm_controller.hpp"

namespace cordon::gui {

class MainWindow : public QMainWindow {
    Q_OBJECT
  public:
    MainWindow(VmController* vm, SettingsStore* settings, QWidget* parent = nullptr);

    enum Page {
        OverviewTab,
        ContainersTab,
        ImagesTab,
        VolumesTab,
        AuditTab,
        SettingsTab,
        LogsTab,
        PageCount
    };
    void showPage(Page p);
    QTabWidget* tabs() const { return tabs_; }
    OverviewPage* overview() const { return overview_; }
    ContainersPage* containers() const { return containers_; }
    ImagesPage* images() const { return images_; }
    VolumesPage* volumes() const { return volumes_; }
    AuditPage* audit() const { return audit_; }
    DockerController* docker() const { return docker_; }
    SettingsPage* settingsPage() const { return settingsPage_; }
    LogsPage* logs() const { return logs_; }
    QSystemTrayIcon* tray() const { return tray_; }

    // Asks to switch isolation: persists the setting when the VM is stopped,
    // asks the guest (with a confirmation when containers run) when it runs.
    void requestIsolation(bool enabled);
    // Saves geometry, window state and the current page (QSettings).
    void saveWindowState();

  protected:
    void closeEvent(QCloseEvent* e) override;

  private:
    void buildActions();
    void buildTray();
    void onChanged();
    void onConfirmationRequired(bool enabled, const QStringList& running, const QString& message);
    void refreshCurrentPage();
    void quitWhenIdle();
    void updateAuditTab(int unseen);

    VmController* vm_;
    SettingsStore* settings_;
    QTabWidget* tabs_;
    OverviewPage* overview_;
    DockerController* docker_;
    ContainersPage* containers_;
    ImagesPage* images_;
    VolumesPage* volumes_;
    AuditPage* audit_;
    QTimer auditPoll_;
    SettingsPage* settingsPage_;
    LogsPage* logs_;
    QAction* startAct_;
    QAction* stopAct_;
    QAction* restartAct_;
    QAction* refreshAct_;
    QAction* quitAct_;
    QSystemTrayIcon* tray_ = nullptr;
    std::map<int, QIcon> trayIcons_;
    bool quitting_ = false;
    bool pendingIsolation_ = false;
};

}  // namespace cordon::gui

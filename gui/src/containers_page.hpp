#pragma once
// The Containers page: the containers (Compose projects grouped) with state,
// image, ports as links, uptime, CPU and memory, a filter box, and the actions
// start, stop, restart, delete (confirmed), logs, inspect, terminal, open port.
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QTimer>
#include <QTreeView>
#include <QWidget>

#include "docker_controller.hpp"
#include "models.hpp"
#include "vm_controller.hpp"

namespace cordon::gui {

class ErrorBanner;

class ContainersPage : public QWidget {
    Q_OBJECT
  public:
    ContainersPage(VmController* vm, DockerController* docker, QWidget* parent = nullptr);
    ContainerModel* model() const { return model_; }
    QSortFilterProxyModel* filtered() const { return filter_; }
    QTreeView* view() const { return view_; }
    void updateMapping();
    // The selected container, or nullptr (nothing or a project row selected).
    const ContainerRow* selected() const;
    void selectContainer(const QString& id);

    // Acting on the selected container (the buttons and their shortcuts).
    void act(ContainerAction action);  // delete asks first
    void openPort();
    void showLogs();
    void inspect();
    void openTerminal();

  private:
    QPushButton* addButton(const QString& text, const char* name, const QString& accessible);
    void updateButtons();
    void onContainers(const QList<ContainerRow>& rows);
    void openUrls(const QStringList& urls);

    VmController* vm_;
    DockerController* docker_;
    ContainerModel* model_;
    QSortFilterProxyModel* filter_;
    QTreeView* view_;
    QLineEdit* search_;
    QLabel* summary_;
    ErrorBanner* error_;
    ErrorBanner* actionError_;
    QWidget* buttonRow_;
    QPushButton* start_;
    QPushButton* stop_;
    QPushButton* restart_;
    QPushButton* delete_;
    QPushButton* logs_;
    QPushButton* inspect_;
    QPushButton* terminal_;
    QPushButton* openPort_;
    QTimer autoRefresh_;
    QString keepSelected_;
    QList<ContainerRow> lastRows_;
};

}  // namespace cordon::gui

#pragma once
// The Containers page's model: a tree whose top level holds Compose projects
// (label com.docker.compose.project) with their containers as children, and the
// containers of no project. Resource use arrives separately (setStats) and is kept
// across list refreshes for containers still there.
#include <QAbstractItemModel>
#include <QHash>
#include <QList>

#include "docker_rows.hpp"

namespace cordon::gui {

class ContainerModel : public QAbstractItemModel {
    Q_OBJECT
  public:
    enum Column { Name, State, Image, Ports, Uptime, Cpu, Memory, ColumnCount };
    enum Role {
        IdRole = Qt::UserRole + 1,  // container id; empty on a project row
        PortUrlsRole,               // QStringList of http://localhost:PORT
        ProjectRole,                // the project's name on a project row
        RunningRole,                // bool
    };
    using QAbstractItemModel::QAbstractItemModel;

    void setContainers(const QList<ContainerRow>& rows);
    void setStats(const QString& id, const StatsRow& stats);
    const QList<ContainerRow>& rows() const { return rows_; }
    // The container at an index (any column), or nullptr on a project row.
    const ContainerRow* containerAt(const QModelIndex& index) const;
    // The index (column 0) of a container by id; invalid when it is not listed.
    QModelIndex indexOf(const QString& id) const;

    QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

  private:
    // A top-level row: a project and its members, or one container (project empty).
    struct TopRow {
        QString project;
        QList<int> members;  // indexes into rows_
    };
    QVariant containerData(const ContainerRow& r, int column, int role) const;
    QVariant projectData(const TopRow& t, int column, int role) const;

    QList<ContainerRow> rows_;
    QList<TopRow> top_;
    QHash<QString, StatsRow> stats_;
};

}  // namespace cordon::gui

#pragma once
// Table models for the Containers and Audit pages.
#include <QAbstractTableModel>
#include <QList>

#include "agent_data.hpp"
#include "vm_controller.hpp"

namespace cordon::gui {

class ContainerModel : public QAbstractTableModel {
    Q_OBJECT
  public:
    enum Column { Name, Image, State, RootMapsTo, ColumnCount };
    using QAbstractTableModel::QAbstractTableModel;

    void setContainers(const QList<ContainerRow>& rows);
    // The mapping container root gets (the same for every container of the engine).
    void setRootMapping(const QString& text);
    const QList<ContainerRow>& rows() const { return rows_; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

  private:
    QList<ContainerRow> rows_;
    QString rootMapping_ = QStringLiteral("unknown");
};

class AuditModel : public QAbstractTableModel {
    Q_OBJECT
  public:
    enum Column { Time, Decision, Method, Path, Reason, Client, ColumnCount };
    using QAbstractTableModel::QAbstractTableModel;

    void setEntries(const QList<AuditEntry>& entries);
    void setShowAllowed(bool show);
    int totalCount() const { return static_cast<int>(all_.size()); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

  private:
    void refilter();
    QList<AuditEntry> all_;
    QList<AuditEntry> shown_;
    bool showAllowed_ = false;
};

}  // namespace cordon::gui

#include "models.hpp"

#include <QBrush>
#include <QColor>

namespace cordon::gui {

void ContainerModel::setContainers(const QList<ContainerRow>& rows) {
    beginResetModel();
    rows_ = rows;
    endResetModel();
}

void ContainerModel::setRootMapping(const QString& text) {
    if (text == rootMapping_)
        return;
    rootMapping_ = text;
    if (!rows_.isEmpty())
        emit dataChanged(index(0, RootMapsTo), index(rowCount() - 1, RootMapsTo));
}

int ContainerModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int ContainerModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant ContainerModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= rows_.size())
        return {};
    const ContainerRow& r = rows_[index.row()];
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
            case Name:
                return r.name;
            case Image:
                return r.image;
            case State:
                return r.status.isEmpty() ? r.state
                                          : QStringLiteral("%1 (%2)").arg(r.state, r.status);
            case RootMapsTo:
                return rootMapping_;
            default:
                return {};
        }
    }
    if (role == Qt::ToolTipRole && index.column() == Name)
        return r.id;
    if (role == Qt::ForegroundRole && index.column() == State &&
        r.state == QLatin1String("running")) {
        return QBrush(QColor(0x2e, 0xa0, 0x43));
    }
    return {};
}

QVariant ContainerModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
        case Name:
            return QStringLiteral("Name");
        case Image:
            return QStringLiteral("Image");
        case State:
            return QStringLiteral("State");
        case RootMapsTo:
            return QStringLiteral("Container root is");
        default:
            return {};
    }
}

void AuditModel::setEntries(const QList<AuditEntry>& entries) {
    all_ = entries;
    refilter();
}

void AuditModel::setShowAllowed(bool show) {
    showAllowed_ = show;
    refilter();
}

void AuditModel::refilter() {
    beginResetModel();
    shown_.clear();
    // Newest first.
    for (auto it = all_.crbegin(); it != all_.crend(); ++it) {
        if (showAllowed_ || it->refused)
            shown_.push_back(*it);
    }
    endResetModel();
}

int AuditModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(shown_.size());
}

int AuditModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant AuditModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= shown_.size())
        return {};
    const AuditEntry& e = shown_[index.row()];
    if (role == Qt::DisplayRole || role == Qt::ToolTipRole) {
        switch (index.column()) {
            case Time:
                return e.time;
            case Decision:
                return e.decision;
            case Method:
                return e.method;
            case Path:
                return e.path;
            case Reason:
                return e.reason;
            case Client:
                return e.client;
            default:
                return {};
        }
    }
    if (role == Qt::ForegroundRole && index.column() == Decision && e.refused) {
        return QBrush(QColor(0xd0, 0x3a, 0x2f));
    }
    return {};
}

QVariant AuditModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
        case Time:
            return QStringLiteral("Time");
        case Decision:
            return QStringLiteral("Decision");
        case Method:
            return QStringLiteral("Method");
        case Path:
            return QStringLiteral("Request");
        case Reason:
            return QStringLiteral("Reason");
        case Client:
            return QStringLiteral("Client");
        default:
            return {};
    }
}

}  // namespace cordon::gui

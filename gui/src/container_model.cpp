#include "container_model.hpp"

#include <QBrush>
#include <QColor>
#include <QFont>
#include <QMap>
#include <algorithm>

namespace cordon::gui {
namespace {

// internalId of a top-level index is 0; a child's is its parent's row + 1.
constexpr quintptr kTop = 0;

bool running(const ContainerRow& r) {
    return r.state == QLatin1String("running");
}

}  // namespace

void ContainerModel::setContainers(const QList<ContainerRow>& rows) {
    beginResetModel();
    rows_ = rows;
    top_.clear();
    QMap<QString, QList<int>> projects;  // sorted by name
    QList<int> singles;
    for (int i = 0; i < rows_.size(); ++i) {
        if (rows_[i].project.isEmpty())
            singles << i;
        else
            projects[rows_[i].project] << i;
    }
    auto byName = [this](int a, int b) {
        return rows_[a].name.compare(rows_[b].name, Qt::CaseInsensitive) < 0;
    };
    for (auto it = projects.begin(); it != projects.end(); ++it) {
        std::sort(it.value().begin(), it.value().end(), byName);
        top_.push_back({it.key(), it.value()});
    }
    std::sort(singles.begin(), singles.end(), byName);
    for (int i : singles) top_.push_back({QString(), {i}});
    QHash<QString, StatsRow> kept;
    for (const auto& r : rows_) {
        if (running(r) && stats_.contains(r.id))
            kept.insert(r.id, stats_.value(r.id));
    }
    stats_ = kept;
    endResetModel();
}

void ContainerModel::setStats(const QString& id, const StatsRow& stats) {
    const QModelIndex at = indexOf(id);
    if (!at.isValid())
        return;
    stats_.insert(id, stats);
    emit dataChanged(at.siblingAtColumn(Cpu), at.siblingAtColumn(Memory));
}

const ContainerRow* ContainerModel::containerAt(const QModelIndex& index) const {
    if (!index.isValid() || index.model() != this)
        return nullptr;
    if (index.internalId() == kTop) {
        if (index.row() >= top_.size())
            return nullptr;
        const TopRow& t = top_[index.row()];
        return t.project.isEmpty() ? &rows_[t.members.front()] : nullptr;
    }
    const int parentRow = static_cast<int>(index.internalId() - 1);
    if (parentRow >= top_.size() || index.row() >= top_[parentRow].members.size())
        return nullptr;
    return &rows_[top_[parentRow].members[index.row()]];
}

QModelIndex ContainerModel::indexOf(const QString& id) const {
    for (int t = 0; t < top_.size(); ++t) {
        const QList<int>& m = top_[t].members;
        for (int i = 0; i < m.size(); ++i) {
            if (rows_[m[i]].id == id) {
                return top_[t].project.isEmpty() ? createIndex(t, 0, kTop)
                                                 : createIndex(i, 0, quintptr(t) + 1);
            }
        }
    }
    return {};
}

QModelIndex ContainerModel::index(int row, int column, const QModelIndex& parent) const {
    if (row < 0 || column < 0 || column >= ColumnCount)
        return {};
    if (!parent.isValid())
        return row < top_.size() ? createIndex(row, column, kTop) : QModelIndex();
    if (parent.internalId() != kTop || parent.row() >= top_.size())
        return {};
    const TopRow& t = top_[parent.row()];
    if (t.project.isEmpty() || row >= t.members.size())
        return {};
    return createIndex(row, column, quintptr(parent.row()) + 1);
}

QModelIndex ContainerModel::parent(const QModelIndex& child) const {
    if (!child.isValid() || child.internalId() == kTop)
        return {};
    return createIndex(static_cast<int>(child.internalId() - 1), 0, kTop);
}

int ContainerModel::rowCount(const QModelIndex& parent) const {
    if (!parent.isValid())
        return static_cast<int>(top_.size());
    if (parent.column() != 0 || parent.internalId() != kTop || parent.row() >= top_.size())
        return 0;
    const TopRow& t = top_[parent.row()];
    return t.project.isEmpty() ? 0 : static_cast<int>(t.members.size());
}

int ContainerModel::columnCount(const QModelIndex&) const {
    return ColumnCount;
}

QVariant ContainerModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid())
        return {};
    if (const ContainerRow* r = containerAt(index))
        return containerData(*r, index.column(), role);
    if (index.internalId() == kTop && index.row() < top_.size())
        return projectData(top_[index.row()], index.column(), role);
    return {};
}

QVariant ContainerModel::projectData(const TopRow& t, int column, int role) const {
    if (role == ProjectRole)
        return t.project;
    if (role == IdRole)
        return QString();
    if (role == RunningRole)
        return false;
    if (role == Qt::FontRole && column == Name) {
        QFont f;
        f.setBold(true);
        return f;
    }
    int up = 0;
    for (int i : t.members) up += running(rows_[i]) ? 1 : 0;
    if (role == Qt::DisplayRole) {
        if (column == Name)
            return t.project;
        if (column == State) {
            return QStringLiteral("%1 of %2 running").arg(up).arg(t.members.size());
        }
    }
    if (role == Qt::ToolTipRole && column == Name)
        return QStringLiteral("Compose project “%1”").arg(t.project);
    if (role == Qt::AccessibleTextRole && column == Name) {
        return QStringLiteral("Compose project %1, %2 of %3 containers running")
            .arg(t.project)
            .arg(up)
            .arg(t.members.size());
    }
    return {};
}

QVariant ContainerModel::containerData(const ContainerRow& r, int column, int role) const {
    const StatsRow stats = stats_.value(r.id);
    switch (role) {
        case IdRole:
            return r.id;
        case PortUrlsRole:
            return portUrls(r.ports);
        case RunningRole:
            return running(r);
        case ProjectRole:
            return QString();
        default:
            break;
    }
    if (role == Qt::DisplayRole) {
        switch (column) {
            case Name:
                return r.name;
            case State:
                return r.state;
            case Image:
                return r.image;
            case Ports: {
                QStringList parts;
                for (const PortRow& p : r.ports) parts << portText(p);
                return parts.join(QStringLiteral(", "));
            }
            case Uptime:
                return uptimeText(r);
            case Cpu:
                return running(r) && stats.cpuPercent
                           ? QStringLiteral("%1 %").arg(*stats.cpuPercent, 0, 'f', 1)
                           : QString();
            case Memory:
                return running(r) && stats.memoryBytes ? formatBytes(*stats.memoryBytes)
                                                       : QString();
            default:
                return {};
        }
    }
    if (role == Qt::ToolTipRole) {
        switch (column) {
            case Name:
                return QStringLiteral("%1\nid %2").arg(r.name, r.id);
            case State:
                return r.status;
            case Ports: {
                const QStringList urls = portUrls(r.ports);
                return urls.isEmpty() ? QStringLiteral("No port published on the host")
                                      : QStringLiteral("Open in the browser: ") +
                                            urls.join(QStringLiteral(", "));
            }
            case Memory:
                if (stats.memoryBytes && stats.memoryLimit) {
                    return QStringLiteral("%1 of %2")
                        .arg(formatBytes(*stats.memoryBytes), formatBytes(*stats.memoryLimit));
                }
                return {};
            default:
                return containerData(r, column, Qt::DisplayRole);
        }
    }
    if (role == Qt::ForegroundRole) {
        if (column == State && running(r))
            return QBrush(QColor(0x2e, 0xa0, 0x43));
        if (column == Ports && !portUrls(r.ports).isEmpty())
            return QBrush(QColor(0x1a, 0x5f, 0xb4));
    }
    if (role == Qt::FontRole && column == Ports && !portUrls(r.ports).isEmpty()) {
        QFont f;
        f.setUnderline(true);
        return f;
    }
    return {};
}

QVariant ContainerModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
        case Name:
            return QStringLiteral("Name");
        case State:
            return QStringLiteral("State");
        case Image:
            return QStringLiteral("Image");
        case Ports:
            return QStringLiteral("Ports");
        case Uptime:
            return QStringLiteral("Up for");
        case Cpu:
            return QStringLiteral("CPU");
        case Memory:
            return QStringLiteral("Memory");
        default:
            return {};
    }
}

}  // namespace cordon::gui

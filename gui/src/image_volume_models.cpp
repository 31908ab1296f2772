#include "image_volume_models.hpp"

#include <QDateTime>
#include <algorithm>

namespace cordon::gui {
namespace {

QString shortId(const QString& id) {
    return QString::fromStdString(host::docker::short_id(id.toStdString()));
}

QString unixTime(qint64 seconds) {
    if (seconds <= 0)
        return {};
    return QDateTime::fromSecsSinceEpoch(seconds).toString(QStringLiteral("yyyy-MM-dd HH:mm"));
}

}  // namespace

QString usedByText(const QStringList& names) {
    return names.isEmpty() ? QStringLiteral("not used") : names.join(QStringLiteral(", "));
}

QString imageLabel(const ImageRow& r) {
    return r.tags.isEmpty() ? QStringLiteral("<untagged> ") + shortId(r.id) : r.tags.front();
}

void ImageModel::setImages(const QList<ImageRow>& rows) {
    beginResetModel();
    rows_ = rows;
    endResetModel();
}

const ImageRow* ImageModel::imageAt(int row) const {
    return row >= 0 && row < rows_.size() ? &rows_[row] : nullptr;
}

int ImageModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int ImageModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant ImageModel::data(const QModelIndex& index, int role) const {
    const ImageRow* r = index.isValid() ? imageAt(index.row()) : nullptr;
    if (!r)
        return {};
    if (role == IdRole)
        return r->id;
    if (role != Qt::DisplayRole && role != Qt::ToolTipRole)
        return {};
    switch (index.column()) {
        case Tags:
            return r->tags.isEmpty() ? QStringLiteral("<untagged>")
                                     : r->tags.join(QStringLiteral(", "));
        case Id:
            return role == Qt::ToolTipRole ? r->id : shortId(r->id);
        case Size:
            return formatBytes(static_cast<quint64>(std::max<qint64>(r->size, 0)));
        case Created:
            return unixTime(r->created);
        case UsedBy:
            return usedByText(r->usedBy);
        default:
            return {};
    }
}

QVariant ImageModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
        case Tags:
            return QStringLiteral("Image");
        case Id:
            return QStringLiteral("Id");
        case Size:
            return QStringLiteral("Size");
        case Created:
            return QStringLiteral("Created");
        case UsedBy:
            return QStringLiteral("In use by");
        default:
            return {};
    }
}

void VolumeModel::setVolumes(const QList<VolumeRow>& rows) {
    beginResetModel();
    rows_ = rows;
    endResetModel();
}

const VolumeRow* VolumeModel::volumeAt(int row) const {
    return row >= 0 && row < rows_.size() ? &rows_[row] : nullptr;
}

int VolumeModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int VolumeModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant VolumeModel::data(const QModelIndex& index, int role) const {
    const VolumeRow* r = index.isValid() ? volumeAt(index.row()) : nullptr;
    if (!r || (role != Qt::DisplayRole && role != Qt::ToolTipRole))
        return {};
    switch (index.column()) {
        case Name:
            return r->name;
        case Driver:
            return r->driver;
        case Created:
            return r->createdAt;
        case UsedBy:
            return usedByText(r->usedBy);
        default:
            return {};
    }
}

QVariant VolumeModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
        case Name:
            return QStringLiteral("Volume");
        case Driver:
            return QStringLiteral("Driver");
        case Created:
            return QStringLiteral("Created");
        case UsedBy:
            return QStringLiteral("In use by");
        default:
            return {};
    }
}

}  // namespace cordon::gui

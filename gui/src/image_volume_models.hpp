#pragma once
// Table models of the Images and Volumes pages, with the containers using each.
#include <QAbstractTableModel>
#include <QList>

#include "docker_rows.hpp"

namespace cordon::gui {

class ImageModel : public QAbstractTableModel {
    Q_OBJECT
  public:
    enum Column { Tags, Id, Size, Created, UsedBy, ColumnCount };
    enum Role { IdRole = Qt::UserRole + 1 };
    using QAbstractTableModel::QAbstractTableModel;

    void setImages(const QList<ImageRow>& rows);
    const ImageRow* imageAt(int row) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

  private:
    QList<ImageRow> rows_;
};

class VolumeModel : public QAbstractTableModel {
    Q_OBJECT
  public:
    enum Column { Name, Driver, Created, UsedBy, ColumnCount };
    using QAbstractTableModel::QAbstractTableModel;

    void setVolumes(const QList<VolumeRow>& rows);
    const VolumeRow* volumeAt(int row) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

  private:
    QList<VolumeRow> rows_;
};

// "web, db" or "not used"
QString usedByText(const QStringList& names);
// The image's name for people: its first tag, or its short id when untagged.
QString imageLabel(const ImageRow& r);

}  // namespace cordon::gui

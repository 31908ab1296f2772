#pragma once
// What the Containers, Images and Volumes pages show of the engine's objects, in
// Qt types, and the "in use by" links between them. Built from the host Docker
// client's structs (cordon_host_docker) by pure functions the models test.
#include <QList>
#include <QMetaType>
#include <QString>
#include <QStringList>
#include <optional>

#include "cordon/host/docker/objects.hpp"

namespace cordon::gui {

struct PortRow {
    QString ip;
    int privatePort = 0;
    int publicPort = 0;  // 0: not published
    QString type;        // "tcp"
};

struct ContainerRow {
    QString id;
    QString name;
    QString image;
    QString state;
    QString status;
    QString imageId;
    qint64 created = 0;
    QList<PortRow> ports;
    QString project;      // com.docker.compose.project, or empty
    QStringList volumes;  // named volumes it mounts
};

struct ImageRow {
    QString id;
    QStringList tags;
    qint64 size = 0;
    qint64 created = 0;
    QStringList usedBy;  // container names
};

struct VolumeRow {
    QString name;
    QString driver;
    QString createdAt;
    QStringList usedBy;  // container names
};

struct StatsRow {
    std::optional<double> cpuPercent;
    std::optional<quint64> memoryBytes;
    std::optional<quint64> memoryLimit;
};

ContainerRow toRow(const host::docker::Container& c);
StatsRow toRow(const host::docker::ContainerStats& s);
// Images with the containers that use each (by image id, or by the name a
// container was created from).
QList<ImageRow> imageRows(const std::vector<host::docker::Image>& images,
                          const QList<ContainerRow>& containers);
QList<VolumeRow> volumeRows(const std::vector<host::docker::Volume>& volumes,
                            const QList<ContainerRow>& containers);

// "8080→80/tcp" for a published port, "80/tcp" for one that is not.
QString portText(const PortRow& p);
// http://localhost:PORT of each published TCP port, without repeats.
QStringList portUrls(const QList<PortRow>& ports);
// "3 minutes" from a running container's "Up 3 minutes"; "" otherwise.
QString uptimeText(const ContainerRow& c);
// "12.5 MiB", "1.2 GiB", "900 B"
QString formatBytes(quint64 bytes);

}  // namespace cordon::gui

Q_DECLARE_METATYPE(cordon::gui::StatsRow)

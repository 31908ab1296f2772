#include "docker_rows.hpp"

#include <QSet>

namespace cordon::gui {
namespace {

QString qs(const std::string& s) {
    return QString::fromStdString(s);
}

}  // namespace

ContainerRow toRow(const host::docker::Container& c) {
    ContainerRow r;
    r.id = qs(c.id);
    r.name = qs(c.name);
    r.image = qs(c.image);
    r.state = qs(c.state);
    r.status = qs(c.status);
    r.imageId = qs(c.image_id);
    r.created = c.created;
    for (const auto& p : c.ports)
        r.ports.push_back({qs(p.ip), p.private_port, p.public_port, qs(p.type)});
    r.project = qs(c.compose_project());
    for (const auto& v : c.volumes) r.volumes << qs(v);
    return r;
}

StatsRow toRow(const host::docker::ContainerStats& s) {
    StatsRow r;
    r.cpuPercent = s.cpu_percent;
    if (s.memory_bytes)
        r.memoryBytes = static_cast<quint64>(*s.memory_bytes);
    if (s.memory_limit)
        r.memoryLimit = static_cast<quint64>(*s.memory_limit);
    return r;
}

QList<ImageRow> imageRows(const std::vector<host::docker::Image>& images,
                          const QList<ContainerRow>& containers) {
    QList<ImageRow> out;
    for (const auto& i : images) {
        ImageRow r;
        r.id = qs(i.id);
        for (const auto& t : i.tags) r.tags << qs(t);
        r.size = i.size;
        r.created = i.created;
        for (const ContainerRow& c : containers) {
            const bool byId = !c.imageId.isEmpty() && c.imageId == r.id;
            const bool byName = c.imageId.isEmpty() && r.tags.contains(c.image);
            if (byId || byName)
                r.usedBy << c.name;
        }
        out.push_back(r);
    }
    return out;
}

QList<VolumeRow> volumeRows(const std::vector<host::docker::Volume>& volumes,
                            const QList<ContainerRow>& containers) {
    QList<VolumeRow> out;
    for (const auto& v : volumes) {
        VolumeRow r;
        r.name = qs(v.name);
        r.driver = qs(v.driver);
        r.createdAt = qs(v.created_at);
        for (const ContainerRow& c : containers) {
            if (c.volumes.contains(r.name))
                r.usedBy << c.name;
        }
        out.push_back(r);
    }
    return out;
}

QString portText(const PortRow& p) {
    const QString type = p.type.isEmpty() ? QStringLiteral("tcp") : p.type;
    if (p.publicPort > 0)
        return QStringLiteral("%1→%2/%3").arg(p.publicPort).arg(p.privatePort).arg(type);
    return QStringLiteral("%1/%2").arg(p.privatePort).arg(type);
}

QStringList portUrls(const QList<PortRow>& ports) {
    QStringList out;
    QSet<int> seen;
    for (const PortRow& p : ports) {
        const bool tcp = p.type.isEmpty() || p.type == QLatin1String("tcp");
        if (p.publicPort <= 0 || !tcp || seen.contains(p.publicPort))
            continue;
        seen.insert(p.publicPort);
        out << QStringLiteral("http://localhost:%1").arg(p.publicPort);
    }
    return out;
}

QString uptimeText(const ContainerRow& c) {
    if (c.state != QLatin1String("running") || !c.status.startsWith(QLatin1String("Up ")))
        return {};
    QString t = c.status.mid(3);
    // "Up 3 minutes (healthy)", "Up 2 hours (Paused)": the duration only.
    const qsizetype paren = t.indexOf(QLatin1String(" ("));
    if (paren > 0)
        t.truncate(paren);
    return t;
}

QString formatBytes(quint64 bytes) {
    const double b = static_cast<double>(bytes);
    if (bytes >= (1ull << 30))
        return QStringLiteral("%1 GiB").arg(b / double(1ull << 30), 0, 'f', 1);
    if (bytes >= (1ull << 20))
        return QStringLiteral("%1 MiB").arg(b / double(1ull << 20), 0, 'f', 1);
    if (bytes >= 1024)
        return QStringLiteral("%1 KiB").arg(b / 1024.0, 0, 'f', 1);
    return QStringLiteral("%1 B").arg(bytes);
}

}  // namespace cordon::gui

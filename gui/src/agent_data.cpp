#include "agent_data.hpp"

#include <cmath>
#include <sstream>

using nlohmann::json;

namespace cordon::gui {
namespace {

// The value at a dotted path ("memory.total_mib"), or nullptr.
const json* at(const json& j, const char* dotted) {
    const json* cur = &j;
    std::string path(dotted);
    std::size_t pos = 0;
    while (pos <= path.size()) {
        auto dot = path.find('.', pos);
        std::string key =
            path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
        if (!cur->is_object())
            return nullptr;
        auto it = cur->find(key);
        if (it == cur->end())
            return nullptr;
        cur = &*it;
        if (dot == std::string::npos)
            break;
        pos = dot + 1;
    }
    return cur;
}

std::optional<double> number(const json& j, std::initializer_list<const char*> keys) {
    for (const char* k : keys) {
        const json* v = at(j, k);
        if (v && v->is_number())
            return v->get<double>();
    }
    return std::nullopt;
}

QString text(const json& j, std::initializer_list<const char*> keys) {
    for (const char* k : keys) {
        const json* v = at(j, k);
        if (!v)
            continue;
        if (v->is_string())
            return QString::fromStdString(v->get<std::string>());
        if (v->is_number() || v->is_boolean())
            return QString::fromStdString(v->dump());
    }
    return {};
}

std::optional<bool> boolean(const json& j, std::initializer_list<const char*> keys) {
    for (const char* k : keys) {
        const json* v = at(j, k);
        if (v && v->is_boolean())
            return v->get<bool>();
    }
    return std::nullopt;
}

// "0 100000 65536" (a line of /proc/<pid>/uid_map).
std::optional<IdMap> parseMapLine(const std::string& line) {
    std::istringstream in(line);
    IdMap m;
    if (in >> m.inside >> m.outside >> m.count && m.count > 0)
        return m;
    return std::nullopt;
}

std::optional<IdMap> idMap(const json& s) {
    for (const char* k :
         {"uid_range", "uid_map", "uidmap", "uids", "remap.uids", "remap_user.uids", "user.uids"}) {
        const json* v = at(s, k);
        if (!v)
            continue;
        if (v->is_string()) {
            if (auto m = parseMapLine(v->get<std::string>()))
                return m;
        } else if (v->is_array() && !v->empty()) {
            const json& first = v->front();
            if (first.is_string()) {
                if (auto m = parseMapLine(first.get<std::string>()))
                    return m;
            } else if (first.is_object()) {
                auto outside = number(first, {"outside", "host", "start", "host_id"});
                auto count = number(first, {"count", "size", "length"});
                if (outside && count) {
                    return IdMap{
                        static_cast<qint64>(
                            number(first, {"inside", "container", "container_id"}).value_or(0)),
                        static_cast<qint64>(*outside), static_cast<qint64>(*count)};
                }
            } else if (v->size() == 3 && first.is_number()) {
                return IdMap{(*v)[0].get<qint64>(), (*v)[1].get<qint64>(), (*v)[2].get<qint64>()};
            }
        } else if (v->is_object()) {
            auto outside = number(*v, {"start", "outside", "host", "first"});
            auto count = number(*v, {"count", "size", "length"});
            if (outside && count) {
                return IdMap{static_cast<qint64>(number(*v, {"inside"}).value_or(0)),
                             static_cast<qint64>(*outside), static_cast<qint64>(*count)};
            }
        }
    }
    return std::nullopt;
}

}  // namespace

Resources parseInfo(const json& info) {
    Resources r;
    if (!info.is_object())
        return r;
    r.cpus = static_cast<int>(
        number(info, {"cpus", "vcpus", "cpu_count", "cpu.count", "resources.cpus"}).value_or(0));
    if (auto mib = number(
            info, {"memory_mib", "mem_total_mib", "memory.total_mib", "resources.memory_mib"})) {
        r.memoryMib = static_cast<qint64>(*mib);
    } else if (auto kib = number(info, {"memory.total_kib", "mem_total_kib", "memory_kib"})) {
        r.memoryMib = static_cast<qint64>(*kib / 1024);
    } else if (auto bytes = number(
                   info, {"memory_bytes", "mem_total", "memory.total_bytes", "memory.total"})) {
        r.memoryMib = static_cast<qint64>(*bytes / (1024.0 * 1024.0));
    }
    r.uptimeSeconds =
        number(info, {"uptime_seconds", "uptime_s", "uptime", "boot.uptime_seconds"}).value_or(-1);
    r.kernel = text(info, {"kernel.release", "kernel", "kernel_release", "uname.release"});
    r.agentVersion = text(info, {"agent_version", "version", "agent.version"});
    r.engineVersion =
        text(info, {"engine_version", "docker_version", "engine.version", "dockerd.version"});
    return r;
}

IsolationInfo parseIsolationStatus(const json& s) {
    IsolationInfo iso;
    if (!s.is_object())
        return iso;
    auto enabled = boolean(s, {"enabled", "isolation", "effective"});
    if (!enabled)
        return iso;
    iso.known = true;
    iso.enabled = *enabled;
    iso.lockedByGuest = boolean(s, {"locked", "admin_lock.locked", "lock.locked"}).value_or(false);
    iso.lockSource = text(s, {"locked_by", "lock_source", "admin_lock.source", "lock.source"});
    iso.remapUser = text(s, {"user", "remap_user.name", "remap.user", "remap_user"});
    iso.uidMap = idMap(s);
    return iso;
}

QList<AuditEntry> parseAudit(const json& audit) {
    QList<AuditEntry> out;
    const json* list = &audit;
    if (audit.is_object()) {
        for (const char* k : {"entries", "decisions", "events", "records"}) {
            if (auto it = audit.find(k); it != audit.end() && it->is_array()) {
                list = &*it;
                break;
            }
        }
    }
    if (!list->is_array())
        return out;
    for (const auto& e : *list) {
        if (!e.is_object())
            continue;
        AuditEntry a;
        a.time = text(e, {"time", "ts", "timestamp", "at"});
        a.method = text(e, {"method", "request.method"});
        a.path = text(e, {"path", "target", "url", "request.path"});
        a.reason = text(e, {"message", "reason", "why"});
        a.rule = text(e, {"rule"});
        if (a.reason.isEmpty())
            a.reason = a.rule;
        a.operation = text(e, {"operation"});
        a.seq = static_cast<qint64>(number(e, {"seq"}).value_or(-1));
        a.json = QString::fromStdString(e.dump(2));
        a.client = text(e, {"role", "client", "peer", "source"});
        const QString conn = text(e, {"connection"});
        if (!conn.isEmpty())
            a.client +=
                (a.client.isEmpty() ? QString() : QStringLiteral(" ")) + QStringLiteral("#") + conn;
        auto allowed = boolean(e, {"allowed", "allow"});
        QString decision = text(e, {"decision", "verdict", "action", "result"});
        if (allowed) {
            a.refused = !*allowed;
        } else if (!decision.isEmpty()) {
            a.refused = decision.startsWith(QLatin1String("den"), Qt::CaseInsensitive) ||
                        decision.startsWith(QLatin1String("ref"), Qt::CaseInsensitive) ||
                        decision.startsWith(QLatin1String("block"), Qt::CaseInsensitive);
        }
        a.decision = a.refused ? QStringLiteral("refused") : QStringLiteral("allowed");
        out.push_back(a);
    }
    return out;
}

SwitchSummary parseSwitchResult(const json& r) {
    SwitchSummary s;
    if (!r.is_object())
        return s;
    s.enabled = boolean(r, {"enabled"}).value_or(false);
    s.changed = boolean(r, {"changed"}).value_or(false);
    if (auto it = r.find("stopped_containers"); it != r.end() && it->is_array()) {
        for (const auto& c : *it) {
            if (c.is_string())
                s.stoppedContainers << QString::fromStdString(c.get<std::string>());
            else if (c.is_object())
                s.stoppedContainers << text(c, {"name", "id"});
        }
    }
    s.imagesMoved = static_cast<qint64>(number(r, {"images_moved"}).value_or(0));
    s.volumesMoved = static_cast<qint64>(number(r, {"volumes_moved"}).value_or(0));
    return s;
}

QString parseLogs(const json& logs) {
    if (logs.is_string())
        return QString::fromStdString(logs.get<std::string>());
    const json* lines = nullptr;
    if (logs.is_array())
        lines = &logs;
    if (logs.is_object()) {
        if (auto it = logs.find("lines"); it != logs.end() && it->is_array())
            lines = &*it;
        else if (auto t = logs.find("text"); t != logs.end() && t->is_string())
            return QString::fromStdString(t->get<std::string>());
    }
    if (!lines)
        return QString::fromStdString(logs.dump(2));
    QString out;
    for (const auto& l : *lines) {
        out += l.is_string() ? QString::fromStdString(l.get<std::string>())
                             : QString::fromStdString(l.dump());
        out += QLatin1Char('\n');
    }
    return out;
}

QString rootMappingText(const IsolationInfo& iso, bool vmRunning) {
    if (!vmRunning || !iso.known)
        return QStringLiteral("unknown");
    if (!iso.enabled)
        return QStringLiteral("VM root (uid 0)");
    if (!iso.uidMap) {
        return iso.remapUser.isEmpty() ? QStringLiteral("an unprivileged VM user")
                                       : QStringLiteral("VM user %1").arg(iso.remapUser);
    }
    const IdMap& m = *iso.uidMap;
    // Container uid 0 lands on the VM uid that maps to inside id 0.
    const qint64 first = m.outside - m.inside;
    QString t = QStringLiteral("VM uid %1 (range %2–%3)")
                    .arg(first)
                    .arg(m.outside)
                    .arg(m.outside + m.count - 1);
    if (!iso.remapUser.isEmpty())
        t += QStringLiteral(", user %1").arg(iso.remapUser);
    return t;
}

QString formatUptime(double seconds) {
    if (seconds < 0)
        return QStringLiteral("unknown");
    auto s = static_cast<qint64>(std::floor(seconds));
    const qint64 d = s / 86400, h = (s % 86400) / 3600, m = (s % 3600) / 60, sec = s % 60;
    if (d > 0)
        return QStringLiteral("%1 d %2 h").arg(d).arg(h);
    if (h > 0)
        return QStringLiteral("%1 h %2 min").arg(h).arg(m);
    if (m > 0)
        return QStringLiteral("%1 min %2 s").arg(m).arg(sec);
    return QStringLiteral("%1 s").arg(sec);
}

QString formatMemory(qint64 mib) {
    if (mib <= 0)
        return QStringLiteral("unknown");
    if (mib >= 1024 && mib % 1024 == 0)
        return QStringLiteral("%1 GiB").arg(mib / 1024);
    if (mib >= 1024)
        return QStringLiteral("%1 GiB").arg(static_cast<double>(mib) / 1024.0, 0, 'f', 1);
    return QStringLiteral("%1 MiB").arg(mib);
}

}  // namespace cordon::gui

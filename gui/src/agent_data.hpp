#pragma once
// Reading the guest agent's answers (info, isolation, audit, logs) into
// what the window shows. The readers are tolerant of extra fields and of the
// few spellings the agent's answers have had; a missing field reads as unknown.
#include <QList>
#include <QMetaType>
#include <QString>
#include <QStringList>
#include <nlohmann/json.hpp>
#include <optional>

namespace cordon::gui {

struct Resources {
    int cpus = 0;               // 0: unknown
    qint64 memoryMib = 0;       // 0: unknown
    double uptimeSeconds = -1;  // <0: unknown
    QString kernel;
    QString agentVersion;
    QString engineVersion;
};

// The uid range container root maps to in the VM.
struct IdMap {
    qint64 inside = 0;   // first id inside the container
    qint64 outside = 0;  // first VM id
    qint64 count = 0;
};

struct IsolationInfo {
    bool known = false;  // false until the agent answered isolation
    bool enabled = false;
    bool lockedByGuest = false;
    QString lockSource;
    QString remapUser;  // the VM user container root becomes ("cordon")
    std::optional<IdMap> uidMap;
};

struct AuditEntry {
    qint64 seq = -1;  // the proxy's sequence number; -1 when the agent did not say
    QString time;
    QString method;
    QString path;
    QString decision;   // "denied" / "allowed"
    QString reason;     // the proxy's message (the rule when there is none)
    QString rule;       // the policy rule that decided ("privileged", "allow-list", ...)
    QString operation;  // the API operation the proxy recognised
    QString client;
    bool refused = true;
    QString json;  // the whole decision as the agent sent it, indented
};

struct SwitchSummary {
    bool enabled = false;
    bool changed = false;
    QStringList stoppedContainers;
    qint64 imagesMoved = 0;
    qint64 volumesMoved = 0;
};

Resources parseInfo(const nlohmann::json& info);
IsolationInfo parseIsolationStatus(const nlohmann::json& status);
QList<AuditEntry> parseAudit(const nlohmann::json& audit);
SwitchSummary parseSwitchResult(const nlohmann::json& result);
// The text of a `logs` answer ({"lines": [...]}, {"text": "..."} or a plain string).
QString parseLogs(const nlohmann::json& logs);

// "VM root (uid 0)" when isolation is off, "VM uids 100000–165535 (cordon)" when on,
// "unknown" when the agent did not say.
QString rootMappingText(const IsolationInfo& iso, bool vmRunning);
// "1 d 2 h", "3 h 4 min", "5 min 6 s", "7 s"
QString formatUptime(double seconds);
QString formatMemory(qint64 mib);

}  // namespace cordon::gui

Q_DECLARE_METATYPE(cordon::gui::Resources)
Q_DECLARE_METATYPE(cordon::gui::IsolationInfo)

#include "audit_model.hpp"

#include <QBrush>
#include <QColor>
#include <QSet>

namespace cordon::gui {

QString auditOrderKey(const AuditEntry& e) {
    if (e.seq >= 0)
        return QStringLiteral("%1").arg(e.seq, 20, 10, QLatin1Char('0'));
    return QStringLiteral("t") + e.time;
}

void AuditModel::setEntries(const QList<AuditEntry>& entries) {
    const int before = unseenRefusals();
    all_ = entries;
    if (!baselineSet_) {
        baselineSet_ = true;
        advanceSeenMark();
    }
    refilter();
    const int after = unseenRefusals();
    if (after != before)
        emit unseenChanged(after);
}

void AuditModel::clearEntries() {
    all_.clear();
    refilter();
}

void AuditModel::advanceSeenMark() {
    for (const auto& e : all_) {
        const QString k = auditOrderKey(e);
        if (k > seenUpTo_)
            seenUpTo_ = k;
    }
}

void AuditModel::markSeen() {
    const int before = unseenRefusals();
    advanceSeenMark();
    if (before != 0)
        emit unseenChanged(0);
}

int AuditModel::unseenRefusals() const {
    int n = 0;
    for (const auto& e : all_) n += e.refused && auditOrderKey(e) > seenUpTo_ ? 1 : 0;
    return n;
}

void AuditModel::setShowAllowed(bool show) {
    showAllowed_ = show;
    refilter();
}

void AuditModel::setRuleFilter(const QString& rule) {
    rule_ = rule;
    refilter();
}

QStringList AuditModel::rules() const {
    QSet<QString> set;
    for (const auto& e : all_) {
        if ((showAllowed_ || e.refused) && !e.rule.isEmpty())
            set.insert(e.rule);
    }
    QStringList out(set.begin(), set.end());
    out.sort(Qt::CaseInsensitive);
    return out;
}

const AuditEntry* AuditModel::entryAt(int row) const {
    return row >= 0 && row < shown_.size() ? &shown_[row] : nullptr;
}

void AuditModel::refilter() {
    beginResetModel();
    shown_.clear();
    for (auto it = all_.crbegin(); it != all_.crend(); ++it) {  // newest first
        if ((showAllowed_ || it->refused) && (rule_.isEmpty() || it->rule == rule_))
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
            case Reason:
                return e.reason;
            case Decision:
                return e.decision;
            case Rule:
                return e.rule;
            case Method:
                return e.method;
            case Path:
                return e.path;
            case Time:
                return e.time;
            case Client:
                return e.client;
            default:
                return {};
        }
    }
    if (role == Qt::ForegroundRole && index.column() == Decision && e.refused)
        return QBrush(QColor(0xd0, 0x3a, 0x2f));
    return {};
}

QVariant AuditModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
        case Reason:
            return QStringLiteral("Reason");
        case Decision:
            return QStringLiteral("Decision");
        case Rule:
            return QStringLiteral("Rule");
        case Method:
            return QStringLiteral("Method");
        case Path:
            return QStringLiteral("Request");
        case Time:
            return QStringLiteral("Time");
        case Client:
            return QStringLiteral("Client");
        default:
            return {};
    }
}

}  // namespace cordon::gui

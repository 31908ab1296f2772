#pragma once
// The Audit page's model: the policy proxy's decisions, newest first, the reason
// first; refused only unless asked; filtered by rule. It counts the refusals that
// arrived since the user last looked (markSeen), for the tab's counter.
#include <QAbstractTableModel>
#include <QList>
#include <QStringList>

#include "agent_data.hpp"

namespace cordon::gui {

class AuditModel : public QAbstractTableModel {
    Q_OBJECT
  public:
    enum Column { Reason, Decision, Rule, Method, Path, Time, Client, ColumnCount };
    using QAbstractTableModel::QAbstractTableModel;

    // The first call sets the baseline: what is there already counts as seen.
    void setEntries(const QList<AuditEntry>& entries);
    // Empties the list (the agent did not answer) without setting the baseline.
    void clearEntries();
    void setShowAllowed(bool show);
    // Only entries of this rule; "" shows every rule.
    void setRuleFilter(const QString& rule);
    QString ruleFilter() const { return rule_; }
    // The rules of the entries (refused ones, or all with showAllowed), sorted.
    QStringList rules() const;
    int totalCount() const { return static_cast<int>(all_.size()); }
    const AuditEntry* entryAt(int row) const;

    // Refused entries newer than the newest one seen.
    int unseenRefusals() const;
    void markSeen();

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

  signals:
    void unseenChanged(int count);

  private:
    void refilter();
    void advanceSeenMark();
    QList<AuditEntry> all_;
    QList<AuditEntry> shown_;
    bool showAllowed_ = false;
    QString rule_;
    bool baselineSet_ = false;
    QString seenUpTo_;  // order key of the newest entry seen
};

// Orders entries: by seq when the agent numbered them, else by time.
QString auditOrderKey(const AuditEntry& e);

}  // namespace cordon::gui

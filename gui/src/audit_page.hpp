#pragma once
// The Audit page: the policy proxy's decisions with the reason first (wrapped,
// the whole text in a tooltip), a rule filter, a detail pane with the whole
// decision, Copy as JSON, and the count of refusals not yet seen (for the tab).
#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QTableView>
#include <QWidget>

#include "models.hpp"
#include "vm_controller.hpp"

namespace cordon::gui {

class ErrorBanner;

class AuditPage : public QWidget {
    Q_OBJECT
  public:
    AuditPage(VmController* vm, QWidget* parent = nullptr);
    AuditModel* model() const { return model_; }
    QTableView* view() const { return view_; }
    QComboBox* ruleFilter() const { return rule_; }
    QPlainTextEdit* detail() const { return detail_; }
    // The selected decision as the agent sent it ("" when none is selected).
    QString selectedJson() const;

  signals:
    void unseenRefusalsChanged(int count);

  private:
    void updateRules();
    void showDetail();

    VmController* vm_;
    AuditModel* model_;
    QTableView* view_;
    QCheckBox* showAllowed_;
    QComboBox* rule_;
    QLabel* summary_;
    ErrorBanner* error_;
    QPlainTextEdit* detail_;
    QPushButton* copyJson_;
};

// The decision as a few readable lines, for the detail pane.
QString auditDetailText(const AuditEntry& e);

}  // namespace cordon::gui

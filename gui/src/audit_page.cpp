#include "audit_page.hpp"

#include <QApplication>
#include <QClipboard>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QVBoxLayout>
#include <algorithm>

#include "pages.hpp"

namespace cordon::gui {

QString auditDetailText(const AuditEntry& e) {
    QStringList lines;
    lines << (e.refused ? QStringLiteral("REFUSED: ") : QStringLiteral("Allowed: ")) + e.reason;
    if (!e.rule.isEmpty())
        lines << QStringLiteral("Rule: ") + e.rule;
    lines << QStringLiteral("Request: %1 %2").arg(e.method, e.path);
    if (!e.operation.isEmpty())
        lines << QStringLiteral("Operation: ") + e.operation;
    if (!e.client.isEmpty())
        lines << QStringLiteral("Client: ") + e.client;
    if (!e.time.isEmpty())
        lines << QStringLiteral("Time: ") + e.time;
    lines << QString() << QStringLiteral("As the guest agent recorded it:") << e.json;
    return lines.join(QLatin1Char('\n'));
}

AuditPage::AuditPage(VmController* vm, QWidget* parent) : QWidget(parent), vm_(vm) {
    auto* lay = new QVBoxLayout(this);
    lay->addWidget(wrapLabel(
        QStringLiteral("Docker API requests Cordon's policy refused, newest first. "
                       "Privileged containers, host mounts and unknown requests are refused."),
        this));
    auto* top = new QHBoxLayout;
    showAllowed_ = new QCheckBox(QStringLiteral("Show allo&wed requests too"), this);
    showAllowed_->setObjectName(QStringLiteral("auditShowAllowed"));
    showAllowed_->setAccessibleName(QStringLiteral("Show allowed requests too"));
    auto* ruleLabel = new QLabel(QStringLiteral("Rul&e:"), this);
    rule_ = new QComboBox(this);
    rule_->setObjectName(QStringLiteral("auditRuleFilter"));
    rule_->setAccessibleName(QStringLiteral("Filter by rule"));
    rule_->addItem(QStringLiteral("All rules"), QString());
    ruleLabel->setBuddy(rule_);
    summary_ = wrapLabel({}, this, "auditSummary");
    auto* refresh = makeRefreshButton("auditRefresh", this);
    top->addWidget(showAllowed_);
    top->addWidget(ruleLabel);
    top->addWidget(rule_);
    top->addWidget(summary_, 1);
    top->addWidget(refresh);
    lay->addLayout(top);
    error_ = new ErrorBanner(this, false);
    error_->setObjectName(QStringLiteral("auditError"));
    lay->addWidget(error_);

    auto* split = new QSplitter(Qt::Vertical, this);
    split->setObjectName(QStringLiteral("auditSplitter"));
    model_ = new AuditModel(this);
    view_ = makeTableView(model_, "auditView", split);
    view_->setAccessibleName(QStringLiteral("Audit decisions"));
    view_->setSelectionMode(QAbstractItemView::SingleSelection);
    view_->setWordWrap(true);
    view_->setTextElideMode(Qt::ElideRight);
    QHeaderView* h = view_->horizontalHeader();
    h->setStretchLastSection(false);
    h->setSectionResizeMode(QHeaderView::ResizeToContents);
    h->setSectionResizeMode(AuditModel::Reason, QHeaderView::Stretch);
    h->setSectionResizeMode(AuditModel::Path, QHeaderView::Interactive);
    h->resizeSection(AuditModel::Path, fontMetrics().averageCharWidth() * 30);
    view_->verticalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    split->addWidget(view_);

    auto* detailBox = new QWidget(split);
    auto* detailLay = new QVBoxLayout(detailBox);
    detailLay->setContentsMargins(0, 0, 0, 0);
    detail_ = new QPlainTextEdit(detailBox);
    detail_->setObjectName(QStringLiteral("auditDetail"));
    detail_->setAccessibleName(QStringLiteral("Decision details"));
    detail_->setReadOnly(true);
    detail_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    detail_->setPlaceholderText(QStringLiteral("Select a decision to see all of it."));
    detailLay->addWidget(detail_, 1);
    auto* detailButtons = new QHBoxLayout;
    detailButtons->addStretch();
    copyJson_ = new QPushButton(QStringLiteral("Copy as &JSON"), detailBox);
    copyJson_->setObjectName(QStringLiteral("auditCopyJson"));
    copyJson_->setAccessibleName(QStringLiteral("Copy the decision as JSON"));
    copyJson_->setEnabled(false);
    detailButtons->addWidget(copyJson_);
    detailLay->addLayout(detailButtons);
    split->addWidget(detailBox);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 1);
    lay->addWidget(split, 1);

    connect(showAllowed_, &QCheckBox::toggled, this, [this](bool on) {
        model_->setShowAllowed(on);
        updateRules();
    });
    connect(rule_, &QComboBox::currentIndexChanged, this,
            [this] { model_->setRuleFilter(rule_->currentData().toString()); });
    connect(view_->selectionModel(), &QItemSelectionModel::selectionChanged, this,
            &AuditPage::showDetail);
    connect(model_, &QAbstractItemModel::modelReset, this, &AuditPage::showDetail);
    connect(copyJson_, &QPushButton::clicked, this, [this] {
        const QString json = selectedJson();
        if (!json.isEmpty())
            QApplication::clipboard()->setText(json);
    });
    connect(model_, &AuditModel::unseenChanged, this, &AuditPage::unseenRefusalsChanged);
    connect(refresh, &QPushButton::clicked, vm_, &VmController::refreshAudit);
    connect(vm_, &VmController::auditReady, this, [this](const QList<AuditEntry>& entries) {
        error_->showError({});
        model_->setEntries(entries);
        if (isVisible())
            model_->markSeen();
        updateRules();
        int refused = 0;
        for (const auto& e : entries) refused += e.refused ? 1 : 0;
        summary_->setText(
            QStringLiteral("%1 refused of %2 recent decisions").arg(refused).arg(entries.size()));
    });
    connect(vm_, &VmController::auditFailed, this, [this](const ErrorInfo& e) {
        model_->clearEntries();
        summary_->clear();
        error_->showError(e);
    });
}

void AuditPage::updateRules() {
    const QString current = rule_->currentData().toString();
    const QStringList rules = model_->rules();
    QSignalBlocker block(rule_);
    rule_->clear();
    rule_->addItem(QStringLiteral("All rules"), QString());
    for (const QString& r : rules) rule_->addItem(r, r);
    int at = rule_->findData(current);
    if (at < 0 && !current.isEmpty()) {
        rule_->addItem(current, current);  // kept while the filter is on
        at = rule_->count() - 1;
    }
    rule_->setCurrentIndex(std::max(at, 0));
}

QString AuditPage::selectedJson() const {
    const QModelIndexList rows = view_->selectionModel()->selectedRows();
    const AuditEntry* e = rows.isEmpty() ? nullptr : model_->entryAt(rows.front().row());
    return e ? e->json : QString();
}

void AuditPage::showDetail() {
    const QModelIndexList rows = view_->selectionModel()->selectedRows();
    const AuditEntry* e = rows.isEmpty() ? nullptr : model_->entryAt(rows.front().row());
    detail_->setPlainText(e ? auditDetailText(*e) : QString());
    copyJson_->setEnabled(e != nullptr);
}

}  // namespace cordon::gui

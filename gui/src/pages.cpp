#include "pages.hpp"

#include <QApplication>
#include <QClipboard>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QSpinBox>
#include <QStyle>
#include <QVBoxLayout>

#include "app_icon.hpp"

using nlohmann::json;

namespace cordon::gui {
QLabel* wrapLabel(const QString& text, QWidget* parent, const char* name) {
    auto* l = new QLabel(text, parent);
    l->setWordWrap(true);
    l->setTextInteractionFlags(Qt::TextSelectableByMouse);
    if (name)
        l->setObjectName(QLatin1String(name));
    return l;
}

namespace {

QString dotHtml(VmState s) {
    return QStringLiteral("<span style=\"color:%1\">&#9679;</span>").arg(stateColor(s).name());
}

}  // namespace

// ---------------------------------------------------------------- ErrorBanner

ErrorBanner::ErrorBanner(QWidget* parent, bool dismissable) : QFrame(parent) {
    setObjectName(QStringLiteral("errorBanner"));
    setFrameShape(QFrame::StyledPanel);
    setAutoFillBackground(true);
    QPalette pal = palette();
    pal.setColor(QPalette::Window, QColor(0xfd, 0xec, 0xea));
    pal.setColor(QPalette::WindowText, QColor(0x5c, 0x13, 0x0d));
    setPalette(pal);
    auto* lay = new QHBoxLayout(this);
    auto* icon = new QLabel(this);
    const int px = style()->pixelMetric(QStyle::PM_MessageBoxIconSize);
    icon->setPixmap(style()->standardIcon(QStyle::SP_MessageBoxCritical).pixmap(px, px));
    icon->setAlignment(Qt::AlignTop);
    lay->addWidget(icon);
    auto* texts = new QVBoxLayout;
    what_ = wrapLabel({}, this, "errorWhat");
    QFont bold = what_->font();
    bold.setBold(true);
    what_->setFont(bold);
    subject_ = wrapLabel({}, this, "errorSubject");
    hint_ = wrapLabel({}, this, "errorHint");
    texts->addWidget(what_);
    texts->addWidget(subject_);
    texts->addWidget(hint_);
    lay->addLayout(texts, 1);
    auto* buttons = new QVBoxLayout;
    auto* copy = new QPushButton(QStringLiteral("Copy"), this);
    copy->setObjectName(QStringLiteral("errorCopy"));
    connect(copy, &QPushButton::clicked, this,
            [this] { QApplication::clipboard()->setText(error_.text()); });
    buttons->addWidget(copy);
    if (dismissable) {
        auto* dismiss = new QPushButton(QStringLiteral("Dismiss"), this);
        dismiss->setObjectName(QStringLiteral("errorDismiss"));
        connect(dismiss, &QPushButton::clicked, this, [this] {
            hide();
            emit dismissed();
        });
        buttons->addWidget(dismiss);
    }
    buttons->addStretch();
    lay->addLayout(buttons);
    hide();
}

void ErrorBanner::showError(const ErrorInfo& e) {
    error_ = e;
    if (e.empty()) {
        hide();
        return;
    }
    what_->setText(e.what);
    subject_->setText(QStringLiteral("On: ") + e.subject);
    subject_->setVisible(!e.subject.isEmpty());
    hint_->setText(QStringLiteral("Fix: ") + e.hint);
    hint_->setVisible(!e.hint.isEmpty());
    QFrame::show();
}

void ErrorBanner::showActionResult(const QString& what, const ErrorInfo& e) {
    if (e.empty()) {
        showError({});
        return;
    }
    ErrorInfo shown = e;
    shown.what = QStringLiteral("Could not %1: %2").arg(what, e.what);
    showError(shown);
}

// ---------------------------------------------------------------- OverviewPage

OverviewPage::OverviewPage(VmController* vm, SettingsStore* settings, QWidget* parent)
    : QWidget(parent), vm_(vm), settings_(settings) {
    auto* lay = new QVBoxLayout(this);

    auto* head = new QHBoxLayout;
    auto* logo = new QLabel(this);
    const int logoPx = fontMetrics().height() * 4;
    logo->setPixmap(appIcon().pixmap(logoPx, logoPx));
    head->addWidget(logo);
    auto* headText = new QVBoxLayout;
    auto* stateRow = new QHBoxLayout;
    stateDot_ = new QLabel(this);
    state_ = new QLabel(this);
    state_->setObjectName(QStringLiteral("stateLabel"));
    QFont big = state_->font();
    big.setPointSizeF(big.pointSizeF() * 1.6);
    big.setBold(true);
    state_->setFont(big);
    stateDot_->setFont(big);
    stateRow->addWidget(stateDot_);
    stateRow->addWidget(state_);
    stateRow->addStretch();
    headText->addLayout(stateRow);
    detail_ = wrapLabel({}, this, "detailLabel");
    headText->addWidget(detail_);
    head->addLayout(headText, 1);
    lay->addLayout(head);

    auto* progRow = new QHBoxLayout;
    progressBar_ = new QProgressBar(this);
    progressBar_->setObjectName(QStringLiteral("progressBar"));
    progressBar_->setRange(0, 100);
    progress_ = wrapLabel({}, this, "progressLabel");
    progRow->addWidget(progressBar_, 1);
    progRow->addWidget(progress_, 2);
    lay->addLayout(progRow);

    banner_ = new ErrorBanner(this);
    connect(banner_, &ErrorBanner::dismissed, vm_, &VmController::dismissError);
    lay->addWidget(banner_);
    // A settings file that cannot be read (the built-in defaults apply meanwhile).
    settingsBanner_ = new ErrorBanner(this, false);
    settingsBanner_->setObjectName(QStringLiteral("settingsErrorBanner"));
    lay->addWidget(settingsBanner_);

    auto* buttons = new QHBoxLayout;
    start_ =
        new QPushButton(style()->standardIcon(QStyle::SP_MediaPlay), QStringLiteral("Start"), this);
    start_->setObjectName(QStringLiteral("startButton"));
    stop_ =
        new QPushButton(style()->standardIcon(QStyle::SP_MediaStop), QStringLiteral("Stop"), this);
    stop_->setObjectName(QStringLiteral("stopButton"));
    restart_ = new QPushButton(style()->standardIcon(QStyle::SP_BrowserReload),
                               QStringLiteral("Restart"), this);
    restart_->setObjectName(QStringLiteral("restartButton"));
    connect(start_, &QPushButton::clicked, vm_, &VmController::start);
    connect(stop_, &QPushButton::clicked, vm_, &VmController::stop);
    connect(restart_, &QPushButton::clicked, vm_, &VmController::restart);
    cancel_ = new QPushButton(style()->standardIcon(QStyle::SP_DialogCancelButton),
                              QStringLiteral("Cancel"), this);
    cancel_->setObjectName(QStringLiteral("cancelButton"));
    cancel_->setToolTip(QStringLiteral("Cancel the start: the VM is stopped again"));
    connect(cancel_, &QPushButton::clicked, vm_, &VmController::cancelStart);
    buttons->addWidget(start_);
    buttons->addWidget(stop_);
    buttons->addWidget(restart_);
    buttons->addWidget(cancel_);
    buttons->addStretch();
    lay->addLayout(buttons);

    auto* res = new QGroupBox(QStringLiteral("Resources"), this);
    auto* resLay = new QFormLayout(res);
    cpus_ = new QLabel(res);
    cpus_->setObjectName(QStringLiteral("cpusLabel"));
    memory_ = new QLabel(res);
    memory_->setObjectName(QStringLiteral("memoryLabel"));
    uptime_ = new QLabel(res);
    uptime_->setObjectName(QStringLiteral("uptimeLabel"));
    agent_ = wrapLabel({}, res, "agentLabel");
    resLay->addRow(QStringLiteral("CPUs:"), cpus_);
    resLay->addRow(QStringLiteral("Memory:"), memory_);
    resLay->addRow(QStringLiteral("Uptime:"), uptime_);
    resLay->addRow(QStringLiteral("Guest agent:"), agent_);
    lay->addWidget(res);

    auto* iso = new QGroupBox(QStringLiteral("Enhanced Container Isolation"), this);
    auto* isoLay = new QVBoxLayout(iso);
    isoToggle_ =
        new QCheckBox(QStringLiteral("Run containers with Enhanced Container Isolation"), iso);
    isoToggle_->setObjectName(QStringLiteral("isolationToggle"));
    isoLay->addWidget(isoToggle_);
    isoLay->addWidget(wrapLabel(
        QStringLiteral(
            "Root inside a container becomes an unprivileged VM user (user namespaces), so "
            "a container that breaks out lands as a nobody in the VM. Switching stops the "
            "running containers; images and named volumes move to the new mode."),
        iso, "isolationExplanation"));
    isoState_ = wrapLabel({}, iso, "isolationState");
    rootMap_ = wrapLabel({}, iso, "rootMapLabel");
    isoLock_ = wrapLabel({}, iso, "isolationLockReason");
    isoLock_->setStyleSheet(QStringLiteral("color: #8a5a00;"));
    isoLay->addWidget(isoState_);
    isoLay->addWidget(rootMap_);
    isoLay->addWidget(isoLock_);
    connect(isoToggle_, &QCheckBox::clicked, this, [this](bool checked) {
        // The box shows the state in force; the controller changes it when the switch is done.
        update();
        emit isolationRequested(checked);
    });
    lay->addWidget(iso);

    auto* cli = new QGroupBox(QStringLiteral("Docker CLI"), this);
    auto* cliLay = new QHBoxLayout(cli);
    dockerHost_ = new QLineEdit(cli);
    dockerHost_->setObjectName(QStringLiteral("dockerHostLine"));
    dockerHost_->setReadOnly(true);
    dockerHost_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    auto* copy = new QPushButton(QStringLiteral("Copy"), cli);
    copy->setObjectName(QStringLiteral("copyDockerHost"));
    connect(copy, &QPushButton::clicked, this,
            [this] { QApplication::clipboard()->setText(dockerHost_->text()); });
    cliLay->addWidget(dockerHost_, 1);
    cliLay->addWidget(copy);
    lay->addWidget(cli);
    lay->addStretch();

    connect(vm_, &VmController::changed, this, &OverviewPage::update);
    connect(vm_, &VmController::errorChanged, banner_, &ErrorBanner::showError);
    connect(settings_, &SettingsStore::changed, this, &OverviewPage::update);
    update();
}

void OverviewPage::update() {
    settingsBanner_->showError(settings_->loadError());
    const VmState s = vm_->state();
    state_->setText(vm_->stateText());
    stateDot_->setText(dotHtml(s));
    const auto& st = vm_->lastStatus();
    QString detail = QStringLiteral("VM “%1” on %2")
                         .arg(QString::fromStdString(settings_->effective().vm_name), vm_->uri());
    if (vm_->statusKnown() && s == VmState::running) {
        detail += st.domain_type == "kvm" ? QStringLiteral(" · KVM")
                                          : QStringLiteral(" · TCG (software emulation)");
    }
    detail_->setText(detail);

    const bool busy = vm_->busy();
    progressBar_->setVisible(busy);
    progress_->setVisible(busy || !vm_->progressText().isEmpty());
    progress_->setText(vm_->progressText());
    if (vm_->operation() == QLatin1String("isolation") && vm_->progressPercent() == 0) {
        progressBar_->setRange(0, 0);  // no step from the guest yet
    } else {
        progressBar_->setRange(0, 100);
        progressBar_->setValue(vm_->progressPercent());
    }

    start_->setEnabled(vm_->canStart());
    stop_->setEnabled(vm_->canStop());
    restart_->setEnabled(vm_->canRestart());
    cancel_->setVisible(vm_->canCancel());

    const Resources& r = vm_->resources();
    const bool running = s == VmState::running;
    const host::Settings eff = settings_->effective();
    cpus_->setText(running && r.cpus > 0 ? QString::number(r.cpus)
                                         : QStringLiteral("%1 (configured)").arg(eff.cpus));
    memory_->setText(running && r.memoryMib > 0
                         ? formatMemory(r.memoryMib)
                         : QStringLiteral("%1 (configured)").arg(formatMemory(eff.memory_mib)));
    uptime_->setText(running ? formatUptime(r.uptimeSeconds) : QStringLiteral("—"));
    if (!running) {
        agent_->setText(QStringLiteral("not running"));
    } else if (st.agent_reachable) {
        QString a = QStringLiteral("answering");
        if (!r.agentVersion.isEmpty())
            a += QStringLiteral(" (version %1)").arg(r.agentVersion);
        if (!r.engineVersion.isEmpty())
            a += QStringLiteral(", Docker engine %1").arg(r.engineVersion);
        agent_->setText(a);
    } else {
        agent_->setText(QStringLiteral("not answering: ") + QString::fromStdString(st.agent_error));
    }

    // Isolation: the guest's state when it answers, else the setting for the next start.
    const IsolationInfo& iso = vm_->isolation();
    // Locked on the host (admin settings), or in the running guest (the lock it got at start).
    const bool hostLocked = settings_->isLocked("isolation");
    const bool guestLocked = vm_->state() == VmState::running && vm_->isolation().known &&
                             vm_->isolation().lockedByGuest;
    const bool locked = hostLocked || guestLocked;
    const bool settingOn =
        settings_->value("isolation").is_boolean() && settings_->value("isolation").get<bool>();
    const bool shownOn = running && iso.known ? iso.enabled : settingOn;
    {
        QSignalBlocker block(isoToggle_);
        isoToggle_->setChecked(shownOn);
    }
    const bool switchable = running ? vm_->canSwitchIsolation() && iso.known : !busy;
    isoToggle_->setEnabled(!locked && switchable);
    if (locked) {
        QString why = hostLocked ? settings_->lockReason("isolation")
                                 : QStringLiteral("isolation is locked by the administrator") +
                                       (vm_->isolation().lockSource.isEmpty()
                                            ? QString()
                                            : QStringLiteral(" in ") + vm_->isolation().lockSource);
        isoLock_->setText(QStringLiteral("Read-only: ") + why);
        isoToggle_->setToolTip(isoLock_->text());
    } else {
        isoLock_->clear();
        isoToggle_->setToolTip({});
    }
    isoLock_->setVisible(locked);
    if (running && iso.known) {
        isoState_->setText(
            iso.enabled ? QStringLiteral("Isolation is on in the VM.")
                        : QStringLiteral("Isolation is off in the VM: container root is VM root."));
    } else if (running && !vm_->isolationError().empty()) {
        isoState_->setText(
            QStringLiteral("The guest cannot report isolation: ") + vm_->isolationError().what +
            (vm_->isolationError().hint.isEmpty()
                 ? QString()
                 : QStringLiteral(" (") + vm_->isolationError().hint + QStringLiteral(")")));
    } else if (running) {
        isoState_->setText(QStringLiteral("Unknown until the guest agent answers (setting: %1).")
                               .arg(settingOn ? QStringLiteral("on") : QStringLiteral("off")));
    } else {
        isoState_->setText(QStringLiteral("Takes effect when the VM starts (setting: %1).")
                               .arg(settingOn ? QStringLiteral("on") : QStringLiteral("off")));
    }
    rootMap_->setText(QStringLiteral("Container root is: ") + rootMappingText(iso, running));
    rootMap_->setVisible(running);
    dockerHost_->setText(vm_->dockerHostLine());
}

// ---------------------------------------------------------------- shared widgets

QTableView* makeTableView(QAbstractItemModel* model, const char* name, QWidget* parent) {
    auto* view = new QTableView(parent);
    view->setObjectName(QString::fromLatin1(name));
    view->setModel(model);
    view->setSelectionBehavior(QAbstractItemView::SelectRows);
    view->setAlternatingRowColors(true);
    view->verticalHeader()->hide();
    view->horizontalHeader()->setStretchLastSection(true);
    view->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    return view;
}

QPushButton* makeRefreshButton(const char* name, QWidget* parent) {
    auto* button = new QPushButton(parent->style()->standardIcon(QStyle::SP_BrowserReload),
                                   QStringLiteral("Refresh"), parent);
    button->setObjectName(QString::fromLatin1(name));
    button->setAccessibleName(QStringLiteral("Refresh"));
    return button;
}

// ---------------------------------------------------------------- SettingsPage

SettingsPage::SettingsPage(SettingsStore* store, VmController* vm, QWidget* parent)
    : QWidget(parent), store_(store), vm_(vm) {
    auto* lay = new QVBoxLayout(this);
    loadError_ = new ErrorBanner(this, false);
    loadError_->setObjectName(QStringLiteral("settingsLoadError"));
    lay->addWidget(loadError_);
    auto* box = new QGroupBox(QStringLiteral("Virtual machine"), this);
    auto* form = new QGridLayout(box);
    int row = 0;
    for (const host::KeyInfo& k : host::setting_keys()) {
        if (k.name == "isolation")
            continue;  // on the Overview page, with its explanation
        Row r;
        r.key = k.name;
        QWidget* editor = nullptr;
        switch (k.type) {
            case host::ValueType::integer: {
                auto* spin = new QSpinBox(box);
                spin->setRange(static_cast<int>(k.min),
                               static_cast<int>(std::min<long long>(k.max, 1 << 30)));
                if (k.name == "memory_mib") {
                    spin->setSuffix(QStringLiteral(" MiB"));
                    spin->setSingleStep(256);
                } else if (k.name == "disk_gib") {
                    spin->setSuffix(QStringLiteral(" GiB"));
                }
                editor = spin;
                break;
            }
            case host::ValueType::folders:  // shared_folders as "PATH[:ro],..."
            case host::ValueType::strings:  // a,b,c
            case host::ValueType::string: {
                auto* line = new QLineEdit(box);
                if (k.name == "connect_uri")
                    line->setPlaceholderText(QString::fromStdString(host::default_uri()));
                editor = line;
                break;
            }
            case host::ValueType::boolean:
                editor = new QCheckBox(box);
                break;
            case host::ValueType::choice: {
                auto* combo = new QComboBox(box);
                for (const auto& c : k.choices) combo->addItem(QString::fromStdString(c));
                editor = combo;
                break;
            }
        }
        editor->setObjectName(QStringLiteral("setting_") + QString::fromStdString(k.name));
        r.editor = editor;
        auto* label = new QLabel(QString::fromStdString(k.name) + QLatin1Char(':'), box);
        label->setBuddy(editor);
        auto* desc = wrapLabel(QString::fromStdString(k.description), box);
        r.note = wrapLabel({}, box);
        r.note->setObjectName(QStringLiteral("settingNote_") + QString::fromStdString(k.name));
        form->addWidget(label, row, 0);
        form->addWidget(editor, row, 1);
        form->addWidget(desc, row, 2);
        form->addWidget(r.note, row + 1, 1, 1, 2);
        row += 2;
        rows_.push_back(r);
    }
    form->setColumnStretch(2, 1);
    lay->addWidget(box);

    problems_ = wrapLabel({}, this, "settingsProblems");
    problems_->setStyleSheet(QStringLiteral("color: #b3261e;"));
    lay->addWidget(problems_);
    restartNote_ = wrapLabel(
        QStringLiteral("CPU, memory, accelerator and image changes take effect at the next "
                       "start; the disk size applies when the data disk is created."),
        this);
    lay->addWidget(restartNote_);

    auto* buttons = new QHBoxLayout;
    buttons->addStretch();
    auto* revertBtn = new QPushButton(QStringLiteral("Revert"), this);
    revertBtn->setObjectName(QStringLiteral("settingsRevert"));
    auto* applyBtn = new QPushButton(QStringLiteral("Apply"), this);
    applyBtn->setObjectName(QStringLiteral("settingsApply"));
    applyBtn->setDefault(true);
    buttons->addWidget(revertBtn);
    buttons->addWidget(applyBtn);
    lay->addLayout(buttons);
    lay->addStretch();

    connect(revertBtn, &QPushButton::clicked, this, &SettingsPage::revert);
    connect(applyBtn, &QPushButton::clicked, this, &SettingsPage::apply);
    connect(store_, &SettingsStore::changed, this, &SettingsPage::revert);
    revert();
}

void SettingsPage::revert() {
    loadError_->showError(store_->loadError());
    problems_->clear();
    for (Row& r : rows_) {
        const json v = store_->value(r.key);
        if (auto* spin = qobject_cast<QSpinBox*>(r.editor)) {
            spin->setValue(v.is_number_integer() ? v.get<int>() : 0);
        } else if (auto* line = qobject_cast<QLineEdit*>(r.editor)) {
            line->setText(v.is_string() || v.is_array() ? QString::fromStdString(host::setting_text(v))
                                                        : QString());
        } else if (auto* check = qobject_cast<QCheckBox*>(r.editor)) {
            check->setChecked(v.is_boolean() && v.get<bool>());
        } else if (auto* combo = qobject_cast<QComboBox*>(r.editor)) {
            combo->setCurrentText(v.is_string() ? QString::fromStdString(v.get<std::string>())
                                                : QString());
        }
        const bool locked = store_->isLocked(r.key);
        r.editor->setEnabled(!locked);
        if (locked && store_->loaded()) {
            r.note->setText(QStringLiteral("Read-only: ") + store_->lockReason(r.key));
            r.note->setStyleSheet(QStringLiteral("color: #8a5a00;"));
        } else {
            r.note->setText(QStringLiteral("Value from: ") + store_->sourceText(r.key));
            r.note->setStyleSheet(QStringLiteral("color: palette(mid);"));
        }
    }
}

json SettingsPage::editorValue(const Row& r) const {
    if (auto* spin = qobject_cast<QSpinBox*>(r.editor))
        return spin->value();
    if (auto* line = qobject_cast<QLineEdit*>(r.editor)) {
        const std::string text = line->text().trimmed().toStdString();
        const host::KeyInfo* k = host::find_key(r.key);
        if (k && k->type == host::ValueType::folders) {
            try {
                return host::parse_shared_folders_text(text);
            } catch (const std::exception&) {
                return text;  // applying reports what the setting expects
            }
        }
        if (k && k->type == host::ValueType::strings) {  // "a,b,c" (registries, CA files)
            try {
                return host::parse_setting_text(r.key, text);
            } catch (const std::exception&) {
                return text;  // applying reports what the setting expects
            }
        }
        return text;
    }
    if (auto* check = qobject_cast<QCheckBox*>(r.editor))
        return check->isChecked();
    if (auto* combo = qobject_cast<QComboBox*>(r.editor))
        return combo->currentText().toStdString();
    return {};
}

std::map<std::string, json> SettingsPage::edits() const {
    std::map<std::string, json> out;
    for (const Row& r : rows_) {
        if (store_->isLocked(r.key))
            continue;
        json v = editorValue(r);
        if (v != store_->value(r.key))
            out[r.key] = v;
    }
    return out;
}

bool SettingsPage::apply() {
    const auto changes = edits();
    if (changes.empty()) {
        problems_->setText(QStringLiteral("Nothing changed."));
        return true;
    }
    ErrorInfo writeError;
    QList<SettingProblem> problems = store_->apply(changes, &writeError);
    if (!problems.isEmpty()) {
        QStringList lines;
        for (const auto& p : problems) lines << p.key + QStringLiteral(": ") + p.message;
        problems_->setText(QStringLiteral("Not applied:\n") + lines.join(QLatin1Char('\n')));
        return false;
    }
    if (!writeError.empty()) {
        problems_->setText(QStringLiteral("Not applied: ") + writeError.text());
        return false;
    }
    problems_->setText(QStringLiteral("Applied."));
    return true;
}

// ---------------------------------------------------------------- LogsPage

LogsPage::LogsPage(VmController* vm, QWidget* parent) : QWidget(parent), vm_(vm) {
    auto* lay = new QVBoxLayout(this);
    auto* top = new QHBoxLayout;
    source_ = new QComboBox(this);
    source_->setObjectName(QStringLiteral("logSource"));
    source_->addItem(QStringLiteral("Guest agent"), QStringLiteral("agent"));
    source_->addItem(QStringLiteral("Docker engine"), QStringLiteral("engine"));
    source_->addItem(QStringLiteral("containerd"), QStringLiteral("containerd"));
    source_->addItem(QStringLiteral("VM console"), QStringLiteral("console"));
    source_->addItem(QStringLiteral("Host agent"), QStringLiteral("hostagent"));
    auto* refresh = new QPushButton(style()->standardIcon(QStyle::SP_BrowserReload),
                                    QStringLiteral("Refresh"), this);
    refresh->setObjectName(QStringLiteral("logRefresh"));
    auto* copy = new QPushButton(QStringLiteral("Copy all"), this);
    copy->setObjectName(QStringLiteral("logCopy"));
    top->addWidget(new QLabel(QStringLiteral("Log:"), this));
    top->addWidget(source_);
    top->addStretch();
    top->addWidget(refresh);
    top->addWidget(copy);
    lay->addLayout(top);
    error_ = new ErrorBanner(this, false);
    error_->setObjectName(QStringLiteral("logError"));
    lay->addWidget(error_);
    text_ = new QPlainTextEdit(this);
    text_->setObjectName(QStringLiteral("logText"));
    text_->setReadOnly(true);
    text_->setLineWrapMode(QPlainTextEdit::NoWrap);
    text_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    lay->addWidget(text_, 1);

    connect(source_, &QComboBox::currentIndexChanged, this, &LogsPage::reload);
    connect(refresh, &QPushButton::clicked, this, &LogsPage::reload);
    connect(copy, &QPushButton::clicked, this,
            [this] { QApplication::clipboard()->setText(text_->toPlainText()); });
    connect(vm_, &VmController::logReady, this, [this](const QString& source, const QString& text) {
        if (source != source_->currentData().toString())
            return;
        error_->showError({});
        text_->setPlainText(text);
        text_->moveCursor(QTextCursor::End);
    });
    connect(vm_, &VmController::logFailed, this, [this](const QString& source, const ErrorInfo& e) {
        if (source != source_->currentData().toString())
            return;
        text_->clear();
        error_->showError(e);
    });
}

void LogsPage::reload() {
    vm_->fetchLog(source_->currentData().toString());
}

}  // namespace cordon::gui

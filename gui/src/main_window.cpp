#include "main_window.hpp"

#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QPushButton>
#include <QScrollArea>
#include <QSettings>
#include <QStatusBar>
#include <QTimer>
#include <iterator>

#include "app_icon.hpp"

namespace cordon::gui {

MainWindow::MainWindow(VmController* vm, SettingsStore* settings, QWidget* parent)
    : QMainWindow(parent), vm_(vm), settings_(settings) {
    setObjectName(QStringLiteral("mainWindow"));
    setWindowTitle(QStringLiteral("Cordon"));
    setWindowIcon(appIcon());

    tabs_ = new QTabWidget(this);
    tabs_->setObjectName(QStringLiteral("pages"));
    tabs_->setDocumentMode(true);
    // Its workers use the controller's back end: the window must go before the controller.
    docker_ = new DockerController([vm] { return vm->backend().dockerClient(); }, this);
    overview_ = new OverviewPage(vm_, settings_, tabs_);
    containers_ = new ContainersPage(vm_, docker_, tabs_);
    images_ = new ImagesPage(docker_, tabs_);
    volumes_ = new VolumesPage(docker_, tabs_);
    audit_ = new AuditPage(vm_, tabs_);
    settingsPage_ = new SettingsPage(settings_, vm_, tabs_);
    logs_ = new LogsPage(vm_, tabs_);
    // Form-like pages scroll rather than squash their wrapped text in a small window.
    auto scrolled = [this](QWidget* page) {
        auto* area = new QScrollArea(tabs_);
        area->setWidget(page);
        area->setWidgetResizable(true);
        area->setFrameShape(QFrame::NoFrame);
        return area;
    };
    tabs_->addTab(scrolled(overview_), QStringLiteral("&Overview"));
    tabs_->addTab(containers_, QStringLiteral("&Containers"));
    tabs_->addTab(images_, QStringLiteral("&Images"));
    tabs_->addTab(volumes_, QStringLiteral("Vol&umes"));
    tabs_->addTab(audit_, QStringLiteral("&Audit"));
    tabs_->addTab(scrolled(settingsPage_), QStringLiteral("&Settings"));
    tabs_->addTab(logs_, QStringLiteral("&Logs"));
    setCentralWidget(tabs_);

    buildActions();
    buildTray();

    connect(vm_, &VmController::changed, this, &MainWindow::onChanged);
    connect(vm_, &VmController::confirmationRequired, this, &MainWindow::onConfirmationRequired);
    connect(vm_, &VmController::isolationSwitched, this, [this](const QString& summary) {
        ErrorInfo ignored;
        if (!settings_->isLocked("isolation"))
            settings_->apply({{"isolation", pendingIsolation_}}, &ignored);
        statusBar()->showMessage(summary, 15000);
        if (tray_ && tray_->isVisible() && !isVisible())
            tray_->showMessage(QStringLiteral("Cordon"), summary);
    });
    connect(vm_, &VmController::operationFinished, this, [this](const QString& op, bool ok) {
        statusBar()->showMessage(
            ok ? QStringLiteral("%1: done").arg(op) : QStringLiteral("%1 failed").arg(op), 8000);
        if (tray_ && tray_->isVisible() && !isVisible() && !ok) {
            tray_->showMessage(QStringLiteral("Cordon"), vm_->lastError().what,
                               QSystemTrayIcon::Critical);
        }
        if (ok && (op == QLatin1String("start") || op == QLatin1String("restart")))
            vm_->refreshContainers();
        if (quitting_ && !vm_->busy())
            qApp->quit();
    });
    connect(overview_, &OverviewPage::isolationRequested, this, &MainWindow::requestIsolation);
    connect(settings_, &SettingsStore::changed, this, [this] {
        vm_->backend().setSettings(settings_->effective());
        vm_->refresh();
    });
    connect(tabs_, &QTabWidget::currentChanged, this, &MainWindow::refreshCurrentPage);
    connect(audit_, &AuditPage::unseenRefusalsChanged, this, &MainWindow::updateAuditTab);
    // The audit log is read in the background so the tab can count new refusals.
    auditPoll_.setInterval(20000);
    connect(&auditPoll_, &QTimer::timeout, this, [this] {
        if (vm_->vmRunning() && vm_->lastStatus().agent_reachable)
            vm_->refreshAudit();
    });
    auditPoll_.start();

    QSettings qs;
    if (!restoreGeometry(qs.value(QStringLiteral("window/geometry")).toByteArray())) {
        const int em = fontMetrics().height();
        resize(em * 58, em * 50);
    }
    restoreState(qs.value(QStringLiteral("window/state")).toByteArray());
    tabs_->setCurrentIndex(qs.value(QStringLiteral("window/page"), 0).toInt());
    onChanged();
}

void MainWindow::buildActions() {
    QMenu* file = menuBar()->addMenu(QStringLiteral("&File"));
    auto* copyHost = file->addAction(QStringLiteral("Copy &DOCKER_HOST line"));
    copyHost->setShortcut(QKeySequence(QStringLiteral("Ctrl+Shift+C")));
    connect(copyHost, &QAction::triggered, this, [this] {
        QApplication::clipboard()->setText(vm_->dockerHostLine());
        statusBar()->showMessage(QStringLiteral("Copied: ") + vm_->dockerHostLine(), 5000);
    });
    file->addSeparator();
    quitAct_ = file->addAction(QStringLiteral("&Quit"));
    quitAct_->setObjectName(QStringLiteral("quitAction"));
    quitAct_->setShortcut(QKeySequence::Quit);
    if (quitAct_->shortcut().isEmpty())
        quitAct_->setShortcut(QKeySequence(QStringLiteral("Ctrl+Q")));
    quitAct_->setMenuRole(QAction::QuitRole);
    connect(quitAct_, &QAction::triggered, this, &MainWindow::quitWhenIdle);

    QMenu* vmMenu = menuBar()->addMenu(QStringLiteral("&VM"));
    startAct_ = vmMenu->addAction(QStringLiteral("&Start"));
    startAct_->setObjectName(QStringLiteral("startAction"));
    startAct_->setShortcut(QKeySequence(QStringLiteral("Ctrl+Shift+S")));
    stopAct_ = vmMenu->addAction(QStringLiteral("S&top"));
    stopAct_->setObjectName(QStringLiteral("stopAction"));
    stopAct_->setShortcut(QKeySequence(QStringLiteral("Ctrl+Shift+X")));
    restartAct_ = vmMenu->addAction(QStringLiteral("&Restart"));
    restartAct_->setObjectName(QStringLiteral("restartAction"));
    restartAct_->setShortcut(QKeySequence(QStringLiteral("Ctrl+R")));
    vmMenu->addSeparator();
    refreshAct_ = vmMenu->addAction(QStringLiteral("Re&fresh"));
    refreshAct_->setObjectName(QStringLiteral("refreshAction"));
    refreshAct_->setShortcut(QKeySequence::Refresh);
    if (refreshAct_->shortcut() != QKeySequence(Qt::Key_F5)) {
        refreshAct_->setShortcuts(
            {QKeySequence(Qt::Key_F5), QKeySequence(QStringLiteral("Ctrl+F5"))});
    }
    connect(startAct_, &QAction::triggered, vm_, &VmController::start);
    connect(stopAct_, &QAction::triggered, vm_, &VmController::stop);
    connect(restartAct_, &QAction::triggered, vm_, &VmController::restart);
    connect(refreshAct_, &QAction::triggered, this, [this] {
        settings_->reload();
        vm_->refresh();
        refreshCurrentPage();
    });

    QMenu* view = menuBar()->addMenu(QStringLiteral("V&iew"));
    const char* names[] = {"&Overview", "&Containers", "&Images", "Vol&umes",
                           "&Audit",    "&Settings",   "&Logs"};
    static_assert(static_cast<int>(std::size(names)) == PageCount);
    for (int i = 0; i < PageCount; ++i) {
        auto* a = view->addAction(QString::fromLatin1(names[i]));
        a->setShortcut(QKeySequence(QStringLiteral("Ctrl+%1").arg(i + 1)));
        connect(a, &QAction::triggered, this, [this, i] { showPage(static_cast<Page>(i)); });
    }

    QMenu* help = menuBar()->addMenu(QStringLiteral("&Help"));
    help->addAction(QStringLiteral("&About Cordon"), this, [this] {
        QMessageBox::about(
            this, QStringLiteral("About Cordon"),
            QStringLiteral("<b>Cordon</b><br>Containers in an isolated VM.<br><br>"
                           "VM state: %1; the guest agent's info is read every %2 s.")
                .arg(vm_->eventsActive() ? QStringLiteral("live from libvirt events")
                                         : QStringLiteral("polled (no libvirt events)"))
                .arg(vm_->pollInterval() / 1000.0));
    });
}

void MainWindow::buildTray() {
    if (!QSystemTrayIcon::isSystemTrayAvailable())
        return;
    tray_ = new QSystemTrayIcon(appIcon(), this);
    auto* menu = new QMenu(this);
    menu->addAction(QStringLiteral("Show Cordon"), this, [this] {
        showNormal();
        raise();
        activateWindow();
    });
    menu->addSeparator();
    menu->addAction(startAct_);
    menu->addAction(stopAct_);
    menu->addAction(restartAct_);
    menu->addSeparator();
    menu->addAction(quitAct_);
    tray_->setContextMenu(menu);
    connect(tray_, &QSystemTrayIcon::activated, this, [this](QSystemTrayIcon::ActivationReason r) {
        if (r == QSystemTrayIcon::Trigger) {
            if (isVisible() && !isMinimized()) {
                hide();
            } else {
                showNormal();
                raise();
                activateWindow();
            }
        }
    });
    tray_->show();
}

void MainWindow::showPage(Page p) {
    tabs_->setCurrentIndex(static_cast<int>(p));
}

void MainWindow::refreshCurrentPage() {
    switch (tabs_->currentIndex()) {
        case ContainersTab:
            vm_->refreshContainers();
            break;
        case ImagesTab:
            images_->reload();
            break;
        case VolumesTab:
            volumes_->reload();
            break;
        case AuditTab:
            audit_->model()->markSeen();
            vm_->refreshAudit();
            break;
        case LogsTab:
            logs_->reload();
            break;
        default:
            break;
    }
}

void MainWindow::updateAuditTab(int unseen) {
    if (unseen > 0 && tabs_->currentIndex() == AuditTab && isVisible()) {
        audit_->model()->markSeen();  // in view: seen now
        return;
    }
    const QString base = QStringLiteral("&Audit");
    tabs_->setTabText(AuditTab,
                      unseen > 0 ? QStringLiteral("%1 (%2)").arg(base).arg(unseen) : base);
    tabs_->setTabToolTip(
        AuditTab, unseen > 0
                      ? QStringLiteral("%1 request(s) refused since you last looked").arg(unseen)
                      : QString());
}

void MainWindow::onChanged() {
    startAct_->setEnabled(vm_->canStart());
    stopAct_->setEnabled(vm_->canStop());
    restartAct_->setEnabled(vm_->canRestart());
    QString tip = QStringLiteral("Cordon: ") + vm_->stateText();
    const Resources& r = vm_->resources();
    if (vm_->state() == VmState::running && r.cpus > 0) {
        tip += QStringLiteral(" (%1 CPUs, %2, up %3)")
                   .arg(r.cpus)
                   .arg(formatMemory(r.memoryMib), formatUptime(r.uptimeSeconds));
    }
    if (vm_->busy() && !vm_->progressText().isEmpty())
        tip += QStringLiteral("\n") + vm_->progressText();
    if (!vm_->lastError().empty())
        tip += QStringLiteral("\n") + vm_->lastError().what;
    statusBar()->showMessage(tip.section(QLatin1Char('\n'), 0, 0));
    setWindowTitle(QStringLiteral("Cordon — %1").arg(vm_->stateText()));
    if (tray_) {
        const int key = static_cast<int>(vm_->state());
        auto it = trayIcons_.find(key);
        if (it == trayIcons_.end())
            it = trayIcons_.emplace(key, stateIcon(vm_->state())).first;
        tray_->setIcon(it->second);
        tray_->setToolTip(tip);
    }
}

void MainWindow::requestIsolation(bool enabled) {
    if (settings_->isLocked("isolation")) {
        statusBar()->showMessage(settings_->lockReason("isolation"), 10000);
        return;
    }
    pendingIsolation_ = enabled;
    if (vm_->state() == VmState::running) {
        vm_->switchIsolation(enabled, false);
        return;
    }
    ErrorInfo writeError;
    auto problems = settings_->apply({{"isolation", enabled}}, &writeError);
    if (!problems.isEmpty()) {
        statusBar()->showMessage(problems.front().message, 10000);
    } else if (!writeError.empty()) {
        QMessageBox::warning(this, QStringLiteral("Cannot save the setting"), writeError.text());
    } else {
        statusBar()->showMessage(enabled
                                     ? QStringLiteral("Isolation will be on when the VM starts.")
                                     : QStringLiteral("Isolation will be off when the VM starts."),
                                 8000);
    }
}

void MainWindow::onConfirmationRequired(bool enabled, const QStringList& running,
                                        const QString& message) {
    auto* box = new QMessageBox(this);
    box->setObjectName(QStringLiteral("isolationConfirmDialog"));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setIcon(QMessageBox::Warning);
    box->setWindowTitle(enabled ? QStringLiteral("Turn isolation on?")
                                : QStringLiteral("Turn isolation off?"));
    QString text =
        enabled ? QStringLiteral(
                      "Turning Enhanced Container Isolation on stops the running containers.")
                : QStringLiteral(
                      "Turning Enhanced Container Isolation off stops the running containers "
                      "and lets container root act as VM root.");
    box->setText(text);
    QString info = message;
    if (!running.isEmpty())
        info += QStringLiteral("\n\nRunning: ") + running.join(QStringLiteral(", "));
    info += QStringLiteral("\n\nImages and named volumes move to the new mode.");
    box->setInformativeText(info);
    auto* go =
        box->addButton(QStringLiteral("Stop containers and switch"), QMessageBox::AcceptRole);
    go->setObjectName(QStringLiteral("confirmSwitch"));
    box->addButton(QMessageBox::Cancel);
    box->setDefaultButton(QMessageBox::Cancel);
    connect(box, &QMessageBox::buttonClicked, this, [this, box, go, enabled](QAbstractButton* b) {
        if (b == go) {
            pendingIsolation_ = enabled;
            vm_->switchIsolation(enabled, true);
        }
        (void)box;
    });
    box->open();
}

void MainWindow::quitWhenIdle() {
    if (vm_->busy()) {
        auto answer =
            QMessageBox::question(this, QStringLiteral("Quit Cordon?"),
                                  QStringLiteral("Cordon is still busy (%1). Quit when it is done? "
                                                 "The VM keeps its state either way.")
                                      .arg(vm_->operation()));
        if (answer != QMessageBox::Yes)
            return;
        quitting_ = true;
        saveWindowState();
        hide();
        return;
    }
    saveWindowState();
    qApp->quit();
}

void MainWindow::saveWindowState() {
    QSettings qs;
    qs.setValue(QStringLiteral("window/geometry"), saveGeometry());
    qs.setValue(QStringLiteral("window/state"), saveState());
    qs.setValue(QStringLiteral("window/page"), tabs_->currentIndex());
    qs.sync();
}

void MainWindow::closeEvent(QCloseEvent* e) {
    saveWindowState();
    if (tray_ && tray_->isVisible() && !quitting_) {
        // Keeps running in the tray; Quit (Ctrl+Q) ends the app.
        hide();
        e->ignore();
        return;
    }
    e->accept();
}

}  // namespace cordon::gui

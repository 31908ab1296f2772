#include "containers_page.hpp"

#include <QApplication>
#include <QClipboard>
#include <QDesktopServices>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QMenu>
#include <QMessageBox>
#include <QShortcut>
#include <QStyle>
#include <QUrl>
#include <QVBoxLayout>
#include <utility>

#include "container_dialogs.hpp"
#include "pages.hpp"
#include "terminal_command.hpp"

namespace cordon::gui {

ContainersPage::ContainersPage(VmController* vm, DockerController* docker, QWidget* parent)
    : QWidget(parent), vm_(vm), docker_(docker) {
    auto* lay = new QVBoxLayout(this);
    auto* top = new QHBoxLayout;
    search_ = new QLineEdit(this);
    search_->setObjectName(QStringLiteral("containersFilter"));
    search_->setPlaceholderText(QStringLiteral("Filter by name, image, state, project (Ctrl+F)"));
    search_->setAccessibleName(QStringLiteral("Filter containers"));
    search_->setClearButtonEnabled(true);
    auto* refresh = makeRefreshButton("containersRefresh", this);
    top->addWidget(search_, 1);
    top->addWidget(refresh);
    lay->addLayout(top);
    summary_ = wrapLabel(QStringLiteral("Containers in the VM, read through Cordon's docker.sock."),
                         this, "containersSummary");
    lay->addWidget(summary_);
    error_ = new ErrorBanner(this, false);
    error_->setObjectName(QStringLiteral("containersError"));
    lay->addWidget(error_);
    actionError_ = new ErrorBanner(this);
    actionError_->setObjectName(QStringLiteral("containerActionError"));
    lay->addWidget(actionError_);

    buttonRow_ = new QWidget(this);
    auto* buttons = new QHBoxLayout(buttonRow_);
    buttons->setContentsMargins(0, 0, 0, 0);
    start_ =
        addButton(QStringLiteral("Start"), "containerStart", QStringLiteral("Start container"));
    stop_ = addButton(QStringLiteral("Stop"), "containerStop", QStringLiteral("Stop container"));
    restart_ = addButton(QStringLiteral("Restart"), "containerRestart",
                         QStringLiteral("Restart container"));
    delete_ =
        addButton(QStringLiteral("Delete…"), "containerDelete", QStringLiteral("Delete container"));
    logs_ = addButton(QStringLiteral("Logs"), "containerLogs", QStringLiteral("Show logs"));
    inspect_ = addButton(QStringLiteral("Inspect"), "containerInspect",
                         QStringLiteral("Inspect container"));
    terminal_ = addButton(QStringLiteral("Terminal"), "containerTerminal",
                          QStringLiteral("Open a terminal in the container"));
    openPort_ = addButton(QStringLiteral("Open port"), "containerOpenPort",
                          QStringLiteral("Open a published port in the browser"));
    buttons->addStretch();
    lay->addWidget(buttonRow_);

    model_ = new ContainerModel(this);
    filter_ = new QSortFilterProxyModel(this);
    filter_->setSourceModel(model_);
    filter_->setRecursiveFilteringEnabled(true);
    filter_->setFilterKeyColumn(-1);
    filter_->setFilterCaseSensitivity(Qt::CaseInsensitive);
    view_ = new QTreeView(this);
    view_->setObjectName(QStringLiteral("containersView"));
    view_->setAccessibleName(QStringLiteral("Containers"));
    view_->setModel(filter_);
    view_->setSelectionBehavior(QAbstractItemView::SelectRows);
    view_->setSelectionMode(QAbstractItemView::SingleSelection);
    view_->setAlternatingRowColors(true);
    view_->setUniformRowHeights(true);
    view_->header()->setSectionResizeMode(QHeaderView::ResizeToContents);
    view_->header()->setStretchLastSection(true);
    lay->addWidget(view_, 1);
    setTabOrder(search_, view_);

    connect(search_, &QLineEdit::textChanged, filter_, [this](const QString& text) {
        filter_->setFilterFixedString(text);
        view_->expandAll();
    });
    auto* find = new QShortcut(QKeySequence(QKeySequence::Find), this);
    find->setContext(Qt::WidgetWithChildrenShortcut);
    connect(find, &QShortcut::activated, search_, [this] {
        search_->setFocus(Qt::ShortcutFocusReason);
        search_->selectAll();
    });
    auto* del = new QShortcut(QKeySequence(QKeySequence::Delete), view_);
    del->setContext(Qt::WidgetShortcut);
    connect(del, &QShortcut::activated, this, [this] { act(ContainerAction::remove); });
    connect(view_, &QTreeView::activated, this, [this](const QModelIndex& index) {
        if (index.column() == ContainerModel::Ports)
            openPort();
        else if (selected())
            showLogs();
    });
    connect(view_, &QTreeView::clicked, this, [this](const QModelIndex& index) {
        if (index.column() == ContainerModel::Ports)
            openUrls(index.data(ContainerModel::PortUrlsRole).toStringList());
    });
    connect(view_->selectionModel(), &QItemSelectionModel::selectionChanged, this,
            &ContainersPage::updateButtons);
    connect(model_, &QAbstractItemModel::modelAboutToBeReset, this, [this] {
        if (const ContainerRow* r = selected())
            keepSelected_ = r->id;
    });
    connect(model_, &QAbstractItemModel::modelReset, this, [this] {
        view_->expandAll();
        if (!keepSelected_.isEmpty())
            selectContainer(std::exchange(keepSelected_, QString()));
        updateButtons();
    });

    connect(start_, &QPushButton::clicked, this, [this] { act(ContainerAction::start); });
    connect(stop_, &QPushButton::clicked, this, [this] { act(ContainerAction::stop); });
    connect(restart_, &QPushButton::clicked, this, [this] { act(ContainerAction::restart); });
    connect(delete_, &QPushButton::clicked, this, [this] { act(ContainerAction::remove); });
    connect(logs_, &QPushButton::clicked, this, &ContainersPage::showLogs);
    connect(inspect_, &QPushButton::clicked, this, &ContainersPage::inspect);
    connect(terminal_, &QPushButton::clicked, this, &ContainersPage::openTerminal);
    connect(openPort_, &QPushButton::clicked, this, &ContainersPage::openPort);
    connect(refresh, &QPushButton::clicked, vm_, &VmController::refreshContainers);

    connect(vm_, &VmController::containersReady, this, &ContainersPage::onContainers);
    connect(vm_, &VmController::containersFailed, this, [this](const ErrorInfo& e) {
        lastRows_.clear();
        model_->setContainers({});
        error_->showError(e);
    });
    connect(vm_, &VmController::changed, this, &ContainersPage::updateMapping);
    connect(docker_, &DockerController::statsReady, model_, &ContainerModel::setStats);
    connect(docker_, &DockerController::actionFinished, this,
            [this](const QString& what, const ErrorInfo& e) {
                actionError_->showActionResult(what, e);
                vm_->refreshContainers();
            });
    connect(docker_, &DockerController::inspectReady, this,
            [this](const QString& name, const QString& json) {
                (new JsonViewDialog(QStringLiteral("Inspect: %1").arg(name), json, this))->show();
            });
    connect(docker_, &DockerController::inspectFailed, this,
            [this](const QString& name, const ErrorInfo& e) {
                ErrorInfo shown = e;
                shown.what = QStringLiteral("Could not inspect %1: %2").arg(name, e.what);
                actionError_->showError(shown);
            });

    // While shown, the list (and the running containers' stats) refresh every 10 s.
    autoRefresh_.setInterval(10000);
    connect(&autoRefresh_, &QTimer::timeout, this, [this] {
        if (isVisible() && vm_->vmRunning())
            vm_->refreshContainers();
    });
    autoRefresh_.start();
    updateButtons();
}

QPushButton* ContainersPage::addButton(const QString& text, const char* name,
                                       const QString& accessible) {
    auto* b = new QPushButton(text, buttonRow_);
    b->setObjectName(QLatin1String(name));
    b->setAccessibleName(accessible);
    b->setToolTip(accessible);
    buttonRow_->layout()->addWidget(b);
    return b;
}

void ContainersPage::onContainers(const QList<ContainerRow>& rows) {
    error_->showError({});
    lastRows_ = rows;
    model_->setContainers(rows);
    QStringList runningIds;
    for (const auto& r : rows) {
        if (r.state == QLatin1String("running"))
            runningIds << r.id;
    }
    updateMapping();
    if (isVisible())
        docker_->fetchStats(runningIds);
}

void ContainersPage::updateMapping() {
    int running = 0;
    for (const auto& r : lastRows_) running += r.state == QLatin1String("running") ? 1 : 0;
    summary_->setText(QStringLiteral("%1 container(s), %2 running. Container root is: %3.")
                          .arg(lastRows_.size())
                          .arg(running)
                          .arg(rootMappingText(vm_->isolation(), vm_->vmRunning())));
}

const ContainerRow* ContainersPage::selected() const {
    const QModelIndexList rows = view_->selectionModel()->selectedRows();
    if (rows.isEmpty())
        return nullptr;
    return model_->containerAt(filter_->mapToSource(rows.front()));
}

void ContainersPage::selectContainer(const QString& id) {
    const QModelIndex at = filter_->mapFromSource(model_->indexOf(id));
    if (!at.isValid())
        return;
    view_->selectionModel()->setCurrentIndex(
        at, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
}

void ContainersPage::updateButtons() {
    const ContainerRow* r = selected();
    const bool isRunning = r && r->state == QLatin1String("running");
    start_->setEnabled(r && !isRunning);
    stop_->setEnabled(isRunning);
    restart_->setEnabled(r != nullptr);
    delete_->setEnabled(r != nullptr);
    logs_->setEnabled(r != nullptr);
    inspect_->setEnabled(r != nullptr);
    terminal_->setEnabled(isRunning);
    openPort_->setEnabled(r && !portUrls(r->ports).isEmpty());
}

void ContainersPage::act(ContainerAction action) {
    const ContainerRow* r = selected();
    if (!r)
        return;
    const QString id = r->id;
    const QString name = r->name;
    if (action != ContainerAction::remove) {
        docker_->act(action, id, name);
        return;
    }
    auto* box = new QMessageBox(this);
    box->setObjectName(QStringLiteral("deleteContainerConfirm"));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setIcon(QMessageBox::Warning);
    box->setWindowTitle(QStringLiteral("Delete container?"));
    box->setText(QStringLiteral("Delete the container “%1”?").arg(name));
    box->setInformativeText(
        r->state == QLatin1String("running")
            ? QStringLiteral("It is running: it is killed first. Its files outside volumes are "
                             "lost; named volumes are kept.")
            : QStringLiteral("Its files outside volumes are lost; named volumes are kept."));
    auto* go = box->addButton(QStringLiteral("Delete"), QMessageBox::DestructiveRole);
    go->setObjectName(QStringLiteral("confirmDelete"));
    box->addButton(QMessageBox::Cancel);
    box->setDefaultButton(QMessageBox::Cancel);
    connect(box, &QMessageBox::buttonClicked, this, [this, go, id, name](QAbstractButton* b) {
        if (b == go)
            docker_->act(ContainerAction::remove, id, name);
    });
    box->open();
}

void ContainersPage::openUrls(const QStringList& urls) {
    if (urls.isEmpty())
        return;
    if (urls.size() == 1) {
        QDesktopServices::openUrl(QUrl(urls.front()));
        return;
    }
    auto* menu = new QMenu(this);
    menu->setAttribute(Qt::WA_DeleteOnClose);
    menu->setAccessibleName(QStringLiteral("Published ports"));
    for (const QString& u : urls)
        menu->addAction(u, this, [u] { QDesktopServices::openUrl(QUrl(u)); });
    const QRect cell = view_->visualRect(view_->currentIndex());
    menu->popup(view_->viewport()->mapToGlobal(cell.bottomLeft()));
}

void ContainersPage::openPort() {
    if (const ContainerRow* r = selected())
        openUrls(portUrls(r->ports));
}

void ContainersPage::showLogs() {
    if (const ContainerRow* r = selected())
        (new ContainerLogsDialog(docker_, r->id, r->name, this))->show();
}

void ContainersPage::inspect() {
    if (const ContainerRow* r = selected())
        docker_->inspect(r->id, r->name);
}

void ContainersPage::openTerminal() {
    const ContainerRow* r = selected();
    if (!r)
        return;
    QString socket;
    try {
        socket = QString::fromStdString(vm_->backend().paths().docker_socket.string());
    } catch (...) {
        actionError_->showError(ErrorInfo::fromCurrentException());
        return;
    }
    const TerminalLaunch plan = planTerminalOnPath(socket, r->id);
    if (plan.launchable && launchTerminal(plan))
        return;
    auto* box = new QMessageBox(this);
    box->setObjectName(QStringLiteral("terminalCommandDialog"));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setWindowTitle(QStringLiteral("Open a terminal"));
    box->setText(plan.launchable
                     ? QStringLiteral("The terminal emulator could not be started. Run this in "
                                      "a terminal:")
                     : QStringLiteral("Cordon cannot open a terminal here (%1). Run this in a "
                                      "terminal:")
                           .arg(plan.missing));
    box->setInformativeText(plan.copyCommand);
    box->setTextInteractionFlags(Qt::TextSelectableByMouse | Qt::TextSelectableByKeyboard);
    auto* copy = box->addButton(QStringLiteral("Copy command"), QMessageBox::ActionRole);
    copy->setObjectName(QStringLiteral("copyTerminalCommand"));
    box->addButton(QMessageBox::Close);
    connect(box, &QMessageBox::buttonClicked, this,
            [copy, cmd = plan.copyCommand](QAbstractButton* b) {
                if (b == copy)
                    QApplication::clipboard()->setText(cmd);
            });
    box->open();
}

}  // namespace cordon::gui

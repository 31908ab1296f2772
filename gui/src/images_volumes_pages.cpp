#include "images_volumes_pages.hpp"

#include <QHBoxLayout>
#include <QItemSelectionModel>
#include <QMessageBox>
#include <QShortcut>
#include <QVBoxLayout>
#include <functional>

#include "pages.hpp"

namespace cordon::gui {
namespace {

// The page's top row: summary, Delete…, Refresh.
QPushButton* buildTop(QWidget* page, QVBoxLayout* lay, QLabel* summary, const char* deleteName,
                      const QString& deleteAccessible, const char* refreshName,
                      const std::function<void()>& onRefresh) {
    auto* top = new QHBoxLayout;
    top->addWidget(summary, 1);
    auto* del = new QPushButton(QStringLiteral("&Delete…"), page);
    del->setObjectName(QLatin1String(deleteName));
    del->setAccessibleName(deleteAccessible);
    del->setEnabled(false);
    top->addWidget(del);
    auto* refresh = makeRefreshButton(refreshName, page);
    QObject::connect(refresh, &QPushButton::clicked, page, onRefresh);
    top->addWidget(refresh);
    lay->addLayout(top);
    return del;
}

QMessageBox* confirmBox(QWidget* parent, const char* name, const QString& title,
                        const QString& text, const QString& info) {
    auto* box = new QMessageBox(parent);
    box->setObjectName(QLatin1String(name));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setIcon(QMessageBox::Warning);
    box->setWindowTitle(title);
    box->setText(text);
    box->setInformativeText(info);
    box->addButton(QMessageBox::Cancel);
    box->setDefaultButton(QMessageBox::Cancel);
    return box;
}

}  // namespace

ImagesPage::ImagesPage(DockerController* docker, QWidget* parent)
    : QWidget(parent), docker_(docker) {
    auto* lay = new QVBoxLayout(this);
    summary_ = wrapLabel(QStringLiteral("Images in the VM."), this, "imagesSummary");
    delete_ = buildTop(this, lay, summary_, "imageDelete", QStringLiteral("Delete image"),
                       "imagesRefresh", [this] { reload(); });
    error_ = new ErrorBanner(this);
    error_->setObjectName(QStringLiteral("imagesError"));
    lay->addWidget(error_);
    model_ = new ImageModel(this);
    view_ = makeTableView(model_, "imagesView", this);
    view_->setAccessibleName(QStringLiteral("Images"));
    view_->setSelectionMode(QAbstractItemView::SingleSelection);
    lay->addWidget(view_, 1);

    connect(delete_, &QPushButton::clicked, this, &ImagesPage::deleteSelected);
    auto* del = new QShortcut(QKeySequence(QKeySequence::Delete), view_);
    del->setContext(Qt::WidgetShortcut);
    connect(del, &QShortcut::activated, this, &ImagesPage::deleteSelected);
    connect(view_->selectionModel(), &QItemSelectionModel::selectionChanged, this,
            [this] { delete_->setEnabled(selected() != nullptr); });
    connect(model_, &QAbstractItemModel::modelReset, this,
            [this] { delete_->setEnabled(selected() != nullptr); });
    connect(docker_, &DockerController::imagesReady, this, [this](const QList<ImageRow>& rows) {
        model_->setImages(rows);
        qint64 total = 0;
        int unused = 0;
        for (const auto& r : rows) {
            total += r.size;
            unused += r.usedBy.isEmpty() ? 1 : 0;
        }
        summary_->setText(QStringLiteral("%1 image(s), %2 in all; %3 not used by any container.")
                              .arg(rows.size())
                              .arg(formatBytes(static_cast<quint64>(total)))
                              .arg(unused));
    });
    connect(docker_, &DockerController::imagesFailed, this, [this](const ErrorInfo& e) {
        model_->setImages({});
        summary_->setText(QStringLiteral("Images in the VM."));
        error_->showError(e);
    });
    connect(docker_, &DockerController::imageRemoved, this,
            [this](const QString& what, const ErrorInfo& e) {
                if (!e.empty())
                    error_->showActionResult(what, e);
                reload();
            });
}

void ImagesPage::reload() {
    docker_->refreshImages();
}

const ImageRow* ImagesPage::selected() const {
    const QModelIndexList rows = view_->selectionModel()->selectedRows();
    return rows.isEmpty() ? nullptr : model_->imageAt(rows.front().row());
}

void ImagesPage::deleteSelected() {
    const ImageRow* r = selected();
    if (!r)
        return;
    const QString label = imageLabel(*r);
    const QString info =
        r->usedBy.isEmpty()
            ? QStringLiteral("No container uses it. Pulling it again downloads it again.")
            : QStringLiteral(
                  "In use by: %1. The engine refuses while a container uses it; "
                  "delete those containers first.")
                  .arg(r->usedBy.join(QStringLiteral(", ")));
    auto* box = confirmBox(this, "deleteImageConfirm", QStringLiteral("Delete image?"),
                           QStringLiteral("Delete the image “%1”?").arg(label), info);
    auto* go = box->addButton(QStringLiteral("Delete"), QMessageBox::DestructiveRole);
    go->setObjectName(QStringLiteral("confirmDelete"));
    connect(box, &QMessageBox::buttonClicked, this,
            [this, go, id = r->id, label](QAbstractButton* b) {
                if (b == go)
                    docker_->removeImage(id, label);
            });
    box->open();
}

VolumesPage::VolumesPage(DockerController* docker, QWidget* parent)
    : QWidget(parent), docker_(docker) {
    auto* lay = new QVBoxLayout(this);
    summary_ = wrapLabel(QStringLiteral("Named volumes in the VM."), this, "volumesSummary");
    delete_ = buildTop(this, lay, summary_, "volumeDelete", QStringLiteral("Delete volume"),
                       "volumesRefresh", [this] { reload(); });
    error_ = new ErrorBanner(this);
    error_->setObjectName(QStringLiteral("volumesError"));
    lay->addWidget(error_);
    model_ = new VolumeModel(this);
    view_ = makeTableView(model_, "volumesView", this);
    view_->setAccessibleName(QStringLiteral("Volumes"));
    view_->setSelectionMode(QAbstractItemView::SingleSelection);
    lay->addWidget(view_, 1);

    connect(delete_, &QPushButton::clicked, this, &VolumesPage::deleteSelected);
    auto* del = new QShortcut(QKeySequence(QKeySequence::Delete), view_);
    del->setContext(Qt::WidgetShortcut);
    connect(del, &QShortcut::activated, this, &VolumesPage::deleteSelected);
    connect(view_->selectionModel(), &QItemSelectionModel::selectionChanged, this,
            [this] { delete_->setEnabled(selected() != nullptr); });
    connect(model_, &QAbstractItemModel::modelReset, this,
            [this] { delete_->setEnabled(selected() != nullptr); });
    connect(docker_, &DockerController::volumesReady, this, [this](const QList<VolumeRow>& rows) {
        model_->setVolumes(rows);
        int unused = 0;
        for (const auto& r : rows) unused += r.usedBy.isEmpty() ? 1 : 0;
        summary_->setText(QStringLiteral("%1 volume(s); %2 not used by any container.")
                              .arg(rows.size())
                              .arg(unused));
    });
    connect(docker_, &DockerController::volumesFailed, this, [this](const ErrorInfo& e) {
        model_->setVolumes({});
        summary_->setText(QStringLiteral("Named volumes in the VM."));
        error_->showError(e);
    });
    connect(docker_, &DockerController::volumeRemoved, this,
            [this](const QString& what, const ErrorInfo& e) {
                if (!e.empty())
                    error_->showActionResult(what, e);
                reload();
            });
}

void VolumesPage::reload() {
    docker_->refreshVolumes();
}

const VolumeRow* VolumesPage::selected() const {
    const QModelIndexList rows = view_->selectionModel()->selectedRows();
    return rows.isEmpty() ? nullptr : model_->volumeAt(rows.front().row());
}

void VolumesPage::deleteSelected() {
    const VolumeRow* r = selected();
    if (!r)
        return;
    const QString info = r->usedBy.isEmpty()
                             ? QStringLiteral("Its data is lost for good.")
                             : QStringLiteral(
                                   "In use by: %1. The engine refuses while a container uses it; "
                                   "delete those containers first. Its data is lost for good.")
                                   .arg(r->usedBy.join(QStringLiteral(", ")));
    auto* box =
        confirmBox(this, "deleteVolumeConfirm", QStringLiteral("Delete volume?"),
                   QStringLiteral("Delete the volume “%1” and its data?").arg(r->name), info);
    auto* go = box->addButton(QStringLiteral("Delete"), QMessageBox::DestructiveRole);
    go->setObjectName(QStringLiteral("confirmDelete"));
    connect(box, &QMessageBox::buttonClicked, this, [this, go, name = r->name](QAbstractButton* b) {
        if (b == go)
            docker_->removeVolume(name);
    });
    box->open();
}

}  // namespace cordon::gui

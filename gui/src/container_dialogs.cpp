#include "container_dialogs.hpp"

#include <QApplication>
#include <QClipboard>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QPushButton>
#include <QScrollBar>
#include <QVBoxLayout>

#include "pages.hpp"

namespace cordon::gui {
namespace {

QPlainTextEdit* monospaceView(QWidget* parent, const QString& accessibleName) {
    auto* t = new QPlainTextEdit(parent);
    t->setReadOnly(true);
    t->setLineWrapMode(QPlainTextEdit::NoWrap);
    t->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    t->setAccessibleName(accessibleName);
    return t;
}

QPushButton* button(const QString& text, const char* name, QWidget* parent) {
    auto* b = new QPushButton(text, parent);
    b->setObjectName(QLatin1String(name));
    b->setAccessibleName(QString(text).remove(QLatin1Char('&')));
    return b;
}

}  // namespace

JsonViewDialog::JsonViewDialog(const QString& title, const QString& jsonText, QWidget* parent)
    : QDialog(parent) {
    setObjectName(QStringLiteral("jsonViewDialog"));
    setWindowTitle(title);
    setAttribute(Qt::WA_DeleteOnClose);
    auto* lay = new QVBoxLayout(this);
    auto* text = monospaceView(this, title);
    text->setObjectName(QStringLiteral("jsonText"));
    text->setPlainText(jsonText);
    lay->addWidget(text, 1);
    auto* row = new QHBoxLayout;
    row->addStretch();
    auto* copy = button(QStringLiteral("&Copy"), "jsonCopy", this);
    auto* close = button(QStringLiteral("C&lose"), "jsonClose", this);
    connect(copy, &QPushButton::clicked, this,
            [jsonText] { QApplication::clipboard()->setText(jsonText); });
    connect(close, &QPushButton::clicked, this, &QDialog::close);
    row->addWidget(copy);
    row->addWidget(close);
    lay->addLayout(row);
    const int em = fontMetrics().height();
    resize(em * 45, em * 35);
}

ContainerLogsDialog::ContainerLogsDialog(DockerController* docker, const QString& id,
                                         const QString& name, QWidget* parent)
    : QDialog(parent),
      docker_(docker),
      id_(id),
      tail_(std::make_shared<host::docker::LogTail>(id.toStdString(), 1000)) {
    setObjectName(QStringLiteral("containerLogsDialog"));
    setWindowTitle(QStringLiteral("Logs: %1").arg(name));
    setAttribute(Qt::WA_DeleteOnClose);
    auto* lay = new QVBoxLayout(this);
    error_ = new ErrorBanner(this, false);
    lay->addWidget(error_);
    text_ = monospaceView(this, QStringLiteral("Log of %1").arg(name));
    text_->setObjectName(QStringLiteral("containerLogText"));
    text_->setMaximumBlockCount(20000);
    lay->addWidget(text_, 1);
    auto* row = new QHBoxLayout;
    follow_ = new QCheckBox(QStringLiteral("&Follow"), this);
    follow_->setObjectName(QStringLiteral("containerLogFollow"));
    follow_->setAccessibleName(QStringLiteral("Follow the log"));
    follow_->setChecked(true);
    row->addWidget(follow_);
    row->addStretch();
    auto* copy = button(QStringLiteral("&Copy all"), "containerLogCopy", this);
    auto* close = button(QStringLiteral("C&lose"), "containerLogClose", this);
    row->addWidget(copy);
    row->addWidget(close);
    lay->addLayout(row);
    const int em = fontMetrics().height();
    resize(em * 55, em * 35);

    connect(copy, &QPushButton::clicked, this,
            [this] { QApplication::clipboard()->setText(text_->toPlainText()); });
    connect(close, &QPushButton::clicked, this, &QDialog::close);
    connect(follow_, &QCheckBox::toggled, this, [this](bool on) {
        if (on)
            poll();
    });
    connect(docker_, &DockerController::logLines, this,
            [this](const QString& container, const QStringList& lines) {
                if (container != id_)
                    return;
                inFlight_ = false;
                error_->showError({});
                if (lines.isEmpty())
                    return;
                QScrollBar* bar = text_->verticalScrollBar();
                const bool atEnd = bar->value() == bar->maximum();
                text_->appendPlainText(lines.join(QLatin1Char('\n')));
                if (atEnd)
                    bar->setValue(bar->maximum());
            });
    connect(docker_, &DockerController::logFailed, this,
            [this](const QString& container, const ErrorInfo& e) {
                if (container != id_)
                    return;
                inFlight_ = false;
                error_->showError(e);
            });
    timer_.setInterval(2000);
    connect(&timer_, &QTimer::timeout, this, [this] {
        if (follow_->isChecked())
            poll();
    });
    timer_.start();
    poll();
}

void ContainerLogsDialog::poll() {
    if (inFlight_)
        return;
    inFlight_ = true;
    docker_->pollLogs(tail_);
}

}  // namespace cordon::gui

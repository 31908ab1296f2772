#pragma once
// The Containers page's windows: a container's log, followed (polled every 2 s
// through host::docker::LogTail), and a JSON view (inspect, an audit decision).
#include <QCheckBox>
#include <QDialog>
#include <QPlainTextEdit>
#include <QTimer>
#include <memory>

#include "cordon/host/docker/logs.hpp"
#include "docker_controller.hpp"

namespace cordon::gui {

class ErrorBanner;

// Read-only monospace JSON with Copy and Close.
class JsonViewDialog : public QDialog {
    Q_OBJECT
  public:
    JsonViewDialog(const QString& title, const QString& jsonText, QWidget* parent = nullptr);
};

class ContainerLogsDialog : public QDialog {
    Q_OBJECT
  public:
    ContainerLogsDialog(DockerController* docker, const QString& id, const QString& name,
                        QWidget* parent = nullptr);
    QPlainTextEdit* text() const { return text_; }

  private:
    void poll();
    DockerController* docker_;
    QString id_;
    std::shared_ptr<host::docker::LogTail> tail_;
    QPlainTextEdit* text_;
    QCheckBox* follow_;
    ErrorBanner* error_;
    QTimer timer_;
    bool inFlight_ = false;
};

}  // namespace cordon::gui

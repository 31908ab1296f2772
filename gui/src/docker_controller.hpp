#pragma once
// The container, image and volume actions of the desktop app. Every call goes
// through the host Docker client (cordon_host_docker) on this controller's own
// worker threads; results come back to the GUI thread as signals, and a failure
// as an ErrorInfo (engine down, refused, gone, malformed answer), never a throw.
// The container list itself comes from VmController::refreshContainers.
#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QThreadPool>
#include <functional>
#include <memory>
#include <mutex>

#include "cordon/host/docker/client.hpp"
#include "cordon/host/docker/logs.hpp"
#include "docker_rows.hpp"
#include "error_info.hpp"

namespace cordon::gui {

enum class ContainerAction { start, stop, restart, remove };
QString toText(ContainerAction a);  // "start", "stop", "restart", "delete"

class DockerController : public QObject {
    Q_OBJECT
  public:
    using ClientFactory = std::function<host::docker::Client()>;
    explicit DockerController(ClientFactory makeClient, QObject* parent = nullptr);
    ~DockerController() override;

    // Whether no call is in flight.
    bool idle() const { return inFlight_ == 0; }

  public slots:
    // remove forces (a running container is killed first: the dialog said so).
    void act(cordon::gui::ContainerAction action, const QString& id, const QString& name);
    // One stats sample per container, one after the other (about 1 s each); skipped
    // while the previous round runs.
    void fetchStats(const QStringList& ids);
    void inspect(const QString& id, const QString& name);
    void refreshImages();
    void refreshVolumes();
    void removeImage(const QString& id, const QString& label);
    void removeVolume(const QString& name);
    // The lines written since tail's last call (logLines), or logFailed.
    void pollLogs(std::shared_ptr<host::docker::LogTail> tail);

  signals:
    // A container action; what: "stop web"; error empty when it worked.
    void actionFinished(const QString& what, const cordon::gui::ErrorInfo& error);
    // what: "delete image nginx:1", "delete volume data"; error empty when it worked.
    void imageRemoved(const QString& what, const cordon::gui::ErrorInfo& error);
    void volumeRemoved(const QString& what, const cordon::gui::ErrorInfo& error);
    void statsReady(const QString& id, const cordon::gui::StatsRow& stats);
    void inspectReady(const QString& name, const QString& json);
    void inspectFailed(const QString& name, const cordon::gui::ErrorInfo& error);
    void imagesReady(const QList<cordon::gui::ImageRow>& rows);
    void imagesFailed(const cordon::gui::ErrorInfo& error);
    void volumesReady(const QList<cordon::gui::VolumeRow>& rows);
    void volumesFailed(const cordon::gui::ErrorInfo& error);
    void logLines(const QString& id, const QStringList& lines);
    void logFailed(const QString& id, const cordon::gui::ErrorInfo& error);

  private:
    // Hands results to the GUI thread; cut when the controller dies.
    struct Relay {
        std::mutex mu;
        DockerController* target = nullptr;
        void post(std::function<void()> fn);
    };
    void run(std::function<void()> work);
    void post(std::function<void()> fn) { relay_->post(std::move(fn)); }
    QList<ContainerRow> containerRows(host::docker::Client& client);

    ClientFactory makeClient_;
    std::shared_ptr<Relay> relay_;
    QThreadPool pool_;
    int inFlight_ = 0;
    bool statsInFlight_ = false;
};

}  // namespace cordon::gui

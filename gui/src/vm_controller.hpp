#pragma once
// The VM as the window sees it. Every host-library call runs on a worker thread
// (the controller's own QThreadPool); results and progress come back to the GUI
// thread as queued calls, so the UI thread never blocks on libvirt, the agent or
// docker.sock. State changes arrive live from libvirt lifecycle events
// (DomainEvents) and from the guest agent's pushed events (events.watch through
// host::AgentEventWatcher: engine state, isolation, dockerd restarts); each one
// triggers a refresh at once. While the agent's event link is up the poll slows to
// once a minute; without it (older guest, VM stopped), and while the last look failed
// (libvirtd gone), it polls every 5 s (CORDON_GUI_POLL_MS overrides it). Every operation
// refreshes at once too.
#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QThreadPool>
#include <QTimer>
#include <functional>
#include <memory>
#include <mutex>

#include "agent_data.hpp"
#include "backend.hpp"
#include "docker_rows.hpp"
#include "domain_events.hpp"
#include "error_info.hpp"

namespace cordon::gui {

enum class VmState { unknown, unavailable, stopped, starting, running, stopping, crashed };
QString toText(VmState s);

class VmController : public QObject {
    Q_OBJECT
  public:
    explicit VmController(std::shared_ptr<Backend> backend, QObject* parent = nullptr);
    ~VmController() override;

    VmState state() const { return state_; }
    QString stateText() const;
    bool busy() const { return !operation_.isEmpty(); }
    QString operation() const { return operation_; }
    QString progressText() const { return progressText_; }
    int progressPercent() const { return progressPercent_; }
    const ErrorInfo& lastError() const { return lastError_; }
    const Resources& resources() const { return resources_; }
    const IsolationInfo& isolation() const { return isolation_; }
    const ErrorInfo& isolationError() const { return isolationError_; }
    const host::VmStatus& lastStatus() const { return status_; }
    bool statusKnown() const { return statusKnown_; }
    bool vmRunning() const { return state_ == VmState::running; }

    bool canStart() const;
    bool canStop() const;
    bool canRestart() const;
    bool canSwitchIsolation() const;  // VM running, agent answering, nothing else running
    // A start (or a restart's start phase) in progress can be cancelled.
    bool canCancel() const;

    QString dockerHostLine() const;
    QString uri() const;
    Backend& backend() { return *backend_; }

    void setPollInterval(int ms);
    int pollInterval() const { return poll_.interval(); }
    // Whether a worker call (operation or poll) is still in flight.
    bool idle() const;
    // Whether libvirt lifecycle events for the VM's connection arrive.
    bool eventsActive() const;
    // libvirt lifecycle events received for the VM so far.
    quint64 domainEventCount() const { return domainEventCount_; }
    // Whether the guest agent's event link (events.watch) is up.
    bool agentEventsActive() const { return agentEventsLinked_; }
    quint64 agentEventCount() const { return agentEventCount_; }

  public slots:
    void refresh();
    void start();
    void stop();
    void restart();
    // Cancels the start in progress: the host library destroys what it started.
    void cancelStart();
    // Asks the guest to switch isolation. Without confirmed, a switch that would
    // stop running containers emits confirmationRequired instead.
    void switchIsolation(bool enabled, bool confirmed);
    void refreshContainers();
    void refreshAudit();
    void fetchLog(const QString& source);  // "agent", "engine", "console", "hostagent"
    void dismissError();

  signals:
    void changed();  // state, busy, progress, resources or isolation changed
    void progress(const QString& line, int percent);
    void errorChanged(const cordon::gui::ErrorInfo& error);
    void operationFinished(const QString& operation, bool ok);
    void confirmationRequired(bool enabled, const QStringList& running, const QString& message);
    void isolationSwitched(const QString& summary);
    void containersReady(const QList<cordon::gui::ContainerRow>& rows);
    void containersFailed(const cordon::gui::ErrorInfo& error);
    void auditReady(const QList<cordon::gui::AuditEntry>& entries);
    void auditFailed(const cordon::gui::ErrorInfo& error);
    void logReady(const QString& source, const QString& text);
    void logFailed(const QString& source, const cordon::gui::ErrorInfo& error);
    // A guest agent event ("engine", "isolation", "dockerd_restart", "snapshot", ...).
    void agentEvent(const QString& type, const QString& detail);
    void agentEventsLinkChanged(bool up, const QString& detail);

  private:
    // Hands results from worker threads to the GUI thread; cut when the controller dies.
    struct Relay {
        std::mutex mu;
        VmController* target = nullptr;
        void post(std::function<void()> fn);
    };
    void run(std::function<void()> work);
    void post(std::function<void()> fn) { relay_->post(std::move(fn)); }
    void beginOperation(const QString& op, VmState shownState, const QString& firstLine);
    void finishOperation(const QString& op, const ErrorInfo& error);
    void onProgress(const QString& line);
    void onStep(const host::ProgressStep& step);
    host::StartOptions startOptions();
    void onAgentLink(bool up, const QString& detail);
    int wantedPollMs() const;
    void updatePollInterval();
    void setError(const ErrorInfo& e, bool fromStatus);
    void applyStatus(const host::VmStatus& st, const nlohmann::json& isoStatus,
                     const ErrorInfo& isoError);
    void recomputeState();
    void onDomainEvent(const QString& domain, bool lifecycle);

    std::shared_ptr<Backend> backend_;
    std::shared_ptr<Relay> relay_;
    QThreadPool pool_;
    QTimer poll_;
    int inFlight_ = 0;
    bool pollInFlight_ = false;
    bool refreshAgain_ = false;
    std::unique_ptr<DomainEvents> events_;
    std::unique_ptr<host::AgentEventWatcher> agentEvents_;
    bool agentEventsLinked_ = false;
    quint64 agentEventCount_ = 0;
    quint64 domainEventCount_ = 0;
    int basePollMs_ = 5000;
    host::CancelToken startCancel_;
    bool cancelRequested_ = false;

    VmState state_ = VmState::unknown;
    VmState domainState_ = VmState::unknown;  // from the last status
    QString operation_;
    QString restartPhase_;  // "stop", then "start"
    QString progressText_;
    int progressPercent_ = 0;
    ErrorInfo lastError_;
    bool errorFromStatus_ = false;
    host::VmStatus status_;
    bool statusKnown_ = false;
    Resources resources_;
    IsolationInfo isolation_;
    ErrorInfo isolationError_;
};

// The step of a start or stop that a progress line reports, as a percentage.
int progressPercentFor(const QString& operation, const QString& line, int previous);

}  // namespace cordon::gui

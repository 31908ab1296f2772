#include "vm_controller.hpp"

#include <QRegularExpression>
#include <QtConcurrent/QtConcurrentRun>

#include "cordon/host/host_error.hpp"
#include "cordon/log.hpp"

using nlohmann::json;

namespace cordon::gui {

QString toText(VmState s) {
    switch (s) {
        case VmState::unknown:
            return QStringLiteral("Checking…");
        case VmState::unavailable:
            return QStringLiteral("Error");
        case VmState::stopped:
            return QStringLiteral("Stopped");
        case VmState::starting:
            return QStringLiteral("Starting");
        case VmState::running:
            return QStringLiteral("Running");
        case VmState::stopping:
            return QStringLiteral("Stopping");
        case VmState::crashed:
            return QStringLiteral("Error");
    }
    return {};
}

int progressPercentFor(const QString& op, const QString& line, int previous) {
    int p = previous;
    if (op == QLatin1String("stop")) {
        if (line.startsWith(QLatin1String("asking the guest agent")))
            p = 30;
        else if (line.startsWith(QLatin1String("sending an ACPI")))
            p = 60;
        else if (line.contains(QLatin1String("destroying")))
            p = 85;
        return std::max(p, previous);
    }
    if (line.startsWith(QLatin1String("connected to")))
        p = 5;
    else if (line.startsWith(QLatin1String("image ")))
        p = 10;
    else if (line.startsWith(QLatin1String("probing whether KVM")))
        p = 15;
    else if (line.startsWith(QLatin1String("accelerator:")))
        p = 25;
    else if (line.startsWith(QLatin1String("creating the data disk")))
        p = 30;
    else if (line.startsWith(QLatin1String("defined the libvirt domain")) ||
             line.startsWith(QLatin1String("defining the libvirt domain")) ||
             line.startsWith(QLatin1String("redefining the libvirt domain")) ||
             (line.startsWith(QLatin1String("the libvirt domain")) &&
              line.endsWith(QLatin1String("is up to date"))))
        p = 40;
    else if (line.startsWith(QLatin1String("VM started")))
        p = 50;
    else if (line.startsWith(QLatin1String("host agent started")))
        p = 60;
    else if (line.startsWith(QLatin1String("still waiting for the guest agent"))) {
        static const QRegularExpression secs(QStringLiteral("\\((\\d+) s\\)"));
        auto m = secs.match(line);
        const int s = m.hasMatch() ? m.captured(1).toInt() : 0;
        p = 60 + std::min(35, s / 2);
    } else if (line.startsWith(QLatin1String("guest agent answered"))) {
        p = 100;
    }
    return std::max(p, previous);
}

void VmController::Relay::post(std::function<void()> fn) {
    std::lock_guard lock(mu);
    if (!target)
        return;
    QMetaObject::invokeMethod(target, std::move(fn), Qt::QueuedConnection);
}

VmController::VmController(std::shared_ptr<Backend> backend, QObject* parent)
    : QObject(parent), backend_(std::move(backend)), relay_(std::make_shared<Relay>()) {
    relay_->target = this;
    pool_.setMaxThreadCount(4);
    int interval = 5000;
    if (const char* env = std::getenv("CORDON_GUI_POLL_MS")) {
        bool ok = false;
        int v = QString::fromLocal8Bit(env).toInt(&ok);
        if (ok && v >= 100)
            interval = v;
    }
    basePollMs_ = interval;
    poll_.setInterval(interval);
    connect(&poll_, &QTimer::timeout, this, &VmController::refresh);
    if (!std::getenv("CORDON_GUI_NO_EVENTS")) {
        events_ = std::make_unique<DomainEvents>(
            [relay = relay_, this](const std::string& domain, bool lifecycle) {
                relay->post([this, d = QString::fromStdString(domain), lifecycle] {
                    onDomainEvent(d, lifecycle);
                });
            });
    }
    if (!std::getenv("CORDON_GUI_NO_EVENTS")) {
        try {
            agentEvents_ = backend_->watchAgentEvents(
                [relay = relay_, this](const host::AgentEvent& ev) {
                    QString detail;
                    if (ev.type == "engine")
                        detail = QString::fromStdString(ev.data.value("state", ""));
                    else if (ev.type == "isolation" && ev.data.contains("enabled") &&
                             ev.data["enabled"].is_boolean())
                        detail = ev.data["enabled"].get<bool>() ? QStringLiteral("on")
                                                                : QStringLiteral("off");
                    relay->post([this, t = QString::fromStdString(ev.type), detail] {
                        ++agentEventCount_;
                        emit agentEvent(t, detail);
                        if (t != QLatin1String("heartbeat"))
                            refresh();
                    });
                },
                [relay = relay_, this](bool up, const std::string& detail) {
                    relay->post([this, up, d = QString::fromStdString(detail)] {
                        onAgentLink(up, d);
                    });
                });
        } catch (const std::exception& e) {
            log::warn("gui", "no guest agent events: {}", e.what());
        }
    }
    poll_.start();
    QMetaObject::invokeMethod(this, &VmController::refresh, Qt::QueuedConnection);
}

void VmController::onAgentLink(bool up, const QString& detail) {
    agentEventsLinked_ = up;
    log::debug("gui", "guest agent events {}{}", up ? "up" : "down",
               detail.isEmpty() ? "" : ": " + detail.toStdString());
    updatePollInterval();
    emit agentEventsLinkChanged(up, detail);
}

// Pushed events replace the fast poll; the slow one still catches what has no event. But
// while the last look failed (libvirtd gone, the connection refused) nothing pushes its
// return: the poll stays fast, so the window finds libvirtd back by itself.
int VmController::wantedPollMs() const {
    const bool slow = agentEventsLinked_ && domainState_ != VmState::unavailable;
    return slow ? std::max(basePollMs_, 60000) : basePollMs_;
}

void VmController::updatePollInterval() {
    if (poll_.interval() != wantedPollMs())
        poll_.setInterval(wantedPollMs());  // restarts the timer: only on a change
}

VmController::~VmController() {
    poll_.stop();
    agentEvents_.reset();  // joins its thread; its last posts are cut with the relay below
    {
        std::lock_guard lock(relay_->mu);
        relay_->target = nullptr;
    }
    // A start in progress is cancelled (the host library undoes it); others finish.
    startCancel_.cancel();
    pool_.waitForDone();
    events_.reset();  // after the workers: a poll may be connecting it
}

bool VmController::eventsActive() const {
    return events_ && events_->watching(backend_->uri());
}

void VmController::onDomainEvent(const QString& domain, bool lifecycle) {
    if (lifecycle && domain != QString::fromStdString(status_.name) && statusKnown_)
        return;
    if (lifecycle)
        ++domainEventCount_;
    log::debug("gui", "libvirt event: {} {}", domain.toStdString(),
               lifecycle ? "lifecycle" : "connection closed");
    refresh();
}

void VmController::setPollInterval(int ms) {
    basePollMs_ = ms;
    poll_.setInterval(wantedPollMs());  // restarts the timer
}

bool VmController::idle() const {
    return inFlight_ == 0;
}

void VmController::run(std::function<void()> work) {
    ++inFlight_;
    auto relay = relay_;
    (void)QtConcurrent::run(&pool_, [this, work = std::move(work), relay] {
        work();  // catches its own exceptions and posts its results
        relay->post([this] { --inFlight_; });
    });
}

QString VmController::stateText() const {
    if (state_ == VmState::running && statusKnown_ &&
        status_.domain.state == host::DomainState::paused) {
        return QStringLiteral("Paused");
    }
    return toText(state_);
}

bool VmController::canStart() const {
    if (busy())
        return false;
    return state_ == VmState::stopped || state_ == VmState::crashed;
}

bool VmController::canStop() const {
    if (busy())
        return false;
    return state_ == VmState::running || state_ == VmState::crashed;
}

bool VmController::canRestart() const {
    return !busy() && state_ == VmState::running;
}

bool VmController::canCancel() const {
    if (cancelRequested_)
        return false;
    return operation_ == QLatin1String("start") ||
           (operation_ == QLatin1String("restart") && restartPhase_ == QLatin1String("start"));
}

void VmController::cancelStart() {
    if (!canCancel())
        return;
    cancelRequested_ = true;
    startCancel_.cancel();
    progressText_ = QStringLiteral("cancelling the start…");
    recomputeState();
    emit progress(progressText_, progressPercent_);
}

host::StartOptions VmController::startOptions() {
    startCancel_ = host::CancelToken{};
    cancelRequested_ = false;
    host::StartOptions o;
    o.cancel = startCancel_;
    o.on_step = [this](const host::ProgressStep& st) {
        post([this, st] { onStep(st); });
    };
    return o;
}

void VmController::onStep(const host::ProgressStep& st) {
    if (operation_.isEmpty())
        return;
    progressPercent_ = std::max(progressPercent_, static_cast<int>(st.fraction * 100.0 + 0.5));
    if (!st.message.empty() && !cancelRequested_)
        progressText_ = QString::fromStdString(st.message);
    recomputeState();
    emit progress(progressText_, progressPercent_);
}

bool VmController::canSwitchIsolation() const {
    return !busy() && state_ == VmState::running && status_.agent_reachable;
}

QString VmController::uri() const {
    return QString::fromStdString(backend_->uri());
}

QString VmController::dockerHostLine() const {
    try {
        return QStringLiteral("export DOCKER_HOST=unix://") +
               QString::fromStdString(backend_->paths().docker_socket.string());
    } catch (const std::exception& e) {
        // A bad vm_name setting: the status error says what to fix.
        return QStringLiteral("# no Docker socket: ") +
               QString::fromLocal8Bit(e.what()).section(QLatin1Char('\n'), 0, 0);
    }
}

void VmController::setError(const ErrorInfo& e, bool fromStatus) {
    lastError_ = e;
    errorFromStatus_ = fromStatus && !e.empty();
    if (!e.empty())
        log::warn("gui", "{}", e.text().toStdString());
    emit errorChanged(lastError_);
}

void VmController::dismissError() {
    if (lastError_.empty())
        return;
    setError({}, false);
    recomputeState();
}

void VmController::recomputeState() {
    VmState s = domainState_;
    if (operation_ == QLatin1String("start"))
        s = VmState::starting;
    else if (operation_ == QLatin1String("stop"))
        s = VmState::stopping;
    else if (operation_ == QLatin1String("restart"))
        s = restartPhase_ == QLatin1String("start") ? VmState::starting : VmState::stopping;
    else if (operation_ == QLatin1String("isolation"))
        s = VmState::running;
    state_ = s;
    emit changed();
}

}  // namespace cordon::gui

namespace cordon::gui {

void VmController::applyStatus(const host::VmStatus& st, const json& isoStatus,
                               const ErrorInfo& isoError) {
    status_ = st;
    statusKnown_ = true;
    switch (st.domain.state) {
        case host::DomainState::running:
        case host::DomainState::paused:
        case host::DomainState::suspended:
            domainState_ = VmState::running;
            break;
        case host::DomainState::shutting_down:
            domainState_ = VmState::stopping;
            break;
        case host::DomainState::crashed:
            domainState_ = VmState::crashed;
            break;
        case host::DomainState::shutoff:
        case host::DomainState::other:
            domainState_ = VmState::stopped;
            break;
    }
    if (domainState_ == VmState::running && st.agent_reachable) {
        resources_ = parseInfo(st.agent_info);
    } else {
        resources_ = Resources{};
    }
    if (domainState_ == VmState::running && !isoStatus.is_null()) {
        isolation_ = parseIsolationStatus(isoStatus);
    } else if (domainState_ != VmState::running) {
        isolation_ = IsolationInfo{};
    }
    isolationError_ = isoError;
    if (errorFromStatus_)
        setError({}, false);
    if (domainState_ == VmState::crashed && lastError_.empty()) {
        setError(
            ErrorInfo::make(
                QStringLiteral("the VM crashed (%1)").arg(QString::fromStdString(st.domain.reason)),
                QString::fromStdString(st.name + " on " + st.uri),
                QStringLiteral("read the console log on the Logs page, then Stop and Start it")),
            true);
    }
    recomputeState();
    updatePollInterval();
}

void VmController::refresh() {
    if (pollInFlight_) {
        refreshAgain_ = true;  // an event during a poll must not be lost
        return;
    }
    pollInFlight_ = true;
    run([this] {
        try {
            host::VmStatus st = backend_->status();
            if (events_) {
                const std::string uri = backend_->uri();
                if (!events_->watching(uri) && !events_->watch(uri)) {
                    log::debug("gui", "no libvirt events: {}", events_->error());
                }
            }
            json iso;
            ErrorInfo isoError;
            if (st.agent_reachable) {
                try {
                    iso = backend_->callAgent("isolation", json::object(),
                                              std::chrono::seconds(5));
                } catch (...) {
                    isoError = ErrorInfo::fromCurrentException();
                }
            }
            post([this, st = std::move(st), iso = std::move(iso), isoError] {
                pollInFlight_ = false;
                applyStatus(st, iso, isoError);
                if (std::exchange(refreshAgain_, false))
                    refresh();
            });
        } catch (...) {
            ErrorInfo e = ErrorInfo::fromCurrentException();
            post([this, e] {
                pollInFlight_ = false;
                statusKnown_ = false;
                domainState_ = VmState::unavailable;
                resources_ = Resources{};
                isolation_ = IsolationInfo{};
                // An operation's own error stays on screen until it is dismissed.
                if (lastError_.empty() || errorFromStatus_)
                    setError(e, true);
                recomputeState();
                updatePollInterval();
                if (std::exchange(refreshAgain_, false))
                    refresh();
            });
        }
    });
}

void VmController::beginOperation(const QString& op, VmState, const QString& firstLine) {
    operation_ = op;
    restartPhase_ = op == QLatin1String("restart") ? QStringLiteral("stop") : QString();
    progressPercent_ = 0;
    progressText_ = firstLine;
    if (!lastError_.empty())
        setError({}, false);
    recomputeState();
    emit progress(progressText_, progressPercent_);
}

void VmController::onProgress(const QString& line) {
    const QString op = operation_ == QLatin1String("restart") ? restartPhase_ : operation_;
    if (operation_ == QLatin1String("restart") && line == QLatin1String("starting")) {
        restartPhase_ = QStringLiteral("start");
        progressPercent_ = 0;
    } else {
        progressPercent_ = progressPercentFor(op, line, progressPercent_);
    }
    progressText_ = line;
    recomputeState();
    emit progress(line, progressPercent_);
}

void VmController::finishOperation(const QString& op, const ErrorInfo& error) {
    operation_.clear();
    cancelRequested_ = false;
    restartPhase_.clear();
    progressPercent_ = error.empty() ? 100 : progressPercent_;
    if (error.kind == QLatin1String("cancelled")) {
        // Asked for: not an error to dismiss, just what happened.
        progressText_ = error.what;
    } else if (!error.empty()) {
        progressText_ = QStringLiteral("%1 failed").arg(op);
        setError(error, false);
    } else {
        progressText_.clear();
    }
    recomputeState();
    emit operationFinished(op, error.empty());
    if (error.kind == QLatin1String("cancelled"))
        emit progress(progressText_, progressPercent_);
    refresh();
}

void VmController::start() {
    if (!canStart())
        return;
    beginOperation(QStringLiteral("start"), VmState::starting, QStringLiteral("starting the VM"));
    run([this, opt = startOptions()] {
        ErrorInfo err;
        try {
            host::StartResult r = backend_->startWith(opt);
            if (r.already_running)
                post([this] { onProgress(QStringLiteral("the VM was already running")); });
        } catch (...) {
            err = ErrorInfo::fromCurrentException();
        }
        post([this, err] { finishOperation(QStringLiteral("start"), err); });
    });
}

void VmController::stop() {
    if (!canStop())
        return;
    beginOperation(QStringLiteral("stop"), VmState::stopping, QStringLiteral("stopping the VM"));
    run([this] {
        ErrorInfo err;
        try {
            host::StopResult r = backend_->stop([this](const std::string& line) {
                post([this, l = QString::fromStdString(line)] { onProgress(l); });
            });
            post([this, m = QString::fromStdString(r.method), s = r.seconds] {
                onProgress(QStringLiteral("stopped (%1, %2 s)").arg(m).arg(s, 0, 'f', 1));
            });
        } catch (...) {
            err = ErrorInfo::fromCurrentException();
        }
        post([this, err] { finishOperation(QStringLiteral("stop"), err); });
    });
}

void VmController::restart() {
    if (!canRestart())
        return;
    beginOperation(QStringLiteral("restart"), VmState::stopping, QStringLiteral("stopping the VM"));
    run([this, opt = startOptions()] {
        ErrorInfo err;
        auto progressFn = [this](const std::string& line) {
            post([this, l = QString::fromStdString(line)] { onProgress(l); });
        };
        try {
            backend_->stop(progressFn);
            post([this] { onProgress(QStringLiteral("starting")); });
            backend_->startWith(opt);
        } catch (...) {
            err = ErrorInfo::fromCurrentException();
        }
        post([this, err] { finishOperation(QStringLiteral("restart"), err); });
    });
}

void VmController::switchIsolation(bool enabled, bool confirmed) {
    if (!canSwitchIsolation())
        return;
    beginOperation(QStringLiteral("isolation"), VmState::running,
                   enabled ? QStringLiteral("turning Enhanced Container Isolation on")
                           : QStringLiteral("turning Enhanced Container Isolation off"));
    run([this, enabled, confirmed] {
        // What the controller learned, handed to the GUI thread at the end.
        ErrorInfo err;
        QStringList running;
        QString confirmMessage;
        QString summary;
        try {
            if (!confirmed) {
                // Ask the engine first, so the dialog can name the containers.
                try {
                    for (const auto& c : backend_->containers()) {
                        if (c.state == "running")
                            running << QString::fromStdString(c.name);
                    }
                } catch (const std::exception& e) {
                    log::info("gui",
                              "cannot list containers before the switch ({}); the agent checks",
                              e.what());
                }
            }
            if (!running.isEmpty()) {
                confirmMessage =
                    QStringLiteral("Switching stops %1 running container(s).").arg(running.size());
            } else {
                json r = backend_->setIsolation(enabled, confirmed,
                                                [this](const host::ProgressStep& st) {
                                                    post([this, st] { onStep(st); });
                                                });
                SwitchSummary s = parseSwitchResult(r);
                if (!s.changed) {
                    summary =
                        QStringLiteral("Isolation was already %1.").arg(s.enabled ? "on" : "off");
                } else {
                    summary =
                        QStringLiteral(
                            "Isolation is now %1: %2 container(s) stopped, %3 image(s) and %4 "
                            "volume(s) moved.")
                            .arg(s.enabled ? "on" : "off")
                            .arg(s.stoppedContainers.size())
                            .arg(s.imagesMoved)
                            .arg(s.volumesMoved);
                }
            }
        } catch (const host::HostError& e) {
            const std::string what = e.failure();
            const bool needsConfirm = e.kind() == host::ErrorKind::confirmation_required ||
                                      what.find("confirm") != std::string::npos;
            if (!confirmed && needsConfirm) {
                confirmMessage = QString::fromStdString(what);
            } else {
                err = ErrorInfo::fromException(e);
            }
        } catch (...) {
            err = ErrorInfo::fromCurrentException();
        }
        post([this, enabled, err, running, confirmMessage, summary] {
            finishOperation(QStringLiteral("isolation"), err);
            if (!confirmMessage.isEmpty())
                emit confirmationRequired(enabled, running, confirmMessage);
            if (!summary.isEmpty())
                emit isolationSwitched(summary);
            refreshContainers();
        });
    });
}

void VmController::refreshContainers() {
    run([this] {
        try {
            QList<ContainerRow> rows;
            for (const auto& c : backend_->containers()) rows.push_back(toRow(c));
            post([this, rows] { emit containersReady(rows); });
        } catch (...) {
            ErrorInfo e = ErrorInfo::fromCurrentException();
            post([this, e] { emit containersFailed(e); });
        }
    });
}

void VmController::refreshAudit() {
    run([this] {
        try {
            json r = backend_->callAgent("audit", {{"limit", 500}}, std::chrono::seconds(10));
            QList<AuditEntry> entries = parseAudit(r);
            post([this, entries] { emit auditReady(entries); });
        } catch (...) {
            ErrorInfo e = ErrorInfo::fromCurrentException();
            post([this, e] { emit auditFailed(e); });
        }
    });
}

void VmController::fetchLog(const QString& source) {
    run([this, source] {
        try {
            QString text;
            if (source == QLatin1String("console") || source == QLatin1String("hostagent")) {
                text = QString::fromStdString(backend_->readLog(source.toStdString(), 256 * 1024));
            } else {
                // The agent's supervisor names services: engine = dockerd.
                const std::string service =
                    source == QLatin1String("engine") ? "dockerd" : source.toStdString();
                json r = backend_->callAgent("logs", {{"service", service}, {"lines", 500}},
                                             std::chrono::seconds(10));
                text = parseLogs(r);
            }
            post([this, source, text] { emit logReady(source, text); });
        } catch (...) {
            ErrorInfo e = ErrorInfo::fromCurrentException();
            post([this, source, e] { emit logFailed(source, e); });
        }
    });
}

}  // namespace cordon::gui

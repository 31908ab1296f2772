#include "docker_controller.hpp"

#include <QtConcurrent/QtConcurrentRun>

#include "cordon/log.hpp"

namespace cordon::gui {

QString toText(ContainerAction a) {
    switch (a) {
        case ContainerAction::start:
            return QStringLiteral("start");
        case ContainerAction::stop:
            return QStringLiteral("stop");
        case ContainerAction::restart:
            return QStringLiteral("restart");
        case ContainerAction::remove:
            return QStringLiteral("delete");
    }
    return {};
}

void DockerController::Relay::post(std::function<void()> fn) {
    std::lock_guard lock(mu);
    if (target)
        QMetaObject::invokeMethod(target, std::move(fn), Qt::QueuedConnection);
}

DockerController::DockerController(ClientFactory makeClient, QObject* parent)
    : QObject(parent), makeClient_(std::move(makeClient)), relay_(std::make_shared<Relay>()) {
    relay_->target = this;
    pool_.setMaxThreadCount(3);
}

DockerController::~DockerController() {
    {
        std::lock_guard lock(relay_->mu);
        relay_->target = nullptr;
    }
    pool_.waitForDone();
}

void DockerController::run(std::function<void()> work) {
    ++inFlight_;
    (void)QtConcurrent::run(&pool_, [this, work = std::move(work), relay = relay_] {
        work();  // catches its own exceptions and posts its results
        relay->post([this] { --inFlight_; });
    });
}

QList<ContainerRow> DockerController::containerRows(host::docker::Client& client) {
    QList<ContainerRow> rows;
    for (const auto& c : client.list_containers(true)) rows.push_back(toRow(c));
    return rows;
}

void DockerController::act(ContainerAction action, const QString& id, const QString& name) {
    const QString what = toText(action) + QLatin1Char(' ') + name;
    run([this, action, id = id.toStdString(), what] {
        ErrorInfo err;
        try {
            host::docker::Client client = makeClient_();
            switch (action) {
                case ContainerAction::start:
                    client.start_container(id);
                    break;
                case ContainerAction::stop:
                    client.stop_container(id);
                    break;
                case ContainerAction::restart:
                    client.restart_container(id);
                    break;
                case ContainerAction::remove:
                    client.remove_container(id, true);
                    break;
            }
        } catch (...) {
            err = ErrorInfo::fromCurrentException();
        }
        post([this, what, err] { emit actionFinished(what, err); });
    });
}

void DockerController::fetchStats(const QStringList& ids) {
    if (statsInFlight_ || ids.isEmpty())
        return;
    statsInFlight_ = true;
    run([this, ids] {
        try {
            host::docker::Client client = makeClient_();
            for (const QString& id : ids) {
                try {
                    StatsRow s = toRow(client.container_stats(id.toStdString()));
                    post([this, id, s] { emit statsReady(id, s); });
                } catch (const std::exception& e) {
                    // A container that stopped meanwhile, or stats refused: left blank.
                    log::debug("gui", "no stats for {}: {}", id.toStdString(), e.what());
                }
            }
        } catch (const std::exception& e) {
            log::debug("gui", "no stats: {}", e.what());
        }
        post([this] { statsInFlight_ = false; });
    });
}

void DockerController::inspect(const QString& id, const QString& name) {
    run([this, id = id.toStdString(), name] {
        try {
            const std::string text = makeClient_().inspect_container(id).dump(2);
            post([this, name, t = QString::fromStdString(text)] { emit inspectReady(name, t); });
        } catch (...) {
            ErrorInfo e = ErrorInfo::fromCurrentException();
            post([this, name, e] { emit inspectFailed(name, e); });
        }
    });
}

void DockerController::refreshImages() {
    run([this] {
        try {
            host::docker::Client client = makeClient_();
            const auto images = client.list_images();
            QList<ImageRow> rows = imageRows(images, containerRows(client));
            post([this, rows] { emit imagesReady(rows); });
        } catch (...) {
            ErrorInfo e = ErrorInfo::fromCurrentException();
            post([this, e] { emit imagesFailed(e); });
        }
    });
}

void DockerController::refreshVolumes() {
    run([this] {
        try {
            host::docker::Client client = makeClient_();
            const auto volumes = client.list_volumes();
            QList<VolumeRow> rows = volumeRows(volumes, containerRows(client));
            post([this, rows] { emit volumesReady(rows); });
        } catch (...) {
            ErrorInfo e = ErrorInfo::fromCurrentException();
            post([this, e] { emit volumesFailed(e); });
        }
    });
}

void DockerController::removeImage(const QString& id, const QString& label) {
    run([this, id = id.toStdString(), what = QStringLiteral("delete image ") + label] {
        ErrorInfo err;
        try {
            makeClient_().remove_image(id, false);
        } catch (...) {
            err = ErrorInfo::fromCurrentException();
        }
        post([this, what, err] { emit imageRemoved(what, err); });
    });
}

void DockerController::removeVolume(const QString& name) {
    run([this, n = name.toStdString(), what = QStringLiteral("delete volume ") + name] {
        ErrorInfo err;
        try {
            makeClient_().remove_volume(n, false);
        } catch (...) {
            err = ErrorInfo::fromCurrentException();
        }
        post([this, what, err] { emit volumeRemoved(what, err); });
    });
}

void DockerController::pollLogs(std::shared_ptr<host::docker::LogTail> tail) {
    run([this, tail] {
        const QString id = QString::fromStdString(tail->container_id());
        try {
            host::docker::Client client = makeClient_();
            QStringList lines;
            for (const auto& l : tail->next(client)) lines << QString::fromStdString(l);
            post([this, id, lines] { emit logLines(id, lines); });
        } catch (...) {
            ErrorInfo e = ErrorInfo::fromCurrentException();
            post([this, id, e] { emit logFailed(id, e); });
        }
    });
}

}  // namespace cordon::gui

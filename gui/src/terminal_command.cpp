#include "terminal_command.hpp"

#include <QProcess>
#include <QProcessEnvironment>
#include <QStandardPaths>

namespace cordon::gui {

TerminalLaunch planTerminal(const QString& dockerSocket, const QString& containerId,
                            const QString& terminal, const QString& docker) {
    TerminalLaunch t;
    t.dockerHost = QStringLiteral("unix://") + dockerSocket;
    const QString shortId = containerId.left(12);
    t.copyCommand =
        QStringLiteral("DOCKER_HOST=%1 docker exec -it %2 sh").arg(t.dockerHost, shortId);
    if (terminal.isEmpty())
        t.missing = QStringLiteral("no terminal emulator (x-terminal-emulator) was found");
    else if (docker.isEmpty())
        t.missing = QStringLiteral("the docker CLI was not found on PATH");
    t.launchable = t.missing.isEmpty();
    if (t.launchable) {
        t.program = terminal;
        t.arguments = {QStringLiteral("-e"),  docker,      QStringLiteral("exec"),
                       QStringLiteral("-it"), containerId, QStringLiteral("sh")};
    }
    return t;
}

TerminalLaunch planTerminalOnPath(const QString& dockerSocket, const QString& containerId) {
    return planTerminal(dockerSocket, containerId,
                        QStandardPaths::findExecutable(QStringLiteral("x-terminal-emulator")),
                        QStandardPaths::findExecutable(QStringLiteral("docker")));
}

bool launchTerminal(const TerminalLaunch& plan) {
    if (!plan.launchable)
        return false;
    QProcess p;
    p.setProgram(plan.program);
    p.setArguments(plan.arguments);
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("DOCKER_HOST"), plan.dockerHost);
    p.setProcessEnvironment(env);
    return p.startDetached();
}

}  // namespace cordon::gui

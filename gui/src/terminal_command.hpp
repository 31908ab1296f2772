#pragma once
// "Open terminal" on a container: the user's terminal emulator (Debian's
// x-terminal-emulator) running `docker exec -it ID sh` against the VM's
// docker.sock, or, without one (or without the docker CLI), the command to copy.
#include <QString>
#include <QStringList>

namespace cordon::gui {

struct TerminalLaunch {
    bool launchable = false;  // a terminal emulator and the docker CLI were found
    QString program;          // the terminal emulator
    QStringList arguments;    // -e docker exec -it ID sh
    QString dockerHost;       // unix:///...docker.sock, for DOCKER_HOST
    QString copyCommand;      // the same as one shell line, to copy
    QString missing;          // what was not found, when not launchable
};

// terminal and docker: the executables found ("" when not found).
TerminalLaunch planTerminal(const QString& dockerSocket, const QString& containerId,
                            const QString& terminal, const QString& docker);
// planTerminal with x-terminal-emulator and docker looked up on PATH.
TerminalLaunch planTerminalOnPath(const QString& dockerSocket, const QString& containerId);
// Starts it detached with DOCKER_HOST set; false when it could not be started.
bool launchTerminal(const TerminalLaunch& plan);

}  // namespace cordon::gui

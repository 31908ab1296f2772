// cordon-desktop: the Cordon desktop app.
#include <QApplication>
#include <QCommandLineParser>
#include <memory>

#include "app_icon.hpp"
#include "cordon/host/settings.hpp"
#include "cordon/host/virt.hpp"
#include "cordon/log.hpp"
#include "main_window.hpp"

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("cordon"));
    QApplication::setApplicationName(QStringLiteral("cordon-desktop"));
    QApplication::setApplicationDisplayName(QStringLiteral("Cordon"));
    QApplication::setApplicationVersion(QStringLiteral("0.1.0"));
    QApplication::setDesktopFileName(QStringLiteral("cordon-desktop"));
    QApplication::setWindowIcon(cordon::gui::appIcon());
    // Closing the window keeps the app in the tray when there is one.
    QApplication::setQuitOnLastWindowClosed(!QSystemTrayIcon::isSystemTrayAvailable());

    QCommandLineParser cli;
    cli.setApplicationDescription(QStringLiteral("Start, stop and watch the Cordon VM."));
    cli.addHelpOption();
    cli.addVersionOption();
    QCommandLineOption connectOpt(
        QStringList{QStringLiteral("c"), QStringLiteral("connect")},
        QStringLiteral("libvirt URI for this session (overrides the connect_uri setting)."),
        QStringLiteral("uri"));
    QCommandLineOption hiddenOpt(QStringLiteral("hidden"),
                                 QStringLiteral("Start in the tray, without the window."));
    QCommandLineOption logOpt(QStringLiteral("log-level"),
                              QStringLiteral("debug, info, warn or error."),
                              QStringLiteral("level"), QStringLiteral("info"));
    cli.addOption(connectOpt);
    cli.addOption(hiddenOpt);
    cli.addOption(logOpt);
    cli.process(app);

    cordon::log::Level level;
    if (!cordon::log::parse_level(cli.value(logOpt).toStdString(), level)) {
        qCritical("cordon-desktop: --log-level must be debug, info, warn or error");
        return 2;
    }
    cordon::log::set_level(level);

    auto* settings = new cordon::gui::SettingsStore(cordon::host::SettingsFiles::standard(), &app);
    cordon::gui::HostBackend::Options options;
    options.uri_override = cli.value(connectOpt).toStdString();
    auto backend = std::make_shared<cordon::gui::HostBackend>(cordon::host::make_libvirt(),
                                                              settings->effective(), options);
    auto* vm = new cordon::gui::VmController(backend, &app);
    auto window = std::make_unique<cordon::gui::MainWindow>(vm, settings);
    if (!cli.isSet(hiddenOpt) || !window->tray())
        window->show();
    QObject::connect(&app, &QApplication::aboutToQuit, window.get(),
                     &cordon::gui::MainWindow::saveWindowState);
    const int rc = QApplication::exec();
    window.reset();  // first: its Docker workers call the controller's back end
    delete vm;       // waits for a running operation to finish
    return rc;
}

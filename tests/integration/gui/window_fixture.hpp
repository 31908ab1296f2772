#pragma once
// Builds the real window over the real host library (HostBackend, libvirt),
// as cordon-desktop's main() does, for the GUI suites.
#include <QAbstractButton>
#include <QLabel>
#include <memory>

#include "cordon/host/virt.hpp"
#include "gui_test_main.hpp"
#include "main_window.hpp"

namespace cordon::gui::test {

// A stand-in for cordon-hostagent that stays up (the host library watches that
// its agent lives), writes its pid file like the real one, and ends on SIGTERM,
// so stop_hostagent() finds and stops it. Returns its path (set CORDON_HOSTAGENT to it).
inline std::filesystem::path fakeHostAgent(const std::filesystem::path& dir) {
    auto p = dir / "cordon-hostagent";
    writeFile(p,
              "#!/bin/sh\n"
              "while [ $# -gt 0 ]; do [ \"$1\" = --pid-file ] && echo $$ > \"$2\"; shift; done\n"
              "trap 'kill $! 2>/dev/null; exit 0' TERM INT\n"
              "sleep 60 &\n"
              "wait $!\n");
    std::filesystem::permissions(p, std::filesystem::perms::owner_all);
    return p;
}

struct Window {
    std::unique_ptr<SettingsStore> settings;
    std::shared_ptr<HostBackend> backend;
    std::unique_ptr<VmController> vm;
    std::unique_ptr<MainWindow> window;

    Window(const std::string& uri, host::SettingsFiles files,
           std::chrono::seconds readyTimeout = std::chrono::seconds(600)) {
        settings = std::make_unique<SettingsStore>(std::move(files));
        HostBackend::Options o;
        o.uri_override = uri;
        o.ready_timeout = readyTimeout;
        backend = std::make_shared<HostBackend>(host::make_libvirt(), settings->effective(), o);
        vm = std::make_unique<VmController>(backend);
        window = std::make_unique<MainWindow>(vm.get(), settings.get());
        window->show();
    }
    ~Window() {
        window.reset();
        vm.reset();  // waits for worker calls
    }

    template <typename T = QWidget>
    T* find(const char* name) const {
        return window->findChild<T*>(QLatin1String(name));
    }
    // Labels of the Overview's error banner are looked up inside it (every page has a banner).
    QString text(const char* name) const {
        QLabel* l = nullptr;
        if (QLatin1String(name).startsWith(QLatin1String("error"))) {
            auto* banner = find<QWidget>("errorBanner");
            l = banner ? banner->findChild<QLabel*>(QLatin1String(name)) : nullptr;
        } else {
            l = find<QLabel>(name);
        }
        return l ? l->text() : QStringLiteral("<no widget %1>").arg(QLatin1String(name));
    }
    bool enabled(const char* name) const {
        auto* w = find<QWidget>(name);
        return w && w->isEnabled();
    }
    bool activate() const {
        window->activateWindow();
        return QTest::qWaitForWindowActive(window.get());
    }
    bool visible(const char* name) const {
        auto* w = find<QWidget>(name);
        return w && w->isVisible();
    }
    bool waitState(const QString& s, int ms = 15000) const {
        return waitFor([&] { return vm->stateText() == s && text("stateLabel") == s; }, ms);
    }
    bool waitIdle(int ms) const {
        return waitFor([&] { return vm->idle() && !vm->busy(); }, ms);
    }
};

}  // namespace cordon::gui::test

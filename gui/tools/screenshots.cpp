// cordon-desktop-screenshots: grabs each main screen of the real window over the
// real host library into a folder (docs/screenshots/), for the states that need
// no VM image: libvirt unreachable, stopped with admin locks, starting (libvirt's
// test driver), settings, containers and logs. Run it under Xvfb, once per scale:
//   xvfb-run -a -s "-screen 0 2600x1800x24" env QT_QPA_PLATFORM=xcb QT_SCALE_FACTOR=2
//       build/gui/cordon-desktop-screenshots docs/screenshots   (one command line)
// Files are named <screen>@<scale>x.png.
#include <QApplication>
#include <QDir>
#include <QPainter>
#include <QPixmap>
#include <QPushButton>
#include <QTest>
#include <QTimer>
#include <filesystem>
#include <fstream>

#include "app_icon.hpp"
#include "cordon/host/virt.hpp"
#include "main_window.hpp"

namespace fs = std::filesystem;
using namespace cordon::gui;

namespace {

struct Scene {
    std::unique_ptr<SettingsStore> settings;
    std::shared_ptr<HostBackend> backend;
    std::unique_ptr<VmController> vm;
    std::unique_ptr<MainWindow> window;
    Scene(const std::string& uri, const fs::path& dir,
          std::chrono::seconds ready = std::chrono::seconds(600)) {
        settings = std::make_unique<SettingsStore>(
            cordon::host::SettingsFiles{dir / "user.json", dir / "admin.json"});
        HostBackend::Options o;
        o.uri_override = uri;
        o.ready_timeout = ready;
        backend =
            std::make_shared<HostBackend>(cordon::host::make_libvirt(), settings->effective(), o);
        vm = std::make_unique<VmController>(backend);
        window = std::make_unique<MainWindow>(vm.get(), settings.get());
        window->show();
    }
    bool wait(const std::function<bool()>& pred, int ms = 20000) {
        return QTest::qWaitFor(pred, ms);
    }
};

void write(const fs::path& p, const std::string& s) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << s;
}

QString g_out;
int g_failed = 0;

void shoot(MainWindow* w, const QString& name) {
    QTest::qWait(300);  // let layouts settle
    const qreal dpr = w->devicePixelRatioF();
    const QString file = QStringLiteral("%1/%2@%3x.png").arg(g_out, name).arg(qRound(dpr));
    if (!w->grab().save(file)) {
        qWarning("cannot write %s", qPrintable(file));
        ++g_failed;
    } else {
        qInfo("wrote %s", qPrintable(file));
    }
}

}  // namespace

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("cordon-screenshots"));
    if (argc < 2) {
        qCritical("usage: cordon-desktop-screenshots OUTPUT_FOLDER");
        return 2;
    }
    g_out = QString::fromLocal8Bit(argv[1]);
    QDir().mkpath(g_out);
    char tmpl[] = "/tmp/cordon-shots-XXXXXX";
    const fs::path tmp = ::mkdtemp(tmpl);
    setenv("CORDON_STATE_DIR", (tmp / "state").c_str(), 1);
    setenv("CORDON_RUNTIME_DIR", (tmp / "rt").c_str(), 1);
    setenv("CORDON_CACHE_DIR", (tmp / "cache").c_str(), 1);
    // A stand-in host agent that stays up (see tests/integration/gui/window_fixture.hpp).
    write(tmp / "cordon-hostagent",
          "#!/bin/sh\n"
          "while [ $# -gt 0 ]; do [ \"$1\" = --pid-file ] && echo $$ > \"$2\"; shift; done\n"
          "trap 'kill $! 2>/dev/null; exit 0' TERM INT\nsleep 60 &\nwait $!\n");
    fs::permissions(tmp / "cordon-hostagent", fs::perms::owner_all);
    setenv("CORDON_HOSTAGENT", (tmp / "cordon-hostagent").c_str(), 1);
    setenv("XDG_CONFIG_HOME", (tmp / "config").c_str(), 1);

    {  // libvirtd unreachable
        Scene s("qemu+unix:///system?socket=" + (tmp / "no-libvirtd.sock").string(), tmp / "a");
        s.wait([&] { return s.vm->stateText() == "Error"; });
        shoot(s.window.get(), "overview-libvirt-down");
        s.window->showPage(MainWindow::ContainersTab);
        s.wait([&] { return !s.vm->busy() && s.vm->idle(); });
        shoot(s.window.get(), "containers-vm-not-running");
    }
    {  // stopped, with an administrator's locks
        const fs::path d = tmp / "b";
        write(d / "admin.json",
              R"({"isolation": true, "memory_mib": 4096, "locked": ["isolation", "memory_mib"]})");
        write(d / "user.json", R"({"accelerator": "tcg", "cpus": 4})");
        Scene s("test:///default", d);
        s.wait([&] { return s.vm->stateText() == "Stopped"; });
        shoot(s.window.get(), "overview-stopped-locked");
        s.window->showPage(MainWindow::SettingsTab);
        shoot(s.window.get(), "settings-locked");
    }
    {  // starting, with progress (libvirt's test driver runs the domain; no agent answers)
        const fs::path d = tmp / "c";
        write(d / "image/vmlinuz", "x");
        write(d / "image/initrd.img", "x");
        write(
            d / "image/manifest.json",
            R"({"kernel": "vmlinuz", "initrd": "initrd.img", "cmdline": "console=ttyS0", "version": "test"})");
        write(d / "user.json",
              "{\"accelerator\": \"tcg\", \"image_dir\": \"" + (d / "image").string() + "\"}");
        auto hv = cordon::host::make_libvirt();
        auto keep = hv->connect("test:///default");
        Scene s("test:///default", d, std::chrono::seconds(3));
        s.wait([&] { return s.vm->stateText() == "Stopped"; });
        s.vm->start();
        s.wait([&] { return s.vm->progressText().contains("waiting for the guest agent"); });
        shoot(s.window.get(), "overview-starting");
        s.wait([&] { return !s.vm->busy(); }, 30000);
        s.wait([&] { return s.vm->stateText() == "Running"; });
        shoot(s.window.get(), "overview-agent-not-answering");
        s.window->showPage(MainWindow::LogsTab);
        s.wait([&] { return s.vm->idle(); });
        shoot(s.window.get(), "logs-agent-unreachable");
        s.window->showPage(MainWindow::AuditTab);
        s.wait([&] { return s.vm->idle(); });
        shoot(s.window.get(), "audit-agent-unreachable");
        s.vm->stop();
        s.wait([&] { return !s.vm->busy() && s.vm->stateText() == "Stopped"; }, 60000);
    }
    {  // The tray icon in each state, at 16, 22, 32 and 48 px (times the scale).
        const int dpr = qRound(qApp->devicePixelRatio());
        const QList<VmState> states{VmState::stopped, VmState::starting, VmState::running,
                                    VmState::unavailable};
        const QList<int> sizes{16, 22, 32, 48};
        QPixmap strip(dpr * (16 + 22 + 32 + 48 + 5 * 8), dpr * (states.size() * 56 + 8));
        strip.fill(Qt::white);
        QPainter p(&strip);
        int y = 8 * dpr;
        for (VmState st : states) {
            int x = 8 * dpr;
            for (int sz : sizes) {
                p.drawPixmap(x, y, stateIcon(st).pixmap(sz * dpr, sz * dpr));
                x += (sz + 8) * dpr;
            }
            y += 56 * dpr;
        }
        p.end();
        const QString file = QStringLiteral("%1/tray-icons@%2x.png").arg(g_out).arg(dpr);
        if (strip.save(file))
            qInfo("wrote %s", qPrintable(file));
        else
            ++g_failed;
    }
    std::error_code ec;
    fs::remove_all(tmp, ec);
    return g_failed == 0 ? 0 : 1;
}

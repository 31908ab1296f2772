// The real window over the real host library, against failing back ends:
// libvirtd unreachable, the VM image missing, a guest agent that never answers
// (libvirt's test driver runs the domain), admin-locked settings.
#include <gtest/gtest.h>
#include <signal.h>

#include <QAction>
#include <QCheckBox>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTimer>
#include <QWindow>

#include "cordon/host/process.hpp"
#include "window_fixture.hpp"

using namespace cordon::gui;
using namespace cordon::gui::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

cordon::host::SettingsFiles files(const fs::path& dir) {
    return {dir / "user.json", dir / "admin.json"};
}

std::string deadLibvirtUri(const fs::path& dir) {
    return "qemu+unix:///system?socket=" + (dir / "no-libvirtd.sock").string();
}

// A folder that looks like a VM image to the host library (the test driver boots nothing).
fs::path fakeImage(const fs::path& dir) {
    fs::path img = dir / "image";
    writeFile(img / "vmlinuz", "not a kernel");
    writeFile(img / "initrd.img", "not an initrd");
    writeFile(
        img / "manifest.json",
        R"({"kernel": "vmlinuz", "initrd": "initrd.img", "cmdline": "console=ttyS0", "version": "test"})");
    return img;
}

void useFakeHostAgent(const fs::path& dir) {
    setenv("CORDON_HOSTAGENT", fakeHostAgent(dir).c_str(), 1);
}

}  // namespace

TEST(Window, LibvirtDownShowsTheErrorAndTheFix) {
    auto dir = tempDir("libvirt-down");
    Window w(deadLibvirtUri(dir), files(dir));
    ASSERT_TRUE(w.waitState("Error")) << w.text("stateLabel").toStdString();
    EXPECT_TRUE(w.visible("errorBanner"));
    EXPECT_TRUE(w.text("errorWhat").contains("cannot connect to libvirt"))
        << w.text("errorWhat").toStdString();
    EXPECT_TRUE(w.text("errorSubject").contains("no-libvirtd.sock"))
        << w.text("errorSubject").toStdString();
    EXPECT_TRUE(w.text("errorHint").startsWith("Fix: ")) << w.text("errorHint").toStdString();
    EXPECT_TRUE(w.text("errorHint").contains("libvirtd")) << w.text("errorHint").toStdString();
    EXPECT_FALSE(w.enabled("startButton"));
    EXPECT_FALSE(w.enabled("stopButton"));
    EXPECT_FALSE(w.enabled("restartButton"));
    EXPECT_FALSE(w.find<QAction>("startAction")->isEnabled());
    EXPECT_TRUE(w.window->windowTitle().contains("Error"));
    // The Containers page says why it is empty and what to do.
    w.window->showPage(MainWindow::ContainersTab);
    ASSERT_TRUE(waitFor([&] { return w.find<QWidget>("containersError")->isVisible(); }, 10000));
    auto* cerr = w.find<QWidget>("containersError");
    EXPECT_TRUE(cerr->findChild<QLabel*>("errorHint")->text().contains("start the VM"));
    // F5 tries again and still shows the error (no crash, no stale state).
    ASSERT_TRUE(w.activate());
    QSignalSpy spy(w.find<QAction>("refreshAction"), &QAction::triggered);
    QTest::keyClick(w.window.get(), Qt::Key_F5);
    EXPECT_EQ(spy.count(), 1);
    EXPECT_TRUE(w.waitIdle(10000));
    EXPECT_EQ(w.text("stateLabel"), "Error");
}

TEST(Window, ImageMissingStartFailsReadably) {
    auto dir = tempDir("image-missing");
    useFakeHostAgent(dir);
    writeFile(dir / "user.json",
              json{{"accelerator", "tcg"}, {"image_dir", (dir / "no-image").string()}}.dump());
    Window w("test:///default", files(dir));
    ASSERT_TRUE(w.waitState("Stopped"))
        << w.text("stateLabel").toStdString() << " " << w.vm->lastError().text().toStdString();
    EXPECT_TRUE(w.enabled("startButton"));
    EXPECT_FALSE(w.enabled("stopButton"));
    EXPECT_FALSE(w.enabled("restartButton"));
    EXPECT_FALSE(w.visible("errorBanner"));

    QSignalSpy finished(w.vm.get(), &VmController::operationFinished);
    QTest::mouseClick(w.find<QPushButton>("startButton"), Qt::LeftButton);
    ASSERT_TRUE(waitFor([&] { return finished.count() == 1; }, 20000));
    EXPECT_FALSE(finished.at(0).at(1).toBool());
    EXPECT_TRUE(w.visible("errorBanner"));
    EXPECT_TRUE(w.text("errorWhat").contains("image") || w.text("errorWhat").contains("manifest"))
        << w.text("errorWhat").toStdString();
    EXPECT_TRUE(w.text("errorSubject").contains("no-image"))
        << w.text("errorSubject").toStdString();
    EXPECT_TRUE(w.text("errorHint").startsWith("Fix: ")) << w.text("errorHint").toStdString();
    ASSERT_TRUE(w.waitIdle(10000));
    EXPECT_EQ(w.text("stateLabel"), "Stopped");
    EXPECT_TRUE(w.enabled("startButton"));  // try again after building the image
    EXPECT_FALSE(w.enabled("stopButton"));
    // The error stays until dismissed.
    // The Overview's own Dismiss (the Containers, Images and Volumes pages have one too).
    auto* dismiss =
        w.find<QWidget>("errorBanner")->findChild<QPushButton*>(QStringLiteral("errorDismiss"));
    ASSERT_NE(dismiss, nullptr);
    QTest::mouseClick(dismiss, Qt::LeftButton);
    EXPECT_FALSE(w.visible("errorBanner"));
}

TEST(Window, StartRunsOnAWorkerWithProgressAndTimesOutReadably) {
    auto dir = tempDir("start-progress");
    useFakeHostAgent(dir);
    writeFile(dir / "user.json",
              json{{"accelerator", "tcg"}, {"image_dir", fakeImage(dir).string()}}.dump());
    // The test driver forgets its domains when its last connection closes: hold one.
    auto hv = cordon::host::make_libvirt();
    auto keep = hv->connect("test:///default");
    Window w("test:///default", files(dir), std::chrono::seconds(4));
    ASSERT_TRUE(w.waitState("Stopped"));

    // Ticks of a 20 ms timer while the start runs prove the UI thread stays free.
    int ticks = 0;
    QTimer ticker;
    QObject::connect(&ticker, &QTimer::timeout, [&] { ++ticks; });
    ticker.start(20);
    QSignalSpy finished(w.vm.get(), &VmController::operationFinished);
    QSignalSpy progress(w.vm.get(), &VmController::progress);
    QTest::mouseClick(w.find<QPushButton>("startButton"), Qt::LeftButton);
    EXPECT_EQ(w.text("stateLabel"), "Starting");
    EXPECT_FALSE(w.enabled("startButton"));
    EXPECT_FALSE(w.enabled("stopButton"));
    EXPECT_FALSE(w.enabled("isolationToggle"));
    EXPECT_TRUE(w.visible("progressBar"));
    ASSERT_TRUE(waitFor(
        [&] { return w.text("progressLabel").contains("waiting for the guest agent"); }, 20000))
        << w.text("progressLabel").toStdString();
    EXPECT_GE(w.find<QProgressBar>("progressBar")->value(), 60);
    ASSERT_TRUE(waitFor([&] { return finished.count() == 1; }, 30000));
    ticker.stop();
    EXPECT_GT(ticks, 25) << "the UI thread was blocked during the start";
    EXPECT_GE(progress.count(), 5);
    EXPECT_TRUE(w.text("errorWhat").contains("did not answer within 4 s"))
        << w.text("errorWhat").toStdString();
    EXPECT_TRUE(w.text("errorHint").contains("console")) << w.text("errorHint").toStdString();

    // The domain runs (in the test driver) while its agent does not answer.
    ASSERT_TRUE(w.waitState("Running"));
    EXPECT_TRUE(w.text("agentLabel").startsWith("not answering"))
        << w.text("agentLabel").toStdString();
    EXPECT_TRUE(w.enabled("stopButton"));
    EXPECT_TRUE(w.enabled("restartButton"));
    EXPECT_FALSE(w.enabled("startButton"));
    EXPECT_FALSE(w.enabled("isolationToggle"));  // the guest must answer to switch

    // Stop falls back from the agent to ACPI, which the test driver obeys.
    QTest::mouseClick(w.find<QPushButton>("stopButton"), Qt::LeftButton);
    EXPECT_EQ(w.text("stateLabel"), "Stopping");
    ASSERT_TRUE(waitFor([&] { return finished.count() == 2; }, 60000));
    EXPECT_TRUE(finished.at(1).at(1).toBool()) << w.vm->lastError().text().toStdString();
    ASSERT_TRUE(w.waitState("Stopped"));
    EXPECT_TRUE(w.enabled("startButton"));
}

TEST(Window, AdminLockedIsolationIsDisabledWithTheReason) {
    auto dir = tempDir("locked");
    const fs::path admin = dir / "admin-settings.json";
    writeFile(admin, R"({"isolation": true, "cpus": 4, "locked": ["isolation", "cpus"]})");
    setenv("CORDON_ADMIN_SETTINGS", admin.c_str(), 1);
    auto standard = cordon::host::SettingsFiles::standard();
    unsetenv("CORDON_ADMIN_SETTINGS");
    ASSERT_EQ(standard.admin, admin);
    Window w(deadLibvirtUri(dir), standard);
    auto* toggle = w.find<QCheckBox>("isolationToggle");
    EXPECT_FALSE(toggle->isEnabled());
    EXPECT_TRUE(toggle->isChecked());
    EXPECT_TRUE(w.visible("isolationLockReason"));
    const QString reason = w.text("isolationLockReason");
    EXPECT_TRUE(reason.contains("Read-only: isolation is locked on by the administrator"))
        << reason.toStdString();
    EXPECT_TRUE(reason.contains(QString::fromStdString(admin.string()))) << reason.toStdString();
    // A click on the disabled toggle changes nothing.
    toggle->click();
    EXPECT_TRUE(toggle->isChecked());
    EXPECT_FALSE(fs::exists(standard.user));
    // The Settings page shows locked keys read-only with the reason.
    w.window->showPage(MainWindow::SettingsTab);
    EXPECT_FALSE(w.enabled("setting_cpus"));
    EXPECT_EQ(w.find<QSpinBox>("setting_cpus")->value(), 4);
    EXPECT_TRUE(
        w.text("settingNote_cpus").contains("Read-only: cpus is locked to 4 by the administrator"))
        << w.text("settingNote_cpus").toStdString();
    EXPECT_TRUE(w.enabled("setting_memory_mib"));
}

TEST(Window, IsolationToggleWhileStoppedSavesTheSetting) {
    auto dir = tempDir("toggle-stopped");
    Window w("test:///default", files(dir));
    ASSERT_TRUE(w.waitState("Stopped"));
    auto* toggle = w.find<QCheckBox>("isolationToggle");
    ASSERT_TRUE(toggle->isEnabled());
    ASSERT_TRUE(toggle->isChecked());
    toggle->click();
    EXPECT_FALSE(toggle->isChecked());
    EXPECT_EQ(json::parse(readFile(dir / "user.json"))["isolation"], false);
    EXPECT_TRUE(w.text("isolationState").contains("setting: off"))
        << w.text("isolationState").toStdString();
}

TEST(Window, SettingsAreValidatedBeforeTheyAreApplied) {
    auto dir = tempDir("settings-page");
    Window w(deadLibvirtUri(dir), files(dir));
    w.window->showPage(MainWindow::SettingsTab);
    auto* uri = w.find<QLineEdit>("setting_connect_uri");
    auto* cpus = w.find<QSpinBox>("setting_cpus");
    cpus->setValue(3);
    uri->setText("no scheme here");
    QTest::mouseClick(w.find<QPushButton>("settingsApply"), Qt::LeftButton);
    EXPECT_TRUE(w.text("settingsProblems").contains("connect_uri: must be a libvirt URI"))
        << w.text("settingsProblems").toStdString();
    EXPECT_FALSE(fs::exists(dir / "user.json"));  // all or nothing: cpus not written either
    uri->setText("test:///default");
    QTest::mouseClick(w.find<QPushButton>("settingsApply"), Qt::LeftButton);
    EXPECT_EQ(w.text("settingsProblems"), "Applied.");
    auto doc = json::parse(readFile(dir / "user.json"));
    EXPECT_EQ(doc["cpus"], 3);
    EXPECT_EQ(doc["connect_uri"], "test:///default");
    EXPECT_EQ(w.text("settingNote_cpus"), "Value from: yours");
}

TEST(Window, ShortcutsAndRememberedGeometry) {
    auto dir = tempDir("geometry");
    QSize saved;
    {
        Window w(deadLibvirtUri(dir), files(dir));
        EXPECT_EQ(w.find<QAction>("quitAction")->shortcut(),
                  QKeySequence(QStringLiteral("Ctrl+Q")));
        EXPECT_EQ(w.find<QAction>("restartAction")->shortcut(),
                  QKeySequence(QStringLiteral("Ctrl+R")));
        EXPECT_EQ(w.find<QAction>("refreshAction")->shortcut(), QKeySequence(Qt::Key_F5));
        ASSERT_TRUE(w.activate());
        QTest::keyClick(w.window.get(), Qt::Key_5, Qt::ControlModifier);  // Audit
        EXPECT_EQ(w.window->tabs()->currentIndex(), int(MainWindow::AuditTab));
        w.window->resize(1000, 777);
        QTest::qWait(50);
        saved = w.window->size();
        w.window->close();
    }
    Window again(deadLibvirtUri(dir), files(dir));
    EXPECT_EQ(again.window->size(), saved);
    EXPECT_EQ(again.window->tabs()->currentIndex(), int(MainWindow::AuditTab));
}

// Run at QT_SCALE_FACTOR=1 and 2 (two ctest entries): nothing is clipped and
// the window fits a 1280x800 screen at its default size.
TEST(Window, LayoutIsSaneAtThisScale) {
    auto dir = tempDir("scale");
    QSettings().clear();
    Window w(deadLibvirtUri(dir), files(dir));
    ASSERT_TRUE(w.waitState("Error"));
    const QSize min = w.window->minimumSizeHint();
    EXPECT_LE(min.width(), 1280) << "scale " << w.window->devicePixelRatio();
    EXPECT_LE(min.height(), 800) << "scale " << w.window->devicePixelRatio();
    for (int page = 0; page < w.window->tabs()->count(); ++page) {
        w.window->showPage(MainWindow::Page(page));
        QTest::qWait(20);
        for (auto* b : w.window->tabs()->currentWidget()->findChildren<QPushButton*>()) {
            if (!b->isVisible())
                continue;
            EXPECT_GE(b->width(), b->minimumSizeHint().width()) << b->objectName().toStdString();
        }
    }
}

// A hand-edited settings file the host library refuses (a bad VM name): the
// Overview says so, with the file and the fix, and the built-in defaults apply.
TEST(Window, BrokenSettingsFileIsShownNotFatal) {
    auto dir = tempDir("bad-vm-name");
    writeFile(dir / "user.json", R"({"vm_name": "no spaces/allowed"})");
    Window w("test:///default", files(dir));
    ASSERT_FALSE(w.settings->loaded());
    auto* banner = w.find<QWidget>("settingsErrorBanner");
    ASSERT_NE(banner, nullptr);
    EXPECT_TRUE(banner->isVisible());
    const QString what = banner->findChild<QLabel*>("errorWhat")->text();
    const QString subject = banner->findChild<QLabel*>("errorSubject")->text();
    EXPECT_TRUE(what.contains("vm_name") || subject.contains("vm_name")) << what.toStdString();
    EXPECT_TRUE((what + subject).contains(QString::fromStdString((dir / "user.json").string())))
        << what.toStdString() << " / " << subject.toStdString();
    EXPECT_TRUE(w.waitState("Stopped"));  // the defaults still work
    EXPECT_FALSE(w.enabled("isolationToggle"));
    // Fixing the file and pressing F5 clears it.
    writeFile(dir / "user.json", R"({"vm_name": "cordon"})");
    ASSERT_TRUE(w.activate());
    QTest::keyClick(w.window.get(), Qt::Key_F5);
    EXPECT_TRUE(w.settings->loaded());
    EXPECT_FALSE(banner->isVisible());
}

// Cancel during a start that waits for the guest: the domain the start created is
// destroyed, the host agent stopped, and the window shows what happened (no error).
TEST(Window, CancelStopsAStartThatWaitsAndLeavesNothingRunning) {
    auto dir = tempDir("start-cancel");
    useFakeHostAgent(dir);
    writeFile(dir / "user.json",
              json{{"accelerator", "tcg"}, {"image_dir", fakeImage(dir).string()}}.dump());
    auto hv = cordon::host::make_libvirt();
    auto keep = hv->connect("test:///default");
    Window w("test:///default", files(dir), std::chrono::seconds(120));
    ASSERT_TRUE(w.waitState("Stopped"));
    EXPECT_FALSE(w.visible("cancelButton"));

    QSignalSpy finished(w.vm.get(), &VmController::operationFinished);
    QTest::mouseClick(w.find<QPushButton>("startButton"), Qt::LeftButton);
    ASSERT_TRUE(waitFor(
        [&] { return w.text("progressLabel").contains("waiting for the guest agent"); }, 20000))
        << w.text("progressLabel").toStdString();
    ASSERT_TRUE(w.visible("cancelButton"));
    const auto pidFile = w.backend->paths().hostagent_pid;
    ASSERT_TRUE(waitFor([&] { return fs::exists(pidFile); }, 5000));
    const pid_t agent = std::stoi(readFile(pidFile));
    ASSERT_TRUE(cordon::host::process_alive(agent, ""));

    const auto t0 = std::chrono::steady_clock::now();
    QTest::mouseClick(w.find<QPushButton>("cancelButton"), Qt::LeftButton);
    ASSERT_TRUE(waitFor([&] { return finished.count() == 1; }, 15000));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cerr << "[measure] GUI cancel -> start finished: " << s << " s\n";
    EXPECT_FALSE(finished.at(0).at(1).toBool());
    EXPECT_TRUE(w.vm->lastError().empty())
        << "a cancel is not an error to dismiss: " << w.vm->lastError().text().toStdString();
    EXPECT_TRUE(w.text("progressLabel").contains("cancelled"))
        << w.text("progressLabel").toStdString();
    ASSERT_TRUE(w.waitState("Stopped")) << "the cancelled start's domain is not running";
    EXPECT_TRUE(waitFor([&] { return !cordon::host::process_alive(agent, ""); }, 10000))
        << "the host agent of the cancelled start is still running";
    EXPECT_FALSE(w.visible("cancelButton"));
    EXPECT_TRUE(w.enabled("startButton"));
}

// The real window over a real VM (one VM for the suite, started by the first case
// and stopped by the last): start it, read its resources, switch Enhanced Container
// Isolation off and on and see container root's uid mapping change, list containers
// through docker.sock, read the audit log; restart libvirtd under it and see the
// window reconnect by itself; stop it. Skips only when the VM image is not built.
// CORDON_SCREENSHOT_DIR=<folder> also saves the running screens there.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTimer>
#include <chrono>
#include <iostream>
#include <thread>

#include "../../integration/gui/window_fixture.hpp"
#include "cordon/host/paths.hpp"
#include "cordon/subprocess.hpp"

using namespace cordon::gui;
using namespace cordon::gui::test;
namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

fs::path imageDir() {
    if (const char* d = std::getenv("CORDON_IMAGE_DIR"); d && *d)
        return d;
    return CORDON_GUI_E2E_IMAGE_DIR;
}

void shoot(MainWindow* w, const char* name) {
    const char* dir = std::getenv("CORDON_SCREENSHOT_DIR");
    if (!dir)
        return;
    QTest::qWait(300);
    w->grab().save(QStringLiteral("%1/%2@%3x.png")
                       .arg(QLatin1String(dir), QLatin1String(name))
                       .arg(qRound(w->devicePixelRatioF())));
}

// Clicks the isolation toggle and confirms the dialog if running containers make the guest ask.
bool switchIsolation(Window& w, bool wanted) {
    QSignalSpy switched(w.vm.get(), &VmController::isolationSwitched);
    QSignalSpy finished(w.vm.get(), &VmController::operationFinished);
    auto* toggle = w.find<QCheckBox>("isolationToggle");
    if (!waitFor([&] { return toggle->isEnabled(); }, 30000))
        return false;
    if (toggle->isChecked() == wanted)
        return true;
    toggle->click();
    return waitFor(
               [&] {
                   if (auto* box = w.window->findChild<QMessageBox*>("isolationConfirmDialog");
                       box && box->isVisible()) {
                       box->findChild<QPushButton*>("confirmSwitch")->click();
                   }
                   return switched.count() > 0 ||
                          (finished.count() > 0 && !w.vm->lastError().empty());
               },
               15 * 60 * 1000) &&
           switched.count() > 0;
}

}  // namespace

// The suite's VM and window: built before the first case, removed after the last.
class GuiE2E : public ::testing::Test {
  protected:
    struct Suite {
        fs::path dir;
        std::string uri;
        std::unique_ptr<Window> window;
        ~Suite() {
            window.reset();  // waits for the controller's worker calls
            // Whatever happened, the suite's domain is removed (its disk lives in the temp
            // folder).
            try {
                auto hv = cordon::host::make_libvirt();
                SettingsStore store({dir / "user.json", dir / "admin.json"});
                cordon::host::Settings s = store.effective();
                if (!uri.empty())
                    s.connect_uri = uri;
                cordon::host::Vm(*hv, s).remove(true);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "cleanup: %s\n", e.what());
            }
        }
    };
    static inline std::unique_ptr<Suite> suite_;

    static void TearDownTestSuite() { suite_.reset(); }

    void SetUp() override {
        const fs::path image = imageDir();
        if (!fs::exists(image / "manifest.json")) {
            GTEST_SKIP() << "the VM image is not built: no manifest.json in " << image
                         << " (build it with `cmake --build build --target cordon_image`, or set "
                            "CORDON_IMAGE_DIR)";
        }
        if (suite_)
            return;
        auto s = std::make_unique<Suite>();
        s->dir = tempDir("e2e");
#ifdef CORDON_GUI_E2E_HOSTAGENT
        if (!std::getenv("CORDON_HOSTAGENT"))
            setenv("CORDON_HOSTAGENT", CORDON_GUI_E2E_HOSTAGENT, 1);
#endif
        const char* accel = std::getenv("CORDON_E2E_ACCEL");
        writeFile(s->dir / "user.json",
                  json{{"vm_name", "cordon-gui-e2e-" + std::to_string(::getpid())},
                       {"accelerator", accel ? accel : "tcg"},
                       {"image_dir", image.string()}}
                      .dump());
        const char* uri = std::getenv("CORDON_E2E_URI");
        s->uri = uri ? uri : "";
        s->window = std::make_unique<Window>(
            s->uri, cordon::host::SettingsFiles{s->dir / "user.json", s->dir / "admin.json"});
        suite_ = std::move(s);
    }

    Window& window() {
        return *suite_->window;
    }

    // The VM runs and its agent answers; started through the controller when a case runs
    // alone (the first case starts it through the window's button).
    ::testing::AssertionResult vmRunning() {
        Window& w = window();
        if (!waitFor([&] { return w.vm->statusKnown() && !w.vm->busy(); }, 30000))
            return ::testing::AssertionFailure() << w.vm->lastError().text().toStdString();
        if (w.vm->state() != VmState::running) {
            QSignalSpy finished(w.vm.get(), &VmController::operationFinished);
            w.vm->start();
            if (!waitFor([&] { return finished.count() > 0; }, 700 * 1000))
                return ::testing::AssertionFailure() << "the start did not finish";
            if (!finished.at(0).at(1).toBool())
                return ::testing::AssertionFailure()
                       << "start: " << w.vm->lastError().text().toStdString();
        }
        if (!waitFor(
                [&] {
                    return w.vm->state() == VmState::running && w.vm->lastStatus().agent_reachable;
                },
                120000))
            return ::testing::AssertionFailure()
                   << "the guest agent does not answer: " << w.text("agentLabel").toStdString();
        return ::testing::AssertionSuccess();
    }
};

TEST_F(GuiE2E, StartSwitchIsolationSeeTheUidMapChange) {
    Window& w = window();

    ASSERT_TRUE(waitFor([&] { return w.vm->statusKnown() && !w.vm->busy(); }, 30000))
        << w.vm->lastError().text().toStdString();

    // Start.
    QSignalSpy finished(w.vm.get(), &VmController::operationFinished);
    if (w.vm->state() != VmState::running) {
        ASSERT_TRUE(w.enabled("startButton")) << w.text("stateLabel").toStdString();
        QTest::mouseClick(w.find<QPushButton>("startButton"), Qt::LeftButton);
        EXPECT_EQ(w.text("stateLabel"), "Starting");
        if (waitFor([&] { return w.text("progressLabel").contains("waiting for the guest agent"); },
                    600 * 1000)) {
            shoot(w.window.get(), "e2e-overview-starting");
        }
        ASSERT_TRUE(waitFor([&] { return finished.count() == 1; }, 700 * 1000));
        ASSERT_TRUE(finished.at(0).at(1).toBool()) << w.vm->lastError().text().toStdString();
    }
    ASSERT_TRUE(waitFor(
        [&] { return w.vm->state() == VmState::running && w.vm->lastStatus().agent_reachable; },
        60000))
        << w.text("agentLabel").toStdString();
    // The agent reports memory and uptime (CPUs only when it says so; else the configured count).
    EXPECT_FALSE(w.text("memoryLabel").contains("configured"))
        << w.text("memoryLabel").toStdString();
    EXPECT_NE(w.text("uptimeLabel"), "unknown");
    EXPECT_TRUE(w.enabled("stopButton"));
    EXPECT_FALSE(w.enabled("startButton"));

    shoot(w.window.get(), "e2e-overview-running");

    // Containers through the locked-down docker.sock (dockerd may come up after the agent).
    QSignalSpy containers(w.vm.get(), &VmController::containersReady);
    QSignalSpy containersFailed(w.vm.get(), &VmController::containersFailed);
    w.window->showPage(MainWindow::ContainersTab);
    ASSERT_TRUE(waitFor(
        [&] {
            if (containers.count() > 0)
                return true;
            if (containersFailed.count() > 0 && w.vm->idle()) {
                containersFailed.clear();
                QTest::qWait(2000);
                w.vm->refreshContainers();
            }
            return false;
        },
        120 * 1000))
        << "docker.sock: "
        << w.find<QWidget>("containersError")
               ->findChild<QLabel*>("errorWhat")
               ->text()
               .toStdString();
    shoot(w.window.get(), "e2e-containers");

    // The audit log answers, or says readably that the agent lacks it.
    QSignalSpy audit(w.vm.get(), &VmController::auditReady);
    QSignalSpy auditFailed(w.vm.get(), &VmController::auditFailed);
    w.window->showPage(MainWindow::AuditTab);
    ASSERT_TRUE(waitFor([&] { return audit.count() + auditFailed.count() > 0; }, 30000));
    if (auditFailed.count() > 0) {
        auto e = auditFailed.at(0).at(0).value<ErrorInfo>();
        EXPECT_FALSE(e.what.isEmpty());
        ADD_FAILURE() << "audit: " << e.text().toStdString();
    }
    shoot(w.window.get(), "e2e-audit");
    w.window->showPage(MainWindow::LogsTab);
    w.find<QComboBox>("logSource")->setCurrentIndex(1);  // the Docker engine (dockerd)
    EXPECT_TRUE(
        waitFor([&] { return !w.find<QPlainTextEdit>("logText")->toPlainText().isEmpty(); }, 30000))
        << "the engine's log did not arrive: "
        << w.find<QWidget>("logError")->findChild<QLabel*>("errorWhat")->text().toStdString();
    shoot(w.window.get(), "e2e-logs");

    // Isolation on (the default): container root is the remapped VM user.
    w.window->showPage(MainWindow::OverviewTab);
    ASSERT_TRUE(waitFor([&] { return w.vm->isolation().known; }, 30000))
        << "isolation: " << w.vm->isolationError().text().toStdString();
    ASSERT_TRUE(switchIsolation(w, true)) << w.vm->lastError().text().toStdString();
    ASSERT_TRUE(waitFor([&] { return w.text("rootMapLabel").contains("range"); }, 30000))
        << w.text("rootMapLabel").toStdString();
    const QString onText = w.text("rootMapLabel");
    shoot(w.window.get(), "e2e-overview-isolation-on");

    // Off: container root is VM root.
    ASSERT_TRUE(switchIsolation(w, false)) << w.vm->lastError().text().toStdString();
    ASSERT_TRUE(waitFor([&] { return w.text("rootMapLabel").contains("VM root (uid 0)"); }, 30000))
        << w.text("rootMapLabel").toStdString();
    EXPECT_NE(w.text("rootMapLabel"), onText);
    // And on again.
    ASSERT_TRUE(switchIsolation(w, true)) << w.vm->lastError().text().toStdString();
    ASSERT_TRUE(waitFor([&] { return w.text("rootMapLabel") == onText; }, 30000))
        << w.text("rootMapLabel").toStdString();
}

// libvirtd restarted while the VM runs (issue 9): the window shows that libvirt is gone,
// comes back to "Running" by itself with no error left on screen, and libvirt's lifecycle
// events arrive again (a suspend/resume after the restart shows as Paused, then Running).
TEST_F(GuiE2E, ReconnectsToARestartedLibvirtdByItself) {
    ASSERT_TRUE(vmRunning());
    Window& w = window();
    w.window->showPage(MainWindow::OverviewTab);
    ASSERT_TRUE(waitFor([&] { return w.vm->eventsActive(); }, 60000))
        << "no libvirt events even before the restart";
    ASSERT_TRUE(waitFor([&] { return w.vm->lastError().empty(); }, 30000))
        << w.vm->lastError().text().toStdString();
    const std::string domain = w.vm->lastStatus().name;
    std::cout << "[ info ] poll interval " << w.vm->pollInterval() << " ms, guest agent events "
              << (w.vm->agentEventsActive() ? "up" : "down") << "\n";

    auto pg = cordon::run({"pgrep", "-x", "libvirtd"}, 10s);
    ASSERT_TRUE(pg.ok()) << "libvirtd is not running: " << pg.out << pg.err;
    const pid_t pid = static_cast<pid_t>(std::stol(pg.out));
    // libvirtd comes back whatever happens below: other suites on this machine share it.
    struct Restarter {
        bool done = false;
        cordon::ProcessResult run() {
            done = true;
            return cordon::run({"bash", std::string(CORDON_SOURCE_DIR) + "/scripts/start-libvirtd"},
                               120s);
        }
        ~Restarter() {
            if (!done)
                run();
        }
    } restarter;
    using Clock = std::chrono::steady_clock;
    auto since = [](Clock::time_point t) {
        return std::chrono::duration<double>(Clock::now() - t).count();
    };
    // The worst case for a window that only polls: its poll timer has just restarted (with
    // the guest agent's events up it polls once a minute).
    w.vm->setPollInterval(5000);
    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    const auto killed = Clock::now();
    ASSERT_TRUE(waitFor([&] { return ::kill(pid, 0) != 0; }, 30000)) << "libvirtd did not exit";

    // (1) While libvirtd is gone the window says so (the connection's close event makes the
    // controller look at once).
    const bool shown = waitFor(
        [&] { return w.vm->state() == VmState::unavailable && w.visible("errorBanner"); }, 20000);
    const double shownAfter = since(killed);
    const QString downState = w.text("stateLabel");
    const QString downWhat = w.text("errorWhat");
    const bool eventsWhileDown = w.vm->eventsActive();

    auto up = restarter.run();
    ASSERT_TRUE(up.ok()) << "scripts/start-libvirtd: " << up.out << up.err;
    const auto restarted = Clock::now();
    const double downFor = std::chrono::duration<double>(restarted - killed).count();

    EXPECT_TRUE(shown) << "state " << w.text("stateLabel").toStdString() << ", error '"
                       << w.vm->lastError().text().toStdString() << "'";
    EXPECT_EQ(downState, "Error");
    EXPECT_TRUE(downWhat.contains("libvirt")) << downWhat.toStdString();
    EXPECT_FALSE(eventsWhileDown) << "events claimed to be watched while libvirtd was gone";

    // (2) Running again by itself: no click, no error left on screen.
    const bool recovered = waitFor(
        [&] {
            return w.vm->state() == VmState::running && w.text("stateLabel") == "Running" &&
                   w.vm->lastError().empty() && !w.visible("errorBanner");
        },
        120000);
    const double recoveredAfter = since(restarted);
    // (3) libvirt's lifecycle events again.
    const bool eventsBack = waitFor([&] { return w.vm->eventsActive(); }, 60000);
    const double eventsAfter = since(restarted);
    std::cout << "[ numbers ] libvirtd down " << downFor << " s; the window showed the error "
              << shownAfter << " s after the kill; Running again " << recoveredAfter
              << " s and events watched again " << eventsAfter << " s after libvirtd was back\n";
    ASSERT_TRUE(recovered) << "state " << w.text("stateLabel").toStdString() << ", error '"
                           << w.vm->lastError().text().toStdString() << "'";
    EXPECT_LT(recoveredAfter, 20.0) << "the window took too long to notice libvirtd was back";
    ASSERT_TRUE(eventsBack) << "libvirt events: " << w.vm->eventsActive();

    // A lifecycle event after the restart reaches the window: Paused, then Running.
    const quint64 events0 = w.vm->domainEventCount();
    auto virsh = [&](const char* verb) {
        std::vector<std::string> argv{"virsh"};
        if (!suite_->uri.empty())
            argv.insert(argv.end(), {"-c", suite_->uri});
        argv.insert(argv.end(), {verb, domain});
        return cordon::run(argv, 60s);
    };
    auto sus = virsh("suspend");
    ASSERT_TRUE(sus.ok()) << sus.out << sus.err;
    const auto suspended = Clock::now();
    const bool paused = waitFor(
        [&] { return w.vm->domainEventCount() > events0 && w.text("stateLabel") == "Paused"; },
        20000);
    const double pausedAfter = since(suspended);
    auto res = virsh("resume");
    ASSERT_TRUE(res.ok()) << res.out << res.err;
    const auto resumed = Clock::now();
    const bool running = waitFor(
        [&] { return w.vm->domainEventCount() > events0 + 1 && w.text("stateLabel") == "Running"; },
        20000);
    std::cout << "[ numbers ] after the restart: Paused shown " << pausedAfter
              << " s after virsh suspend, Running " << since(resumed) << " s after virsh resume ("
              << w.vm->domainEventCount() - events0 << " lifecycle event(s))\n";
    EXPECT_TRUE(paused) << "no lifecycle event for the suspend: "
                        << w.vm->domainEventCount() - events0 << " event(s), state "
                        << w.text("stateLabel").toStdString();
    EXPECT_TRUE(running) << "no lifecycle event for the resume: "
                         << w.vm->domainEventCount() - events0 << " event(s), state "
                         << w.text("stateLabel").toStdString();
}

TEST_F(GuiE2E, StopFromTheWindow) {
    ASSERT_TRUE(vmRunning());
    Window& w = window();
    w.window->showPage(MainWindow::OverviewTab);
    ASSERT_TRUE(waitFor([&] { return w.enabled("stopButton"); }, 30000));
    QSignalSpy finished(w.vm.get(), &VmController::operationFinished);
    QTest::mouseClick(w.find<QPushButton>("stopButton"), Qt::LeftButton);
    ASSERT_TRUE(waitFor([&] { return finished.count() > 0; }, 180 * 1000));
    EXPECT_TRUE(finished.last().at(1).toBool()) << w.vm->lastError().text().toStdString();
    EXPECT_TRUE(w.waitState("Stopped", 30000));
}

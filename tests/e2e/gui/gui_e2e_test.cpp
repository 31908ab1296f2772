// The real window over a real VM: start it, read its resources, switch
// Enhanced Container Isolation off and on and see container root's uid
// mapping change, list containers through docker.sock, read the audit log,
// stop it. Skips only when the VM image is not built.
// CORDON_SCREENSHOT_DIR=<folder> also saves the running screens there.
#include <gtest/gtest.h>
#include <unistd.h>

#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTimer>

#include "../../integration/gui/window_fixture.hpp"
#include "cordon/host/paths.hpp"

using namespace cordon::gui;
using namespace cordon::gui::test;
namespace fs = std::filesystem;
using nlohmann::json;

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

TEST(GuiE2E, StartSwitchIsolationSeeTheUidMapChangeStop) {
    const fs::path image = imageDir();
    if (!fs::exists(image / "manifest.json")) {
        GTEST_SKIP() << "the VM image is not built: no manifest.json in " << image
                     << " (build it with `cmake --build build --target cordon_image`, or set "
                        "CORDON_IMAGE_DIR)";
    }
    auto dir = tempDir("e2e");
#ifdef CORDON_GUI_E2E_HOSTAGENT
    if (!std::getenv("CORDON_HOSTAGENT"))
        setenv("CORDON_HOSTAGENT", CORDON_GUI_E2E_HOSTAGENT, 1);
#endif
    const char* accel = std::getenv("CORDON_E2E_ACCEL");
    writeFile(dir / "user.json", json{{"vm_name", "cordon-gui-e2e-" + std::to_string(::getpid())},
                                      {"accelerator", accel ? accel : "tcg"},
                                      {"image_dir", image.string()}}
                                     .dump());
    const char* uri = std::getenv("CORDON_E2E_URI");
    // Whatever happens, the test's domain is removed at the end (its disk lives in the temp
    // folder).
    struct Cleanup {
        std::string uri;
        fs::path dir;
        ~Cleanup() {
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
    } cleanup{uri ? uri : "", dir};
    Window w(uri ? uri : "", {dir / "user.json", dir / "admin.json"});
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

    // Stop.
    w.window->showPage(MainWindow::OverviewTab);
    const int before = finished.count();
    QTest::mouseClick(w.find<QPushButton>("stopButton"), Qt::LeftButton);
    ASSERT_TRUE(waitFor([&] { return finished.count() > before; }, 180 * 1000));
    EXPECT_TRUE(finished.last().at(1).toBool()) << w.vm->lastError().text().toStdString();
    EXPECT_TRUE(w.waitState("Stopped", 30000));
}

// The isolation switch's confirmation path and a guest agent that lacks a
// method, through the real window with a back end that answers like a guest
// agent whose isolation switch refuses until confirmed (an error path the real
// guest reaches only with running containers).
#include <gtest/gtest.h>

#include <QCheckBox>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QSignalSpy>
#include <atomic>

#include "cordon/host/host_error.hpp"
#include "gui_test_main.hpp"
#include "main_window.hpp"

using namespace cordon::gui;
using namespace cordon::gui::test;
using cordon::host::ErrorKind;
using cordon::host::HostError;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

class RefusingGuest final : public Backend {
  public:
    std::atomic<bool> isolation{true};
    std::atomic<bool> guestLocked{false};
    std::atomic<int> setCalls{0};

    cordon::host::VmStatus status() override {
        cordon::host::VmStatus s;
        s.name = "cordon";
        s.uri = "qemu:///system";
        s.defined = true;
        s.domain.state = cordon::host::DomainState::running;
        s.domain_type = "qemu";
        s.agent_reachable = true;
        s.agent_info = {{"cpus", 2}, {"memory_mib", 2048}, {"uptime_seconds", 42}};
        return s;
    }
    cordon::host::StartResult start(const cordon::host::Progress&) override { return {}; }
    cordon::host::StopResult stop(const cordon::host::Progress&) override { return {}; }
    json callAgent(const std::string& method, const json& params,
                   std::chrono::milliseconds) override {
        if (method == "isolation" && !params.contains("enabled")) {
            return {{"enabled", isolation.load()},
                    {"locked", guestLocked.load()},
                    {"locked_by", guestLocked ? "/etc/cordon/admin-settings.json on the host" : ""},
                    {"uid_map", isolation ? "0 100000 65536" : "0 0 4294967295"}};
        }
        if (method == "isolation") {
            ++setCalls;
            if (!params.value("confirmed", false)) {
                throw HostError(
                    ErrorKind::rpc,
                    "the guest agent refused 'isolation': confirmation required: running "
                    "containers stop: web [confirmation_required]");
            }
            const bool was = isolation.exchange(params.at("enabled").get<bool>());
            return {{"enabled", isolation.load()},
                    {"changed", was != isolation.load()},
                    {"stopped_containers", json::array({"web"})},
                    {"images_moved", 2},
                    {"volumes_moved", 1}};
        }
        throw HostError(ErrorKind::rpc, "the guest agent refused '" + method +
                                            "': unknown method [method_not_found]");
    }
    std::vector<cordon::host::docker::Container> containers() override {
        throw cordon::Error("the Docker socket does not exist", "/run/x/docker.sock",
                            "start the VM");
    }
    std::string readLog(const std::string&, std::size_t) override { return {}; }
    cordon::host::VmPaths paths() const override { return cordon::host::vm_paths("cordon"); }
    std::string uri() const override { return "qemu:///system"; }
    void setSettings(const cordon::host::Settings&) override {}
};

struct Fixture {
    fs::path dir;
    std::shared_ptr<RefusingGuest> guest = std::make_shared<RefusingGuest>();
    std::unique_ptr<SettingsStore> settings;
    std::unique_ptr<VmController> vm;
    std::unique_ptr<MainWindow> window;
    explicit Fixture(const std::string& name, bool locked = false) : dir(tempDir(name)) {
        guest->guestLocked = locked;
        settings = std::make_unique<SettingsStore>(
            cordon::host::SettingsFiles{dir / "user.json", dir / "admin.json"});
        vm = std::make_unique<VmController>(guest);
        window = std::make_unique<MainWindow>(vm.get(), settings.get());
        window->show();
    }
    QString label(const char* n) { return window->findChild<QLabel*>(QLatin1String(n))->text(); }
    QMessageBox* dialog() {
        return window->findChild<QMessageBox*>(QStringLiteral("isolationConfirmDialog"));
    }
};

}  // namespace

TEST(IsolationFlow, ConfirmationDialogThenTheUidMapChanges) {
    Fixture f("iso-confirm");
    ASSERT_TRUE(waitFor([&] { return f.vm->isolation().known; }, 10000));
    EXPECT_EQ(f.label("rootMapLabel"), "Container root is: VM uid 100000 (range 100000–165535)");
    EXPECT_EQ(f.label("cpusLabel"), "2");
    EXPECT_EQ(f.label("uptimeLabel"), "42 s");
    auto* toggle = f.window->findChild<QCheckBox*>(QStringLiteral("isolationToggle"));
    ASSERT_TRUE(toggle->isEnabled());
    ASSERT_TRUE(toggle->isChecked());

    toggle->click();
    EXPECT_TRUE(toggle->isChecked());  // unchanged until the guest switched
    ASSERT_TRUE(waitFor([&] { return f.dialog() && f.dialog()->isVisible(); }, 10000));
    EXPECT_TRUE(f.dialog()->informativeText().contains("confirmation required"))
        << f.dialog()->informativeText().toStdString();
    EXPECT_TRUE(f.dialog()->informativeText().contains("web"));
    EXPECT_EQ(f.guest->isolation.load(), true);

    QSignalSpy switched(f.vm.get(), &VmController::isolationSwitched);
    f.dialog()->findChild<QPushButton*>(QStringLiteral("confirmSwitch"))->click();
    ASSERT_TRUE(waitFor([&] { return switched.count() == 1; }, 10000));
    EXPECT_TRUE(switched.at(0).at(0).toString().contains(
        "1 container(s) stopped, 2 image(s) and 1 volume(s) moved"))
        << switched.at(0).at(0).toString().toStdString();
    ASSERT_TRUE(waitFor(
        [&] { return f.label("rootMapLabel") == "Container root is: VM root (uid 0)"; }, 10000))
        << f.label("rootMapLabel").toStdString();
    EXPECT_FALSE(toggle->isChecked());
    EXPECT_EQ(f.guest->setCalls.load(), 2);
    EXPECT_EQ(json::parse(readFile(f.dir / "user.json"))["isolation"], false);
}

TEST(IsolationFlow, CancelLeavesEverythingAsItWas) {
    Fixture f("iso-cancel");
    ASSERT_TRUE(
        waitFor([&] { return f.vm->isolation().known && f.vm->canSwitchIsolation(); }, 10000));
    f.window->findChild<QCheckBox*>(QStringLiteral("isolationToggle"))->click();
    ASSERT_TRUE(waitFor([&] { return f.dialog() && f.dialog()->isVisible(); }, 10000));
    f.dialog()->button(QMessageBox::Cancel)->click();
    QTest::qWait(300);
    EXPECT_EQ(f.guest->setCalls.load(), 1);
    EXPECT_TRUE(f.guest->isolation.load());
    EXPECT_FALSE(fs::exists(f.dir / "user.json"));
    EXPECT_TRUE(f.window->findChild<QCheckBox*>(QStringLiteral("isolationToggle"))->isChecked());
}

TEST(IsolationFlow, AMissingAgentMethodIsShownReadably) {
    Fixture f("iso-audit-missing");
    ASSERT_TRUE(waitFor([&] { return f.vm->state() == VmState::running; }, 10000));
    f.window->showPage(MainWindow::AuditTab);
    auto* banner = f.window->findChild<QWidget*>(QStringLiteral("auditError"));
    ASSERT_TRUE(waitFor([&] { return banner->isVisible(); }, 10000));
    EXPECT_TRUE(banner->findChild<QLabel*>(QStringLiteral("errorWhat"))
                    ->text()
                    .contains("refused 'audit'"));
    EXPECT_TRUE(banner->findChild<QLabel*>(QStringLiteral("errorHint"))
                    ->text()
                    .contains("does not offer this yet"));
}

// The guest reports the lock it was started with (the host's admin file may have changed since).
TEST(IsolationFlow, AGuestSideLockDisablesTheToggleWithItsSource) {
    Fixture f("iso-guest-locked", true);
    ASSERT_TRUE(waitFor([&] { return f.vm->isolation().known; }, 10000));
    EXPECT_TRUE(f.vm->isolation().lockedByGuest);
    auto* toggle = f.window->findChild<QCheckBox*>(QStringLiteral("isolationToggle"));
    EXPECT_FALSE(toggle->isEnabled());
    EXPECT_EQ(f.label("isolationLockReason"),
              "Read-only: isolation is locked by the administrator in "
              "/etc/cordon/admin-settings.json on the host");
}

// The Containers, Images, Volumes and Audit pages in the real window, over a back
// end whose guest agent answers audit and whose docker.sock is a fake engine on a
// unix socket: actions reach the engine only after the confirmation, the engine's
// refusal is shown, and the Audit tab counts refusals until it is looked at.
#include <gtest/gtest.h>

#include <QAbstractButton>
#include <QComboBox>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <atomic>
#include <mutex>

#include "fake_docker_engine.hpp"
#include "gui_test_main.hpp"
#include "main_window.hpp"

using namespace cordon::gui;
using namespace cordon::gui::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kDashboardContainers =
    R"([{"Id":"c1","Names":["/shop-web-1"],"Image":"nginx:1","ImageID":"sha256:aa",
         "State":"running","Status":"Up 2 minutes",
         "Ports":[{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}],
         "Labels":{"com.docker.compose.project":"shop"},
         "Mounts":[{"Type":"volume","Name":"data"}]},
        {"Id":"c2","Names":["/lonely"],"Image":"busybox","ImageID":"sha256:bb",
         "State":"exited","Status":"Exited (0) 1 hour ago"}])";

std::string dashboardEngineAnswer(const std::string& line) {
    if (line.rfind("GET /containers/json", 0) == 0)
        return httpReply(200, kDashboardContainers);
    if (line.rfind("GET /images/json", 0) == 0)
        return httpReply(200, R"([{"Id":"sha256:aa","RepoTags":["nginx:1"],"Size":5}])");
    if (line.rfind("DELETE /images/", 0) == 0)
        return httpReply(409, R"({"message":"image is being used by running container c1"})");
    if (line.rfind("GET /volumes", 0) == 0)
        return httpReply(200, R"({"Volumes":[{"Name":"data","Driver":"local"}]})");
    if (line.rfind("GET /containers/c1/stats", 0) == 0)
        return httpReply(200, R"({"memory_stats":{"usage":1048576}})");
    return httpReply(204, "");
}

class DashboardGuest final : public Backend {
  public:
    explicit DashboardGuest(fs::path socket) : socket_(std::move(socket)) {}
    std::mutex mu;
    json auditEntries = json::array();

    cordon::host::VmStatus status() override {
        cordon::host::VmStatus s;
        s.name = "cordon";
        s.uri = "qemu:///system";
        s.defined = true;
        s.domain.state = cordon::host::DomainState::running;
        s.agent_reachable = true;
        s.agent_info = {{"cpus", 2}, {"memory_mib", 2048}};
        return s;
    }
    cordon::host::StartResult start(const cordon::host::Progress&) override { return {}; }
    cordon::host::StopResult stop(const cordon::host::Progress&) override { return {}; }
    json callAgent(const std::string& method, const json&, std::chrono::milliseconds) override {
        if (method == "audit") {
            std::lock_guard lock(mu);
            return {{"entries", auditEntries}};
        }
        return {{"enabled", true}, {"uid_map", "0 100000 65536"}};
    }
    std::vector<cordon::host::docker::Container> containers() override {
        return dockerClient().list_containers(true);
    }
    cordon::host::docker::Client dockerClient() override {
        return cordon::host::docker::Client(socket_);
    }
    std::string readLog(const std::string&, std::size_t) override { return {}; }
    cordon::host::VmPaths paths() const override { return cordon::host::vm_paths("cordon"); }
    std::string uri() const override { return "qemu:///system"; }
    void setSettings(const cordon::host::Settings&) override {}

  private:
    fs::path socket_;
};

json refusal(int seq, const std::string& rule) {
    return {{"seq", seq},
            {"time", "2026-12-07T14:00:0" + std::to_string(seq) + "Z"},
            {"method", "POST"},
            {"target", "/v1.43/containers/create"},
            {"decision", "deny"},
            {"rule", rule},
            {"message", rule + " is refused by Cordon's policy"}};
}

struct PagesFixture {
    fs::path dir;
    RoutingFakeEngine engine;
    std::shared_ptr<DashboardGuest> guest;
    std::unique_ptr<SettingsStore> settings;
    std::unique_ptr<VmController> vm;
    std::unique_ptr<MainWindow> window;
    explicit PagesFixture(const std::string& name)
        : dir(tempDir(name)),
          engine(dir / "d.sock", dashboardEngineAnswer),
          guest(std::make_shared<DashboardGuest>(dir / "d.sock")) {
        settings = std::make_unique<SettingsStore>(
            cordon::host::SettingsFiles{dir / "user.json", dir / "admin.json"});
        vm = std::make_unique<VmController>(guest);
        window = std::make_unique<MainWindow>(vm.get(), settings.get());
        window->show();
        window->showPage(MainWindow::OverviewTab);
    }
    ~PagesFixture() {
        window.reset();
        vm.reset();
    }
    QMessageBox* dialog(const char* name) {
        return window->findChild<QMessageBox*>(QLatin1String(name));
    }
    bool requested(const std::string& line) {
        for (const auto& r : engine.requests())
            if (r.rfind(line, 0) == 0)
                return true;
        return false;
    }
};

}  // namespace

TEST(DashboardPages, ContainersGroupedAndDeleteOnlyAfterConfirming) {
    PagesFixture f("dash-containers");
    ASSERT_TRUE(waitFor([&] { return f.vm->state() == VmState::running; }, 10000));
    f.window->showPage(MainWindow::ContainersTab);
    ContainersPage* page = f.window->containers();
    ASSERT_TRUE(waitFor([&] { return page->model()->rowCount() == 2; }, 10000));
    EXPECT_EQ(page->model()->data(page->model()->index(0, 0)).toString(), "shop");
    // The running container's memory arrives from its stats sample.
    page->selectContainer("c1");
    ASSERT_NE(page->selected(), nullptr);
    EXPECT_EQ(page->selected()->name, "shop-web-1");
    const QModelIndex web = page->model()->indexOf("c1");
    ASSERT_TRUE(waitFor(
        [&] { return web.siblingAtColumn(ContainerModel::Memory).data().toString() == "1.0 MiB"; },
        10000));
    EXPECT_TRUE(f.window->findChild<QPushButton*>("containerOpenPort")->isEnabled());
    EXPECT_FALSE(f.window->findChild<QPushButton*>("containerStart")->isEnabled());
    EXPECT_FALSE(f.window->findChild<QPushButton*>("containerStop")->accessibleName().isEmpty());

    // Delete asks first; Cancel sends nothing.
    page->act(ContainerAction::remove);
    QMessageBox* box = f.dialog("deleteContainerConfirm");
    ASSERT_NE(box, nullptr);
    EXPECT_TRUE(box->informativeText().contains("running"));
    box->button(QMessageBox::Cancel)->click();
    QTest::qWait(200);
    EXPECT_FALSE(f.requested("DELETE /containers/c1"));
    page->act(ContainerAction::remove);
    ASSERT_TRUE(waitFor([&] { return f.dialog("deleteContainerConfirm") != nullptr; }, 2000));
    f.dialog("deleteContainerConfirm")
        ->findChild<QAbstractButton*>(QStringLiteral("confirmDelete"))
        ->click();
    ASSERT_TRUE(waitFor([&] { return f.requested("DELETE /containers/c1?force=1"); }, 5000));

    // The filter keeps the project of a matching container.
    page->findChild<QLineEdit*>("containersFilter")->setText("lonely");
    EXPECT_EQ(page->filtered()->rowCount(), 1);
}

TEST(DashboardPages, ImagesShowUsersAndTheEnginesRefusal) {
    PagesFixture f("dash-images");
    ASSERT_TRUE(waitFor([&] { return f.vm->state() == VmState::running; }, 10000));
    f.window->showPage(MainWindow::ImagesTab);
    ImagesPage* page = f.window->images();
    ASSERT_TRUE(waitFor([&] { return page->model()->rowCount() == 1; }, 10000));
    EXPECT_EQ(page->model()->data(page->model()->index(0, ImageModel::UsedBy)).toString(),
              "shop-web-1");
    page->view()->selectRow(0);
    page->deleteSelected();
    QMessageBox* box = f.dialog("deleteImageConfirm");
    ASSERT_NE(box, nullptr);
    EXPECT_TRUE(box->informativeText().contains("shop-web-1"));
    box->findChild<QAbstractButton*>(QStringLiteral("confirmDelete"))->click();
    auto* banner = page->findChild<QWidget*>("imagesError");
    ASSERT_TRUE(waitFor([&] { return banner->isVisible(); }, 5000));
    EXPECT_TRUE(banner->findChild<QLabel*>("errorWhat")->text().contains("being used"));

    f.window->showPage(MainWindow::VolumesTab);
    ASSERT_TRUE(waitFor([&] { return f.window->volumes()->model()->rowCount() == 1; }, 10000));
}

TEST(DashboardPages, AuditTabCountsRefusalsUntilSeenAndShowsTheDetail) {
    PagesFixture f("dash-audit");
    {
        std::lock_guard lock(f.guest->mu);
        f.guest->auditEntries = json::array({refusal(1, "privileged")});
    }
    ASSERT_TRUE(waitFor([&] { return f.vm->state() == VmState::running; }, 10000));
    QSignalSpy ready(f.vm.get(), &VmController::auditReady);
    f.vm->refreshAudit();  // the baseline
    ASSERT_TRUE(waitFor([&] { return ready.count() == 1; }, 5000));
    {
        std::lock_guard lock(f.guest->mu);
        f.guest->auditEntries = json::array(
            {refusal(1, "privileged"), refusal(2, "host-mount"), refusal(3, "privileged")});
    }
    f.vm->refreshAudit();
    ASSERT_TRUE(waitFor([&] { return ready.count() == 2; }, 5000));
    EXPECT_EQ(f.window->tabs()->tabText(MainWindow::AuditTab), "&Audit (2)");

    f.window->showPage(MainWindow::AuditTab);
    EXPECT_EQ(f.window->tabs()->tabText(MainWindow::AuditTab), "&Audit");
    AuditPage* page = f.window->audit();
    ASSERT_TRUE(waitFor([&] { return ready.count() >= 3; }, 5000));
    auto* rules = page->ruleFilter();
    const int hostMount = rules->findData(QStringLiteral("host-mount"));
    ASSERT_GE(hostMount, 0);
    rules->setCurrentIndex(hostMount);
    ASSERT_EQ(page->model()->rowCount(), 1);
    page->view()->selectRow(0);
    EXPECT_TRUE(page->detail()->toPlainText().startsWith("REFUSED: host-mount is refused"));
    EXPECT_TRUE(page->selectedJson().contains("\"seq\": 2"));
}

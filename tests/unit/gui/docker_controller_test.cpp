// The GUI's Docker controller over the real host Docker client and a fake engine
// on a unix socket: results arrive as signals on the GUI thread; engine down, 404
// and malformed answers arrive as readable errors.
#include "docker_controller.hpp"

#include <gtest/gtest.h>

#include <QSignalSpy>

#include "fake_docker_engine.hpp"
#include "gui_test_main.hpp"

using namespace cordon::gui;
using namespace cordon::gui::test;

namespace {

const char* kContainers =
    R"([{"Id":"c1","Names":["/web"],"Image":"nginx:1","ImageID":"sha256:aa","State":"running",
        "Mounts":[{"Type":"volume","Name":"data"}]}])";

std::string engineAnswer(const std::string& line) {
    if (line.rfind("GET /containers/json", 0) == 0)
        return httpReply(200, kContainers);
    if (line.rfind("GET /images/json", 0) == 0)
        return httpReply(200, R"([{"Id":"sha256:aa","RepoTags":["nginx:1"],"Size":5}])");
    if (line.rfind("GET /volumes", 0) == 0)
        return httpReply(200, R"({"Volumes":[{"Name":"data"},{"Name":"spare"}]})");
    if (line.rfind("GET /containers/c1/stats", 0) == 0)
        return httpReply(200, R"({"memory_stats":{"usage":2048}})");
    if (line.rfind("GET /containers/c1/json", 0) == 0)
        return httpReply(200, "not json at all");
    if (line.rfind("GET /containers/c1/logs", 0) == 0)
        return httpReply(200, logFrame(1, "2026-12-07T14:00:00.000000001Z hello\n"),
                         "application/vnd.docker.multiplexed-stream");
    if (line.rfind("POST /containers/c1/stop", 0) == 0)
        return httpReply(204, "");
    return httpReply(404, R"({"message":"No such container: gone"})");
}

struct ControllerFixture {
    std::filesystem::path dir;
    RoutingFakeEngine engine;
    DockerController docker;
    explicit ControllerFixture(const std::string& name)
        : dir(tempDir(name)),
          engine(dir / "d.sock", engineAnswer),
          docker([p = dir / "d.sock"] { return cordon::host::docker::Client(p); }) {}
};

}  // namespace

TEST(DockerController, ImagesAndVolumesWithTheirUsers) {
    ControllerFixture f("ctl-lists");
    QSignalSpy images(&f.docker, &DockerController::imagesReady);
    QSignalSpy volumes(&f.docker, &DockerController::volumesReady);
    f.docker.refreshImages();
    f.docker.refreshVolumes();
    ASSERT_TRUE(waitFor([&] { return images.count() == 1 && volumes.count() == 1; }, 5000));
    auto imageList = images.at(0).at(0).value<QList<ImageRow>>();
    ASSERT_EQ(imageList.size(), 1);
    EXPECT_EQ(imageList[0].usedBy, QStringList{"web"});
    auto volumeList = volumes.at(0).at(0).value<QList<VolumeRow>>();
    ASSERT_EQ(volumeList.size(), 2);
    EXPECT_EQ(volumeList[0].usedBy, QStringList{"web"});
    EXPECT_TRUE(volumeList[1].usedBy.isEmpty());
}

TEST(DockerController, ActionsReportSuccessAndTheEnginesRefusal) {
    ControllerFixture f("ctl-actions");
    QSignalSpy done(&f.docker, &DockerController::actionFinished);
    f.docker.act(ContainerAction::stop, "c1", "web");
    ASSERT_TRUE(waitFor([&] { return done.count() == 1; }, 5000));
    EXPECT_EQ(done.at(0).at(0).toString(), "stop web");
    EXPECT_TRUE(done.at(0).at(1).value<ErrorInfo>().empty());
    f.docker.act(ContainerAction::start, "gone", "old");
    ASSERT_TRUE(waitFor([&] { return done.count() == 2; }, 5000));
    const ErrorInfo e = done.at(1).at(1).value<ErrorInfo>();
    EXPECT_TRUE(e.what.contains("No such container: gone")) << e.text().toStdString();
    EXPECT_TRUE(e.hint.contains("refresh")) << e.text().toStdString();
    EXPECT_TRUE(f.docker.idle() || waitFor([&] { return f.docker.idle(); }, 2000));
}

TEST(DockerController, StatsInspectAndLogs) {
    ControllerFixture f("ctl-more");
    QSignalSpy stats(&f.docker, &DockerController::statsReady);
    QSignalSpy inspectFailed(&f.docker, &DockerController::inspectFailed);
    QSignalSpy lines(&f.docker, &DockerController::logLines);
    f.docker.fetchStats({"c1", "gone"});  // the second is skipped quietly
    f.docker.inspect("c1", "web");
    f.docker.pollLogs(std::make_shared<cordon::host::docker::LogTail>("c1", 10));
    ASSERT_TRUE(waitFor(
        [&] { return stats.count() == 1 && inspectFailed.count() == 1 && lines.count() == 1; },
        5000));
    EXPECT_EQ(stats.at(0).at(0).toString(), "c1");
    EXPECT_EQ(stats.at(0).at(1).value<StatsRow>().memoryBytes, 2048u);
    EXPECT_TRUE(inspectFailed.at(0).at(1).value<ErrorInfo>().what.contains("not JSON"));
    EXPECT_EQ(lines.at(0).at(1).toStringList(), QStringList{"hello"});
    ASSERT_TRUE(waitFor([&] { return f.docker.idle(); }, 3000));
    EXPECT_EQ(stats.count(), 1);
}

TEST(DockerController, EngineDownIsAnErrorNotACrash) {
    auto dir = tempDir("ctl-down");
    DockerController docker([p = dir / "none.sock"] { return cordon::host::docker::Client(p); });
    QSignalSpy failed(&docker, &DockerController::imagesFailed);
    QSignalSpy volumesFailed(&docker, &DockerController::volumesFailed);
    QSignalSpy logFailed(&docker, &DockerController::logFailed);
    docker.refreshImages();
    docker.refreshVolumes();
    docker.pollLogs(std::make_shared<cordon::host::docker::LogTail>("c1"));
    ASSERT_TRUE(waitFor(
        [&] { return failed.count() + volumesFailed.count() + logFailed.count() == 3; }, 5000));
    const ErrorInfo e = failed.at(0).at(0).value<ErrorInfo>();
    EXPECT_TRUE(e.what.contains("does not exist")) << e.text().toStdString();
    EXPECT_TRUE(e.hint.contains("start the VM")) << e.text().toStdString();
}

// The pages' models: containers grouped by Compose project and filtered, images
// and volumes with their users, the audit log's reason-first columns, rule filter
// and unseen-refusal counter.
#include "models.hpp"

#include <gtest/gtest.h>

#include <QSortFilterProxyModel>

#include "audit_page.hpp"
#include "terminal_command.hpp"

using namespace cordon::gui;

namespace {

ContainerRow container(const QString& id, const QString& name, const QString& state,
                       const QString& project = {}) {
    ContainerRow r;
    r.id = id;
    r.name = name;
    r.image = QStringLiteral("nginx:1");
    r.imageId = QStringLiteral("sha256:aa");
    r.state = state;
    r.status = state == QLatin1String("running") ? QStringLiteral("Up 3 minutes (healthy)")
                                                 : QStringLiteral("Exited (0) 1 hour ago");
    r.project = project;
    return r;
}

AuditEntry audit(qint64 seq, bool refused, const QString& rule, const QString& reason = {}) {
    AuditEntry e;
    e.seq = seq;
    e.refused = refused;
    e.rule = rule;
    e.reason = reason.isEmpty() ? rule + QStringLiteral(" refused") : reason;
    e.decision = refused ? QStringLiteral("refused") : QStringLiteral("allowed");
    e.json = QStringLiteral("{\"seq\": %1}").arg(seq);
    return e;
}

}  // namespace

TEST(ContainerModel, GroupsComposeProjectsAndShowsColumns) {
    ContainerModel m;
    ContainerRow web = container("id1", "shop-web-1", "running", "shop");
    web.ports = {{"0.0.0.0", 80, 8080, "tcp"}, {"::", 80, 8080, "tcp"}, {"", 9000, 0, "tcp"}};
    m.setContainers({container("id3", "zeta", "exited"), web,
                     container("id2", "shop-db-1", "exited", "shop"),
                     container("id4", "alpha", "running")});
    // Top level: the project, then the loose containers by name.
    ASSERT_EQ(m.rowCount(), 3);
    const QModelIndex project = m.index(0, ContainerModel::Name);
    EXPECT_EQ(m.data(project).toString(), "shop");
    EXPECT_EQ(m.data(project, ContainerModel::ProjectRole).toString(), "shop");
    EXPECT_EQ(m.data(m.index(0, ContainerModel::State)).toString(), "1 of 2 running");
    EXPECT_EQ(m.containerAt(project), nullptr);
    EXPECT_EQ(m.data(m.index(1, ContainerModel::Name)).toString(), "alpha");
    EXPECT_EQ(m.data(m.index(2, ContainerModel::Name)).toString(), "zeta");
    ASSERT_EQ(m.rowCount(project), 2);
    const QModelIndex dbRow = m.index(0, ContainerModel::Name, project);
    const QModelIndex webRow = m.index(1, ContainerModel::Name, project);
    EXPECT_EQ(m.data(dbRow).toString(), "shop-db-1");
    EXPECT_EQ(m.parent(webRow), project);
    EXPECT_EQ(m.data(webRow.siblingAtColumn(ContainerModel::Ports)).toString(),
              "8080→80/tcp, 8080→80/tcp, 9000/tcp");
    EXPECT_EQ(m.data(webRow, ContainerModel::PortUrlsRole).toStringList(),
              QStringList{"http://localhost:8080"});
    EXPECT_EQ(m.data(webRow.siblingAtColumn(ContainerModel::Uptime)).toString(), "3 minutes");
    EXPECT_EQ(m.data(dbRow.siblingAtColumn(ContainerModel::Uptime)).toString(), "");
    EXPECT_EQ(m.data(webRow, ContainerModel::IdRole).toString(), "id1");
    EXPECT_EQ(m.indexOf("id1"), webRow);
    EXPECT_EQ(m.indexOf("id4"), m.index(1, 0));
    EXPECT_FALSE(m.indexOf("nope").isValid());
    EXPECT_EQ(m.rowCount(m.index(1, 0)), 0);  // a loose container has no children
}

TEST(ContainerModel, StatsFillCpuAndMemoryAndSurviveARefresh) {
    ContainerModel m;
    m.setContainers({container("id1", "web", "running"), container("id2", "old", "exited")});
    auto cell = [&](ContainerModel::Column c, int role = Qt::DisplayRole) {
        return m.data(m.indexOf("id1").siblingAtColumn(c), role).toString();
    };
    EXPECT_EQ(cell(ContainerModel::Cpu), "");
    StatsRow s;
    s.cpuPercent = 12.345;
    s.memoryBytes = 50ull << 20;
    s.memoryLimit = 1ull << 30;
    m.setStats("id1", s);
    m.setStats("gone", s);  // ignored
    EXPECT_EQ(cell(ContainerModel::Cpu), "12.3 %");
    EXPECT_EQ(cell(ContainerModel::Memory), "50.0 MiB");
    EXPECT_EQ(cell(ContainerModel::Memory, Qt::ToolTipRole), "50.0 MiB of 1.0 GiB");
    EXPECT_EQ(m.data(m.indexOf("id2").siblingAtColumn(ContainerModel::Cpu)).toString(), "");
    m.setContainers({container("id1", "web", "running")});
    EXPECT_EQ(cell(ContainerModel::Cpu), "12.3 %");
    m.setContainers({container("id1", "web", "exited")});  // stopped: no stale numbers
    EXPECT_EQ(cell(ContainerModel::Cpu), "");
}

TEST(ContainerModel, FilterKeepsMatchingContainersAndTheirProject) {
    ContainerModel m;
    m.setContainers({container("id1", "shop-web-1", "running", "shop"),
                     container("id2", "shop-db-1", "exited", "shop"),
                     container("id3", "other", "running")});
    QSortFilterProxyModel f;
    f.setSourceModel(&m);
    f.setRecursiveFilteringEnabled(true);
    f.setFilterKeyColumn(-1);
    f.setFilterCaseSensitivity(Qt::CaseInsensitive);
    f.setFilterFixedString("DB");
    ASSERT_EQ(f.rowCount(), 1);
    EXPECT_EQ(f.index(0, 0).data().toString(), "shop");
    ASSERT_EQ(f.rowCount(f.index(0, 0)), 1);
    EXPECT_EQ(f.index(0, 0, f.index(0, 0)).data().toString(), "shop-db-1");
    f.setFilterFixedString("exited");
    EXPECT_EQ(f.rowCount(), 1);
    f.setFilterFixedString("");
    EXPECT_EQ(f.rowCount(), 2);
}

TEST(DockerRows, ImagesAndVolumesKnowWhoUsesThem) {
    cordon::host::docker::Image used{"sha256:aa", {"nginx:1"}, 2048, 5};
    cordon::host::docker::Image byName{"sha256:bb", {"redis:7"}, 10, 6};
    cordon::host::docker::Image unused{"sha256:cc", {}, 1, 7};
    ContainerRow web = container("id1", "web", "running");
    web.volumes = {"data"};
    ContainerRow legacy = container("id2", "cache", "exited");
    legacy.imageId.clear();
    legacy.image = "redis:7";
    auto images = imageRows({used, byName, unused}, {web, legacy});
    ASSERT_EQ(images.size(), 3);
    EXPECT_EQ(images[0].usedBy, QStringList{"web"});
    EXPECT_EQ(images[1].usedBy, QStringList{"cache"});
    EXPECT_TRUE(images[2].usedBy.isEmpty());
    EXPECT_EQ(imageLabel(images[2]), "<untagged> cc");

    ImageModel im;
    im.setImages(images);
    EXPECT_EQ(im.data(im.index(0, ImageModel::Size)).toString(), "2.0 KiB");
    EXPECT_EQ(im.data(im.index(0, ImageModel::UsedBy)).toString(), "web");
    EXPECT_EQ(im.data(im.index(2, ImageModel::UsedBy)).toString(), "not used");
    EXPECT_EQ(im.data(im.index(2, ImageModel::Tags)).toString(), "<untagged>");
    EXPECT_EQ(im.data(im.index(0, ImageModel::Id)).toString(), "aa");
    EXPECT_EQ(im.imageAt(3), nullptr);

    cordon::host::docker::Volume data{"data", "local", "/var/lib/x", "2026-12-07T10:00:00Z", {}};
    cordon::host::docker::Volume spare{"spare", "local", "", "", {}};
    VolumeModel vm;
    vm.setVolumes(volumeRows({data, spare}, {web, legacy}));
    ASSERT_EQ(vm.rowCount(), 2);
    EXPECT_EQ(vm.data(vm.index(0, VolumeModel::UsedBy)).toString(), "web");
    EXPECT_EQ(vm.data(vm.index(1, VolumeModel::UsedBy)).toString(), "not used");
}

TEST(DockerRows, FormatsBytesPortsAndUptime) {
    EXPECT_EQ(formatBytes(900), "900 B");
    EXPECT_EQ(formatBytes(3ull << 30), "3.0 GiB");
    EXPECT_EQ(portText({"", 53, 5353, "udp"}), "5353→53/udp");
    EXPECT_TRUE(portUrls({{"", 53, 5353, "udp"}}).isEmpty());  // not a web page
    ContainerRow paused = container("x", "x", "running");
    paused.status = "Up 2 hours (Paused)";
    EXPECT_EQ(uptimeText(paused), "2 hours");
}

TEST(AuditModel, ReasonFirstRefusedOnlyNewestFirst) {
    AuditModel m;
    m.setEntries({audit(1, true, "privileged"), audit(2, false, "allow-list"),
                  audit(3, true, "host-mount", "bind mounts of host paths are refused")});
    EXPECT_EQ(AuditModel::Reason, 0);
    ASSERT_EQ(m.rowCount(), 2);
    EXPECT_EQ(m.data(m.index(0, AuditModel::Reason)).toString(),
              "bind mounts of host paths are refused");
    EXPECT_EQ(m.data(m.index(0, AuditModel::Reason), Qt::ToolTipRole).toString(),
              "bind mounts of host paths are refused");
    EXPECT_EQ(m.data(m.index(0, AuditModel::Rule)).toString(), "host-mount");
    EXPECT_EQ(m.headerData(AuditModel::Reason, Qt::Horizontal).toString(), "Reason");
    m.setShowAllowed(true);
    EXPECT_EQ(m.rowCount(), 3);
    EXPECT_EQ(m.totalCount(), 3);
    EXPECT_EQ(m.rules(), (QStringList{"allow-list", "host-mount", "privileged"}));
    EXPECT_EQ(m.entryAt(1)->seq, 2);
    EXPECT_EQ(m.entryAt(5), nullptr);
}

TEST(AuditModel, FiltersByRule) {
    AuditModel m;
    m.setEntries(
        {audit(1, true, "privileged"), audit(2, true, "host-mount"), audit(3, true, "privileged")});
    m.setRuleFilter("privileged");
    ASSERT_EQ(m.rowCount(), 2);
    EXPECT_EQ(m.entryAt(0)->seq, 3);
    m.setRuleFilter("nothing-matches");
    EXPECT_EQ(m.rowCount(), 0);
    m.setRuleFilter({});
    EXPECT_EQ(m.rowCount(), 3);
}

TEST(AuditModel, CountsRefusalsSinceLastSeen) {
    AuditModel m;
    QList<int> emitted;
    QObject::connect(&m, &AuditModel::unseenChanged, [&](int n) { emitted << n; });
    m.clearEntries();                              // the agent did not answer: no baseline yet
    m.setEntries({audit(1, true, "privileged")});  // the first answer is the baseline
    EXPECT_EQ(m.unseenRefusals(), 0);
    m.setEntries({audit(1, true, "privileged"), audit(2, false, "allow-list"),
                  audit(3, true, "host-mount"), audit(4, true, "privileged")});
    EXPECT_EQ(m.unseenRefusals(), 2);
    m.markSeen();
    EXPECT_EQ(m.unseenRefusals(), 0);
    m.setEntries(
        {audit(3, true, "host-mount"), audit(4, true, "privileged"), audit(5, true, "privileged")});
    EXPECT_EQ(m.unseenRefusals(), 1);
    EXPECT_EQ(emitted, (QList<int>{2, 0, 1}));
}

TEST(AuditPage, DetailTextHasTheWholeDecision) {
    AuditEntry e = audit(7, true, "privileged", "privileged containers are refused");
    e.method = "POST";
    e.path = "/v1.43/containers/create";
    e.operation = "container.create";
    const QString text = auditDetailText(e);
    EXPECT_TRUE(text.startsWith("REFUSED: privileged containers are refused"))
        << text.toStdString();
    EXPECT_TRUE(text.contains("Request: POST /v1.43/containers/create"));
    EXPECT_TRUE(text.contains("{\"seq\": 7}"));
}

TEST(Terminal, LaunchesDockerExecOrOffersTheCommand) {
    TerminalLaunch t = planTerminal("/run/user/1000/cordon/docker.sock", "0123456789abcdef",
                                    "/usr/bin/x-terminal-emulator", "/usr/bin/docker");
    ASSERT_TRUE(t.launchable);
    EXPECT_EQ(t.program, "/usr/bin/x-terminal-emulator");
    EXPECT_EQ(t.arguments,
              (QStringList{"-e", "/usr/bin/docker", "exec", "-it", "0123456789abcdef", "sh"}));
    EXPECT_EQ(t.dockerHost, "unix:///run/user/1000/cordon/docker.sock");
    EXPECT_EQ(
        t.copyCommand,
        "DOCKER_HOST=unix:///run/user/1000/cordon/docker.sock docker exec -it 0123456789ab sh");
    TerminalLaunch none = planTerminal("/s.sock", "abc", "", "/usr/bin/docker");
    EXPECT_FALSE(none.launchable);
    EXPECT_TRUE(none.missing.contains("x-terminal-emulator"));
    EXPECT_FALSE(launchTerminal(none));
    EXPECT_FALSE(planTerminal("/s.sock", "abc", "/usr/bin/xterm", "").launchable);
}

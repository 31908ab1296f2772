#include "agent_data.hpp"

#include <gtest/gtest.h>

#include "cordon/host/host_error.hpp"
#include "error_info.hpp"
#include "vm_controller.hpp"

using nlohmann::json;
using namespace cordon::gui;

TEST(AgentData, InfoReadsResourcesInSeveralSpellings) {
    Resources r = parseInfo(
        json{{"cpus", 2}, {"memory_mib", 2048}, {"uptime_seconds", 75.5}, {"kernel", "6.1.0"}});
    EXPECT_EQ(r.cpus, 2);
    EXPECT_EQ(r.memoryMib, 2048);
    EXPECT_DOUBLE_EQ(r.uptimeSeconds, 75.5);
    EXPECT_EQ(r.kernel, "6.1.0");
    Resources k = parseInfo(json{{"mem_total_kib", 4194304}, {"uptime", 3}});
    EXPECT_EQ(k.memoryMib, 4096);
    EXPECT_EQ(k.cpus, 0);
    Resources nested = parseInfo(json{{"memory", {{"total_mib", 512}}}});
    EXPECT_EQ(nested.memoryMib, 512);
    Resources none = parseInfo(json("not an object"));
    EXPECT_EQ(none.cpus, 0);
    EXPECT_LT(none.uptimeSeconds, 0);
}

// The shapes the guest agent answers with (guest-agent agent.cpp, engine isolation_rpc.cpp, proxy
// audit.cpp).
TEST(AgentData, TheGuestAgentsOwnShapes) {
    Resources r =
        parseInfo(json{{"agent_version", "0.1.0"},
                       {"kernel", {{"release", "6.1.0-28-cloud-amd64"}, {"machine", "x86_64"}}},
                       {"uptime_s", 12.5},
                       {"memory", {{"total_kib", 2014436}, {"available_kib", 1800000}}}});
    EXPECT_EQ(r.kernel, "6.1.0-28-cloud-amd64");
    EXPECT_EQ(r.agentVersion, "0.1.0");
    EXPECT_DOUBLE_EQ(r.uptimeSeconds, 12.5);
    EXPECT_EQ(r.memoryMib, 1967);
    IsolationInfo on =
        parseIsolationStatus(json{{"enabled", true},
                                  {"locked", true},
                                  {"locked_by", "/etc/cordon/admin-settings.json"},
                                  {"user", "cordon"},
                                  {"uid_range", {{"start", 100000}, {"count", 65536}}},
                                  {"gid_range", {{"start", 100000}, {"count", 65536}}},
                                  {"engine_version", "20.10.24"}});
    EXPECT_TRUE(on.lockedByGuest);
    EXPECT_EQ(on.lockSource, "/etc/cordon/admin-settings.json");
    EXPECT_EQ(rootMappingText(on, true),
              QStringLiteral("VM uid 100000 (range 100000–165535), user cordon"));
    IsolationInfo off =
        parseIsolationStatus(json{{"enabled", false},
                                  {"user", "cordon"},
                                  {"uid_range", {{"start", 100000}, {"count", 65536}}}});
    EXPECT_EQ(rootMappingText(off, true), QStringLiteral("VM root (uid 0)"));
    auto audit = parseAudit(json::array({{{"seq", 1},
                                          {"time", "2026-11-25T22:00:00.000Z"},
                                          {"connection", 3},
                                          {"role", "host"},
                                          {"method", "POST"},
                                          {"target", "/v1.41/containers/create"},
                                          {"operation", "container.create"},
                                          {"decision", "deny"},
                                          {"rule", "privileged"},
                                          {"message", "privileged containers are refused"}}}));
    ASSERT_EQ(audit.size(), 1);
    EXPECT_TRUE(audit[0].refused);
    EXPECT_EQ(audit[0].path, "/v1.41/containers/create");
    EXPECT_EQ(audit[0].reason, "privileged containers are refused");
    EXPECT_EQ(audit[0].rule, "privileged");
    EXPECT_EQ(audit[0].operation, "container.create");
    EXPECT_NE(audit[0].json.indexOf("\"rule\": \"privileged\""), -1) << audit[0].json.toStdString();
    EXPECT_EQ(audit[0].client, "host #3");
}

TEST(AgentData, IsolationStatusUidMapShapes) {
    IsolationInfo a = parseIsolationStatus(json{{"enabled", true}, {"uid_map", "0 100000 65536"}});
    ASSERT_TRUE(a.known);
    ASSERT_TRUE(a.uidMap);
    EXPECT_EQ(a.uidMap->outside, 100000);
    EXPECT_EQ(a.uidMap->count, 65536);
    EXPECT_EQ(rootMappingText(a, true), QStringLiteral("VM uid 100000 (range 100000–165535)"));

    IsolationInfo b = parseIsolationStatus(
        json{{"enabled", true},
             {"remap_user", {{"name", "cordon"}, {"uids", {{"start", 200000}, {"count", 1000}}}}}});
    ASSERT_TRUE(b.uidMap);
    EXPECT_EQ(b.uidMap->outside, 200000);
    EXPECT_EQ(b.remapUser, "cordon");
    EXPECT_TRUE(rootMappingText(b, true).contains("user cordon"));

    IsolationInfo c = parseIsolationStatus(
        json{{"enabled", false}, {"uid_map", json::array({"0 0 4294967295"})}});
    EXPECT_EQ(rootMappingText(c, true), QStringLiteral("VM root (uid 0)"));
    EXPECT_EQ(rootMappingText(c, false), QStringLiteral("unknown"));

    IsolationInfo d = parseIsolationStatus(json{{"something", 1}});
    EXPECT_FALSE(d.known);
    EXPECT_EQ(rootMappingText(d, true), QStringLiteral("unknown"));
}

TEST(AgentData, AuditKeepsDecisions) {
    json audit = {
        {"entries",
         json::array(
             {{{"time", "t1"},
               {"method", "POST"},
               {"path", "/containers/create"},
               {"decision", "deny"},
               {"reason", "privileged"}},
              {{"time", "t2"}, {"method", "GET"}, {"path", "/_ping"}, {"allowed", true}}})}};
    auto e = parseAudit(audit);
    ASSERT_EQ(e.size(), 2);
    EXPECT_TRUE(e[0].refused);
    EXPECT_EQ(e[0].reason, "privileged");
    EXPECT_FALSE(e[1].refused);
    EXPECT_TRUE(parseAudit(json::object()).isEmpty());
}

TEST(AgentData, SwitchResultAndLogs) {
    SwitchSummary s =
        parseSwitchResult(json{{"enabled", false},
                               {"changed", true},
                               {"stopped_containers", json::array({"web", {{"name", "db"}}})},
                               {"images_moved", 3},
                               {"volumes_moved", 1}});
    EXPECT_TRUE(s.changed);
    EXPECT_EQ(s.stoppedContainers, (QStringList{"web", "db"}));
    EXPECT_EQ(s.imagesMoved, 3);
    EXPECT_EQ(parseLogs(json{{"lines", json::array({"a", "b"})}}), QStringLiteral("a\nb\n"));
    EXPECT_EQ(parseLogs(json{{"text", "x"}}), QStringLiteral("x"));
}

TEST(AgentData, Formatting) {
    EXPECT_EQ(formatUptime(-1), "unknown");
    EXPECT_EQ(formatUptime(7), "7 s");
    EXPECT_EQ(formatUptime(65), "1 min 5 s");
    EXPECT_EQ(formatUptime(3 * 3600 + 120), "3 h 2 min");
    EXPECT_EQ(formatUptime(90000), "1 d 1 h");
    EXPECT_EQ(formatMemory(2048), "2 GiB");
    EXPECT_EQ(formatMemory(1536), "1.5 GiB");
    EXPECT_EQ(formatMemory(512), "512 MiB");
}

TEST(ErrorInfo, KeepsWhatSubjectHintAndKind) {
    cordon::host::HostError he(cordon::host::ErrorKind::image, "the image has no manifest.json",
                               "/img", "build the image");
    ErrorInfo e = ErrorInfo::fromException(he);
    EXPECT_EQ(e.what, "the image has no manifest.json");
    EXPECT_EQ(e.subject, "/img");
    EXPECT_EQ(e.hint, "build the image");
    EXPECT_EQ(e.kind, "image");
    EXPECT_EQ(e.text(), "the image has no manifest.json\nOn: /img\nFix: build the image");
    ErrorInfo plain = ErrorInfo::fromException(std::runtime_error("boom"));
    EXPECT_EQ(plain.what, "boom");
    EXPECT_EQ(plain.kind, "generic");
}

TEST(ErrorInfo, MissingAgentMethodGetsAHint) {
    cordon::host::HostError he(
        cordon::host::ErrorKind::rpc,
        "the guest agent refused 'audit': method not found [method_not_found]");
    ErrorInfo e = ErrorInfo::fromException(he);
    EXPECT_TRUE(e.hint.contains("does not offer this yet")) << e.hint.toStdString();
}

TEST(Progress, StartStepsMoveForwardOnly) {
    const QString s = QStringLiteral("start");
    EXPECT_EQ(progressPercentFor(s, "connected to qemu:///system", 0), 5);
    EXPECT_EQ(progressPercentFor(s, "defined the libvirt domain cordon", 5), 40);
    EXPECT_EQ(progressPercentFor(s, "defining the libvirt domain cordon (libvirtd checks QEMU)", 5),
              40);
    EXPECT_EQ(progressPercentFor(s, "the libvirt domain cordon is up to date", 5), 40);
    EXPECT_EQ(progressPercentFor(s, "host agent started (pid 42); waiting for the guest agent", 40),
              60);
    EXPECT_EQ(progressPercentFor(s, "still waiting for the guest agent (20 s)", 60), 70);
    EXPECT_EQ(progressPercentFor(s, "connected to x", 70), 70);
    EXPECT_EQ(progressPercentFor(s, "guest agent answered after 9.1 s", 70), 100);
    EXPECT_EQ(progressPercentFor(QStringLiteral("stop"), "sending an ACPI shutdown", 30), 60);
}

#include <gtest/gtest.h>

#include "cordon/engine/engine_config.hpp"

using namespace cordon::engine;

TEST(DaemonConfig, IsolationOnRemapsToTheVmUser) {
    auto cfg = make_daemon_config(nlohmann::json::object(), true, EnginePaths{}, RemapUser{});
    EXPECT_EQ(cfg["userns-remap"], "cordon:cordon");
}

TEST(DaemonConfig, IsolationOffHasNoRemap) {
    auto cfg = make_daemon_config({{"userns-remap", "x"}, {"iptables", false}}, false, EnginePaths{}, RemapUser{});
    EXPECT_FALSE(cfg.contains("userns-remap"));
    EXPECT_EQ(cfg["iptables"], false);  // the image's base settings are kept
}

TEST(DaemonConfig, ListensOnlyOnTheRootOnlyUnixSocketInBothModes) {
    for (bool iso : {true, false}) {
        auto cfg = make_daemon_config({{"hosts", {"tcp://0.0.0.0:2375"}}, {"group", "docker"}}, iso, EnginePaths{}, RemapUser{});
        ASSERT_EQ(cfg["hosts"].size(), 1u);
        EXPECT_EQ(cfg["hosts"][0], "unix:///run/cordon/dockerd.sock");
        EXPECT_EQ(cfg["group"], "root");
    }
}

TEST(DaemonConfig, DataRootPerMapping) {
    EnginePaths p;
    RemapUser u;
    EXPECT_EQ(data_root_for(false, p, u), "/var/lib/docker");
    EXPECT_EQ(data_root_for(true, p, u), "/var/lib/docker/100000.100000");
}

#include "cordon/engine/isolation_rpc.hpp"
#include "cordon/error.hpp"

TEST(IsolationRpc, StatusShowsTheLockAndTheRange) {
    auto j = isolation_status_json({false, 7}, {true, true, "/etc/cordon/admin-settings.json"}, RemapUser{}, "20.10.24");
    EXPECT_EQ(j["enabled"], true);  // the lock wins
    EXPECT_EQ(j["locked"], true);
    EXPECT_EQ(j["locked_by"], "/etc/cordon/admin-settings.json");
    EXPECT_EQ(j["uid_range"]["start"], 100000);
    EXPECT_EQ(j["engine_version"], "20.10.24");
}

TEST(IsolationRpc, SwitchRequestNeedsABooleanEnabled) {
    EXPECT_TRUE(parse_switch_request({{"enabled", true}}).enabled);
    EXPECT_FALSE(parse_switch_request({{"enabled", true}}).confirmed);
    EXPECT_TRUE(parse_switch_request({{"enabled", false}, {"confirmed", true}}).confirmed);
    EXPECT_THROW(parse_switch_request(nlohmann::json::object()), cordon::Error);
    EXPECT_THROW(parse_switch_request({{"enabled", "yes"}}), cordon::Error);
    EXPECT_THROW(parse_switch_request(nlohmann::json::array()), cordon::Error);
}

TEST(EngineConfigExclusive, UsesTheWrapperAsDefaultRuntimeWithoutRemap) {
    using namespace cordon::engine;
    EnginePaths paths;
    RemapUser user;
    const auto base = nlohmann::json::parse(R"({"userns-remap": "x", "runtimes": {"other": {"path": "/o"}}})");
    const auto cfg = make_daemon_config(base, true, paths, user, true);
    EXPECT_FALSE(cfg.contains("userns-remap"));
    EXPECT_EQ(cfg["default-runtime"], "cordon-idmap");
    EXPECT_EQ(cfg["runtimes"]["cordon-idmap"]["path"], "/usr/libexec/cordon/cordon-runc");
    EXPECT_EQ(cfg["runtimes"]["other"]["path"], "/o");
    // Shared range (remap) and off: no wrapper.
    const auto shared = make_daemon_config(cfg, true, paths, user, false);
    EXPECT_EQ(shared["userns-remap"], "cordon:cordon");
    EXPECT_FALSE(shared.contains("default-runtime"));
    EXPECT_FALSE(shared["runtimes"].contains("cordon-idmap"));
    const auto off = make_daemon_config(cfg, false, paths, user, true);
    EXPECT_FALSE(off.contains("default-runtime"));
    EXPECT_FALSE(off.contains("userns-remap"));
}

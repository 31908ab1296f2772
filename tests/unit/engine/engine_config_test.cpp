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

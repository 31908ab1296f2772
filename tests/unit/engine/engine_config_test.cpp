#include <gtest/gtest.h>

#include "cordon/engine/engine_config.hpp"

using namespace cordon::engine;

TEST(DaemonConfig, IsolationOnRemapsToTheVmUser) {
    auto cfg = make_daemon_config(true, EnginePaths{}, RemapUser{});
    EXPECT_EQ(cfg["userns-remap"], "cordon:cordon");
}

TEST(DaemonConfig, IsolationOffHasNoRemap) {
    auto cfg = make_daemon_config(false, EnginePaths{}, RemapUser{});
    EXPECT_FALSE(cfg.contains("userns-remap"));
}

TEST(DaemonConfig, ListensOnlyOnTheRootOnlyUnixSocketInBothModes) {
    for (bool iso : {true, false}) {
        auto cfg = make_daemon_config(iso, EnginePaths{}, RemapUser{});
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

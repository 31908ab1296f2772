#include "cordon/engine/engine_config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "cordon/error.hpp"

using namespace cordon::engine;

TEST(DaemonConfig, IsolationOnRemapsToTheVmUser) {
    auto cfg = make_daemon_config(nlohmann::json::object(), true, EnginePaths{}, RemapUser{});
    EXPECT_EQ(cfg["userns-remap"], "cordon:cordon");
}

TEST(DaemonConfig, IsolationOffHasNoRemap) {
    auto cfg = make_daemon_config({{"userns-remap", "x"}, {"iptables", false}}, false,
                                  EnginePaths{}, RemapUser{});
    EXPECT_FALSE(cfg.contains("userns-remap"));
    EXPECT_EQ(cfg["iptables"], false);  // the image's base settings are kept
}

TEST(DaemonConfig, ListensOnlyOnTheRootOnlyUnixSocketInBothModes) {
    for (bool iso : {true, false}) {
        auto cfg = make_daemon_config({{"hosts", {"tcp://0.0.0.0:2375"}}, {"group", "docker"}}, iso,
                                      EnginePaths{}, RemapUser{});
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
    auto j = isolation_status_json({false, 7}, {true, true, "/etc/cordon/admin-settings.json"},
                                   RemapUser{}, "20.10.24");
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
    const auto base =
        nlohmann::json::parse(R"({"userns-remap": "x", "runtimes": {"other": {"path": "/o"}}})");
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

TEST(EngineConfigBuilder, BuildKitEntitlementsAreOffInEveryIsolationOnMode) {
    using namespace cordon::engine;
    EnginePaths paths;
    RemapUser user;
    // The base asks for both entitlements and has a GC policy: isolation turns them off and
    // keeps the GC policy.
    const auto base = nlohmann::json::parse(
        R"({"builder": {"gc": {"enabled": true},
             "entitlements": {"network-host": true, "security-insecure": true}}})");
    for (bool exclusive : {false, true}) {
        const auto cfg = make_daemon_config(base, true, paths, user, exclusive);
        EXPECT_EQ(cfg["builder"]["entitlements"]["network-host"], false) << exclusive;
        EXPECT_EQ(cfg["builder"]["entitlements"]["security-insecure"], false) << exclusive;
        EXPECT_EQ(cfg["builder"]["gc"]["enabled"], true) << exclusive;
    }
    // An empty base (the image's) gets them too; a malformed "builder" is replaced.
    EXPECT_EQ(make_daemon_config(nlohmann::json::object(), true, paths,
                                 user)["builder"]["entitlements"]["network-host"],
              false);
    EXPECT_EQ(make_daemon_config(nlohmann::json::parse(R"({"builder": 1})"), true, paths,
                                 user)["builder"]["entitlements"]["security-insecure"],
              false);
    // Off: the user chose an engine as it comes; the base is left alone.
    const auto off = make_daemon_config(base, false, paths, user);
    EXPECT_EQ(off["builder"]["entitlements"]["network-host"], true);
    EXPECT_FALSE(
        make_daemon_config(nlohmann::json::object(), false, paths, user).contains("builder"));
}

TEST(RuncShim, IsolationLinksRuncToTheWrapperOffRemovesIt) {
    namespace fs = std::filesystem;
    using namespace cordon::engine;
    const fs::path dir = fs::temp_directory_path() / ("cordon-shim-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    write_runc_shim(dir.string(), true, "/usr/libexec/cordon/cordon-runc");
    EXPECT_EQ(fs::read_symlink(dir / "runc"), "/usr/libexec/cordon/cordon-runc");
    write_runc_shim(dir.string(), true, "/usr/libexec/cordon/cordon-runc");  // again: replaced
    EXPECT_EQ(fs::read_symlink(dir / "runc"), "/usr/libexec/cordon/cordon-runc");
    EXPECT_FALSE(fs::exists(dir / "runc.new"));
    write_runc_shim(dir.string(), false);
    EXPECT_FALSE(fs::is_symlink(dir / "runc"));
    write_runc_shim(dir.string(), false);  // nothing to remove: fine
    write_runc_shim("", true);             // no shim folder configured: nothing written
    EXPECT_THROW(write_runc_shim((dir / "missing/sub").string(), true), cordon::Error);
    EXPECT_EQ(engine_path_env(dir.string()).rfind("PATH=" + dir.string() + ":", 0), 0u);
    EXPECT_NE(engine_path_env("/s").find(":/usr/sbin:"), std::string::npos);  // real runc after
    fs::remove_all(dir);
}

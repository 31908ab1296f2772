#include "cordon/runtime/runc_args.hpp"

#include <gtest/gtest.h>

#include "cordon/error.hpp"

using namespace cordon::runtime;

TEST(RuncArgs, ReadsTheShimsCreateCall) {
    const auto c =
        parse_runc_args({"--root", "/run/docker/runtime-runc/moby", "--log", "/run/x/log.json",
                         "--log-format", "json", "--systemd-cgroup", "create", "--bundle", "/b/ID",
                         "--pid-file", "/b/ID/init.pid", "--console-socket", "/tmp/c.sock", "ID"});
    EXPECT_EQ(c.command, "create");
    EXPECT_EQ(c.root, "/run/docker/runtime-runc/moby");
    EXPECT_EQ(c.log, "/run/x/log.json");
    EXPECT_EQ(c.bundle, "/b/ID");
    EXPECT_EQ(c.container, "ID");
}

TEST(RuncArgs, ReadsEqualsFormsAndDefaults) {
    const auto c = parse_runc_args({"--root=/r", "--log=/l", "create", "-b", "/b", "ID"});
    EXPECT_EQ(c.root, "/r");
    EXPECT_EQ(c.log, "/l");
    EXPECT_EQ(c.bundle, "/b");
    const auto d = parse_runc_args({"create", "ID"});
    EXPECT_EQ(d.root, "/run/runc");
    EXPECT_EQ(d.bundle, ".");
    const auto e = parse_runc_args({"--root", "/r", "delete", "--force", "ID"});
    EXPECT_EQ(e.command, "delete");
    EXPECT_EQ(e.container, "ID");
    EXPECT_EQ(parse_runc_args({"--version"}).command, "");
}

TEST(RuncArgs, AMissingValueIsAnError) {
    EXPECT_THROW(parse_runc_args({"--root"}), cordon::Error);
    EXPECT_THROW(parse_runc_args({"create", "--bundle"}), cordon::Error);
}

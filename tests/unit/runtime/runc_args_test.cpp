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

TEST(ShimRefusal, AsRuncItRefusesCreateAndRunWithoutAUserNamespace) {
    using cordon::runtime::shim_refusal;
    // Through the shim (containerd's shim runs "runc" from PATH for a container the plain
    // engine created; BuildKit runs `runc run`): refused, with the way out.
    EXPECT_NE(shim_refusal("runc", "create", false).find("docker rm"), std::string::npos);
    EXPECT_NE(shim_refusal("/run/cordon/runc-shim/runc", "create", false), "");
    EXPECT_NE(shim_refusal("runc", "run", false).find("DOCKER_BUILDKIT=0"), std::string::npos);
    // A user-namespaced bundle (userns-remap's containers and BuildKit steps) goes on.
    EXPECT_EQ(shim_refusal("runc", "create", true), "");
    EXPECT_EQ(shim_refusal("/run/cordon/runc-shim/runc", "run", true), "");
    // The rest of a container's life goes on (a refused container must still be deletable).
    for (const char* cmd : {"delete", "state", "kill", "start", "exec", "features", ""})
        EXPECT_EQ(shim_refusal("runc", cmd, false), "") << cmd;
    // As the configured runtime (dockerd's cordon-idmap): create is the wrapper's own job.
    EXPECT_EQ(shim_refusal("/usr/libexec/cordon/cordon-runc", "create", false), "");
    EXPECT_EQ(shim_refusal("cordon-runc", "create", false), "");
    EXPECT_EQ(shim_refusal("xrunc", "create", false), "");
}

TEST(ShimRefusal, OnlyTheNameRuncIsTheShim) {
    using cordon::runtime::started_as_shim;
    EXPECT_TRUE(started_as_shim("runc"));
    EXPECT_TRUE(started_as_shim("/run/cordon/runc-shim/runc"));
    EXPECT_FALSE(started_as_shim("cordon-runc"));
    EXPECT_FALSE(started_as_shim("/usr/sbin/runc.real"));
    EXPECT_FALSE(started_as_shim(""));
}

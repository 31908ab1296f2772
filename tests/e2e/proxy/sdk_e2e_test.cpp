// Issue 20: a real Docker client library other than the docker CLI through Cordon's
// socket with isolation on. sdk_conformance.py drives the Python Docker SDK (Debian's
// python3-docker, installed by scripts/bootstrap): create, attach and exec with stdin
// (the SDK's own hijack), logs follow, commit with a config, volumes, networks, build,
// events, and two refusals that must name their rule. Shares the e2e_proxy_test VM.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <string>

#include "cordon_e2e.hpp"
#include "proxy_e2e_fixture.hpp"

using cordon::e2e::describe;
using namespace std::chrono_literals;

namespace {

using namespace cordon::e2e::proxy;

int count_lines_starting(const std::string& text, const std::string& prefix) {
    int n = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string::npos)
            nl = text.size();
        if (text.compare(pos, prefix.size(), prefix) == 0)
            ++n;
        pos = nl + 1;
    }
    return n;
}

TEST_F(ProxyE2e, ThePythonDockerSdkWorksThroughTheSocket) {
    auto probe = cordon::run({"/usr/bin/python3", "-c", "import docker"}, 60s);
    ASSERT_TRUE(probe.ok()) << "python3-docker is missing (scripts/bootstrap installs it): "
                            << describe(probe);
    cordon::SpawnOptions o;
    o.env_overrides = {"DOCKER_HOST=" + vm().docker_host()};
    auto r = cordon::run({"/usr/bin/python3", CORDON_SDK_SCRIPT, vm().test_image()}, 900s, o);
    std::cout << r.out << std::flush;
    EXPECT_TRUE(r.ok()) << describe(r);
    // Every check ran and passed (a script that stopped early cannot pass).
    EXPECT_EQ(count_lines_starting(r.out, "ok "), 11) << r.out << r.err;
    EXPECT_EQ(count_lines_starting(r.out, "FAIL "), 0) << r.out << r.err;
}

// dockerode (npm; installed by scripts/test into tests/e2e/proxy/node): a "name" in the
// create body, "hijack" in exec start, "comment" in commit, "Mountpoint" in volume create,
// its own hijacked attach and exec streams, a classic build, a refusal naming its rule.
TEST_F(ProxyE2e, TheNodeDockerodeClientWorksThroughTheSocket) {
    const std::string dir = CORDON_NODE_CLIENT_DIR;
    ASSERT_TRUE(std::filesystem::exists(dir + "/node_modules/dockerode"))
        << "dockerode is not installed: npm ci --prefix " << dir << " (scripts/test does it)";
    cordon::SpawnOptions o;
    o.env_overrides = {"DOCKER_HOST=" + vm().docker_host()};
    o.working_dir = dir;
    auto r = cordon::run({"node", "conformance.js", vm().test_image()}, 900s, o);
    std::cout << r.out << std::flush;
    EXPECT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(count_lines_starting(r.out, "ok "), 8) << r.out << r.err;
    EXPECT_EQ(count_lines_starting(r.out, "FAIL "), 0) << r.out << r.err;
}

}  // namespace

#pragma once
// Issue 20: third-party Docker client libraries driven through Cordon's socket. The
// scripts print "ok NAME" / "FAIL NAME: ..." per check; these helpers run one and check
// that every check ran and passed (a script that stopped early cannot pass).
// CORDON_SDK_SCRIPT and CORDON_NODE_CLIENT_DIR are set by tests/e2e/proxy/CMakeLists.txt
// (cordon_e2e_client_conformance()).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>

#include "cordon_e2e.hpp"

namespace cordon::e2e::clients {

inline int count_lines_starting(const std::string& text, const std::string& prefix) {
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

inline void expect_all_checks_passed(const ProcessResult& r, int checks) {
    std::cout << r.out << std::flush;
    EXPECT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(count_lines_starting(r.out, "ok "), checks) << r.out << r.err;
    EXPECT_EQ(count_lines_starting(r.out, "FAIL "), 0) << r.out << r.err;
}

inline SpawnOptions client_env(const VmEnvironment& vm, bool isolation_on) {
    SpawnOptions o;
    o.env_overrides = {"DOCKER_HOST=" + vm.docker_host(),
                       std::string("CORDON_ISOLATION=") + (isolation_on ? "on" : "off")};
    return o;
}

// The Python Docker SDK (Debian's python3-docker): 11 checks.
inline void run_python_sdk(const VmEnvironment& vm, bool isolation_on) {
    using namespace std::chrono_literals;
    auto probe = run({"/usr/bin/python3", "-c", "import docker"}, 60s);
    ASSERT_TRUE(probe.ok()) << "python3-docker is missing (scripts/bootstrap installs it): "
                            << describe(probe);
    auto r = run({"/usr/bin/python3", CORDON_SDK_SCRIPT, vm.test_image()}, 900s,
                 client_env(vm, isolation_on));
    expect_all_checks_passed(r, 11);
}

// dockerode (npm, tests/e2e/proxy/node, installed by scripts/test): 8 checks.
inline void run_dockerode(const VmEnvironment& vm, bool isolation_on) {
    using namespace std::chrono_literals;
    const std::string dir = CORDON_NODE_CLIENT_DIR;
    ASSERT_TRUE(std::filesystem::exists(dir + "/node_modules/dockerode"))
        << "dockerode is not installed: npm ci --prefix " << dir << " (scripts/test does it)";
    auto o = client_env(vm, isolation_on);
    o.working_dir = dir;
    auto r = run({"node", "conformance.js", vm.test_image()}, 900s, o);
    expect_all_checks_passed(r, 8);
}

}  // namespace cordon::e2e::clients

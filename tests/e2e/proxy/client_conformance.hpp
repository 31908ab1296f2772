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
#include <set>
#include <string>

#include "cordon_e2e.hpp"
#include "direct_docker_socket.hpp"

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

// The names of the checks a script printed as "ok NAME".
inline std::set<std::string> passed_checks(const std::string& out) {
    std::set<std::string> names;
    std::size_t pos = 0;
    while (pos < out.size()) {
        auto nl = out.find('\n', pos);
        if (nl == std::string::npos)
            nl = out.size();
        if (out.compare(pos, 3, "ok ") == 0)
            names.insert(out.substr(pos + 3, nl - pos - 3));
        pos = nl + 1;
    }
    return names;
}

// `mode`: "on" / "off" (through Cordon with isolation on or off) or "direct" (DOCKER_HOST
// is dockerd's own socket, DirectDockerSocket).
inline SpawnOptions client_env(const std::string& docker_host, const std::string& mode) {
    SpawnOptions o;
    o.env_overrides = {"DOCKER_HOST=" + docker_host, "CORDON_ISOLATION=" + mode};
    return o;
}

// The Python Docker SDK (Debian's python3-docker): 11 checks, 10 directly.
inline ProcessResult python_sdk(const VmEnvironment& vm, const std::string& docker_host,
                                const std::string& mode) {
    using namespace std::chrono_literals;
    auto probe = run({"/usr/bin/python3", "-c", "import docker"}, 60s);
    EXPECT_TRUE(probe.ok()) << "python3-docker is missing (scripts/bootstrap installs it): "
                            << describe(probe);
    return run({"/usr/bin/python3", CORDON_SDK_SCRIPT, vm.test_image()}, 900s,
               client_env(docker_host, mode));
}
inline void run_python_sdk(const VmEnvironment& vm, bool isolation_on) {
    expect_all_checks_passed(python_sdk(vm, vm.docker_host(), isolation_on ? "on" : "off"), 11);
}

// dockerode (npm, tests/e2e/proxy/node, installed by scripts/test): 8 checks, 7 directly.
inline ProcessResult dockerode(const VmEnvironment& vm, const std::string& docker_host,
                               const std::string& mode) {
    using namespace std::chrono_literals;
    const std::string dir = CORDON_NODE_CLIENT_DIR;
    EXPECT_TRUE(std::filesystem::exists(dir + "/node_modules/dockerode"))
        << "dockerode is not installed: npm ci --prefix " << dir << " (scripts/test does it)";
    auto o = client_env(docker_host, mode);
    o.working_dir = dir;
    return run({"node", "conformance.js", vm.test_image()}, 900s, o);
}
inline void run_dockerode(const VmEnvironment& vm, bool isolation_on) {
    expect_all_checks_passed(dockerode(vm, vm.docker_host(), isolation_on ? "on" : "off"), 8);
}

// Issue 20's "no hidden difference": every check that passed against dockerd directly
// passed through Cordon too, and Cordon ran only its own refusal check on top.
inline void expect_same_as_direct(const ProcessResult& direct, const ProcessResult& through,
                                  const std::string& cordon_only_check);

// Runs a client script (python_sdk, dockerode) first against dockerd's own socket, then
// through Cordon with isolation on: `checks` pass through Cordon, all but the refusal
// check directly, and they are the same checks.
template <typename Client>
void expect_works_as_directly(const VmEnvironment& vm, Client client, int checks,
                              const std::string& cordon_only_check) {
    DirectDockerSocket direct_socket(vm);
    const auto direct = client(vm, direct_socket.docker_host(), "direct");
    expect_all_checks_passed(direct, checks - 1);
    const auto through = client(vm, vm.docker_host(), "on");
    expect_all_checks_passed(through, checks);
    expect_same_as_direct(direct, through, cordon_only_check);
}

inline void expect_same_as_direct(const ProcessResult& direct, const ProcessResult& through,
                                  const std::string& cordon_only_check) {
    auto expected = passed_checks(direct.out);
    EXPECT_FALSE(expected.empty()) << direct.out;
    EXPECT_EQ(expected.count(cordon_only_check), 0u);
    expected.insert(cordon_only_check);
    EXPECT_EQ(passed_checks(through.out), expected) << "direct:\n"
                                                    << direct.out << "through Cordon:\n"
                                                    << through.out;
}

}  // namespace cordon::e2e::clients

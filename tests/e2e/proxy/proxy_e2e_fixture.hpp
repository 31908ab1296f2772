#pragma once
// What the proxy e2e files share: one VM for the whole e2e_shared_vm_test binary (isolation
// on), the docker CLI and curl against the host's docker.sock, and the refusal check.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cordon_e2e.hpp"

namespace cordon::e2e::proxy {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

inline std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
    return s;
}

inline bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

// A scratch folder on the host for Dockerfiles and cp payloads.
inline fs::path scratch(const std::string& name) {
    auto p = fs::temp_directory_path() / ("cordon-e2e-proxy-" + std::to_string(::getpid())) / name;
    fs::create_directories(p);
    return p;
}

inline void write_file(const fs::path& p, const std::string& text) {
    std::ofstream(p) << text;
}

inline std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::string socket_path(const VmEnvironment& vm) {
    const std::string& h = vm.docker_host();
    return h.rfind("unix://", 0) == 0 ? h.substr(7) : h;
}

// curl against the host's docker.sock: returns "<status>\n<body>".
inline cordon::ProcessResult curl(const VmEnvironment& vm, const std::string& method,
                                  const std::string& path, const std::string& body) {
    std::vector<std::string> argv{"curl",
                                  "-sS",
                                  "--max-time",
                                  "60",
                                  "--unix-socket",
                                  socket_path(vm),
                                  "-X",
                                  method,
                                  "-H",
                                  "Content-Type: application/json",
                                  "-w",
                                  "\n%{http_code}",
                                  "http://docker" + path};
    cordon::SpawnOptions o;
    if (!body.empty()) {
        argv.insert(argv.end(), {"--data-binary", "@-"});
        o.stdin_data = body;
    }
    return cordon::run(argv, 90s, o);
}

inline int status_of(const cordon::ProcessResult& r) {
    auto nl = r.out.rfind('\n');
    return std::atoi(r.out.c_str() + (nl == std::string::npos ? 0 : nl + 1));
}

// The docker CLI's legacy builder: with CLI 28 and no buildx plugin this is what
// `docker build` uses; the policy checks /build's query (see POLICY.md "Build").
inline cordon::SpawnOptions legacy_builder() {
    cordon::SpawnOptions o;
    o.env_overrides = {"DOCKER_BUILDKIT=0"};
    return o;
}

class ProxyE2e : public ::testing::Test {
  protected:
    void SetUp() override {
        CORDON_REQUIRE_VM();
        auto& vm = VmEnvironment::get();
        static bool checked = false;
        if (!checked) {
            // The policy is only strict with isolation on: make sure it is.
            auto st = vm.vmctl({"isolation", "status", "--json"}, 60s);
            ASSERT_TRUE(st.ok()) << describe(st);
            auto j = nlohmann::json::parse(st.out, nullptr, false);
            if (!j.is_object() || !j.value("enabled", false)) {
                auto on = vm.vmctl({"isolation", "on", "--yes"}, 600s);
                ASSERT_TRUE(on.ok()) << describe(on);
            }
            vm.ensure_test_image();
            checked = true;
        }
    }
    VmEnvironment& vm() { return VmEnvironment::get(); }
    cordon::ProcessResult docker(const std::vector<std::string>& args,
                                 std::chrono::seconds t = 180s) {
        return vm().docker(args, t);
    }
    void rm_container(const std::string& name) { docker({"rm", "-f", name}, 120s); }
};

// The docker CLI through a shell (the table's arguments carry shell quoting).
inline cordon::ProcessResult docker_sh(const VmEnvironment& vm, const std::string& args) {
    cordon::SpawnOptions o;
    o.env_overrides = {"DOCKER_HOST=" + vm.docker_host(),
                       "DOCKER_CONFIG=" + scratch("docker-config").string(), "DOCKER_BUILDKIT=0"};
    return cordon::run({"sh", "-c", "docker " + args + " 2>&1"}, 120s, o);
}

inline void expect_refused(const std::string& what, const std::string& out,
                           const std::string& rule) {
    EXPECT_TRUE(contains(out, "[rule " + rule)) << what << "\n" << out;
    EXPECT_TRUE(contains(out, "enhanced container isolation is on")) << what << "\n" << out;
}

}  // namespace cordon::e2e::proxy

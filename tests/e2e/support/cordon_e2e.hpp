#pragma once
// The e2e harness: one real VM per test binary, started with the real vmctl
// (libvirt + QEMU under TCG here), reached with the real docker CLI through the
// host agent's socket and the guest's policy proxy.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "cordon/subprocess.hpp"

namespace cordon::e2e {

// Where the build put things (set by CMake through compile definitions).
std::string vmctl_path();
std::string image_dir();
// The docker CLI the harness runs (static here), resolved on PATH as exec does; "" if none.
std::string host_docker_cli();

class VmEnvironment : public ::testing::Environment {
  public:
    void SetUp() override;
    void TearDown() override;

    static VmEnvironment& get();
    // vmctl commands run before `vmctl start` (e.g. {"settings", "set", "shared_folders", dir}).
    std::vector<std::vector<std::string>> before_start;
    bool ready() const { return ready_; }
    const std::string& skip_reason() const { return skip_reason_; }

    // Runs vmctl with the harness's environment (state, runtime and cache dirs).
    ProcessResult vmctl(const std::vector<std::string>& args,
                        std::chrono::seconds timeout = std::chrono::seconds(300)) const;
    // The same with extra spawn options (e.g. stdin_data).
    ProcessResult vmctl(const std::vector<std::string>& args, std::chrono::seconds timeout,
                        const SpawnOptions& extra) const;
    // Puts the harness's environment (CORDON_*_DIR, XDG_CONFIG_HOME, ...) into this
    // process, so the host library used directly finds the same VM as vmctl.
    void apply_env() const;
    // Runs the docker CLI against the VM's docker.sock.
    ProcessResult docker(const std::vector<std::string>& args,
                         std::chrono::seconds timeout = std::chrono::seconds(180),
                         const SpawnOptions& extra = {}) const;
    // Runs a command inside the VM (vmctl exec) and returns its output.
    ProcessResult vm_exec(const std::string& shell_command) const;
    // Runs the host's docker CLI (static) inside the VM against dockerd's own socket,
    // the policy proxy bypassed: what dockerd does with a request the policy missed.
    // The CLI is copied into the VM's /run at the first call.
    ProcessResult docker_direct(const std::vector<std::string>& args,
                                std::chrono::seconds timeout = std::chrono::seconds(180)) const;
    // The VM path of that CLI, copied in first if missing. Throws std::runtime_error.
    std::string guest_docker_cli() const;
    // The harness's environment for vmctl ("NAME=value": CORDON_*_DIR, XDG_CONFIG_HOME...).
    const std::vector<std::string>& env() const { return env_; }
    // The docker CLI of the guest's own engine package (Debian 12's docker.io 20.10, taken
    // from the image build's package cache): unlike the host's CLI it has BuildKit built in
    // (DOCKER_BUILDKIT=1 without the buildx plugin). "" when the cache has no such package.
    std::string engine_package_cli() const;
    // The harness's scratch folder on the host.
    const std::string& base_dir() const { return base_; }

    const std::string& docker_host() const { return docker_host_; }
    // A busybox image built from the host's busybox-static (no registry here).
    const std::string& test_image() const { return test_image_; }
    // Imports the test image into the engine in force (after an isolation switch the
    // image moves along, so this is only needed once).
    void ensure_test_image() const;

  private:
    void stop_and_delete();

    std::vector<std::string> env_;
    std::string base_;
    std::string docker_host_;
    std::string test_image_ = "cordon-test/busybox:1";
    bool ready_ = false;
    std::string skip_reason_;
};

// In each test: skips with the reason when the harness could not start a VM for a
// reason outside the test's control (no image built), fails otherwise.
#define CORDON_REQUIRE_VM()                                                            \
    do {                                                                               \
        auto& vm_env = ::cordon::e2e::VmEnvironment::get();                            \
        if (!vm_env.skip_reason().empty())                                             \
            GTEST_SKIP() << vm_env.skip_reason();                                      \
        ASSERT_TRUE(vm_env.ready()) << "the VM did not start; see the harness output"; \
    } while (0)

std::string describe(const ProcessResult& r);

// Suites that share one VM (one test binary, support/e2e_main.cpp) say what they need
// before it starts and clean up after it stops through these hooks, registered by a
// namespace-scope initialiser in the suite's file:
//   const bool registered = cordon::e2e::before_vm_start([](VmEnvironment& vm) {...});
// Before-start hooks run in registration order, before `vmctl start`; after-stop hooks
// after `vmctl delete`. Both return true so the initialiser has a value.
bool before_vm_start(std::function<void(VmEnvironment&)> hook);
bool after_vm_stop(std::function<void()> hook);

}  // namespace cordon::e2e

// Issue 20: real Docker client libraries other than the docker CLI through Cordon's socket
// with isolation on (client_conformance.hpp; the isolation suite runs them with it off).
// Shares the e2e_shared_vm_test VM.
#include <gtest/gtest.h>

#include "client_conformance.hpp"
#include "proxy_e2e_fixture.hpp"

namespace {

using namespace cordon::e2e::proxy;

// sdk_conformance.py: create, attach and exec with stdin (the SDK's own hijack), logs
// follow, commit with a config, volumes, networks, build, events, refusals naming their rule.
TEST_F(ProxyE2e, ThePythonDockerSdkWorksThroughTheSocket) {
    cordon::e2e::clients::run_python_sdk(vm(), true);
}

// node/conformance.js: a "name" in the create body, "hijack" in exec start, "comment" in
// commit, "Mountpoint" in volume create, its own hijacked attach and exec streams, a
// classic build, a refusal naming its rule.
TEST_F(ProxyE2e, TheNodeDockerodeClientWorksThroughTheSocket) {
    cordon::e2e::clients::run_dockerode(vm(), true);
}

}  // namespace

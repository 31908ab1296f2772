// Issue 20: real Docker client libraries other than the docker CLI through Cordon's socket
// with isolation on (client_conformance.hpp; the isolation suite runs them with it off).
// Shares the e2e_shared_vm_test VM.
#include <gtest/gtest.h>

#include "client_conformance.hpp"
#include "proxy_e2e_fixture.hpp"

namespace {

using namespace cordon::e2e::proxy;
using namespace cordon::e2e::clients;

// sdk_conformance.py: create, attach and exec with stdin (the SDK's own hijack), logs
// follow, commit with a config, volumes, networks, build, events, refusals naming their rule.
// First against dockerd's own socket (the proxy bypassed), then through Cordon: the same
// checks pass, plus Cordon's refusal.
TEST_F(ProxyE2e, ThePythonDockerSdkWorksThroughTheSocketAsItDoesDirectly) {
    expect_works_as_directly(vm(), python_sdk, 11, "refusal names its rule");
}

// node/conformance.js: a "name" in the create body, "hijack" in exec start, "comment" in
// commit, "Mountpoint" in volume create, its own hijacked attach and exec streams, a
// classic build, a refusal naming its rule. Compared with dockerd's own socket likewise.
TEST_F(ProxyE2e, TheNodeDockerodeClientWorksThroughTheSocketAsItDoesDirectly) {
    expect_works_as_directly(vm(), dockerode, 8, "a refusal names its rule");
}

}  // namespace

#pragma once
// The engine-settings cases of the ports suite (registry_e2e_test.cpp): registries and a
// service on the host's loopback, reached from the VM through 10.0.2.2.
#include "cordon_e2e.hpp"

namespace cordon::e2e {

// Makes the test CAs and queues the settings the cases need (extra_ca_certs,
// insecure_registries, registry_mirrors, dns) in vm.before_start. Call before the VM
// environment is registered.
void prepare_engine_settings(VmEnvironment& vm);

}  // namespace cordon::e2e

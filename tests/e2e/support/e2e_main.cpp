// The main of every e2e test binary: one real VM (VmEnvironment) for all the suites
// linked into it; suites add what they need before it starts through before_vm_start().
#include <gtest/gtest.h>

#include "cordon_e2e.hpp"

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new cordon::e2e::VmEnvironment);
    return RUN_ALL_TESTS();
}

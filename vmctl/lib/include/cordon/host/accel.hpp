#pragma once
// Choosing KVM or TCG. /dev/kvm can exist and KVM_CREATE_VM succeed while a real
// boot still fails (nested guests), so "auto" boots the image's own kernel under
// KVM for real: a tiny QEMU run (-accel kvm -cpu host, the same CPU the domain
// gets) with no root device, so the kernel initialises every driver and then
// panics "VFS: Unable to mount root fs"; -no-reboot makes QEMU exit on that panic.
// Seeing "Kernel panic" on the serial console within the timeout proves KVM can
// boot this kernel. The answer is cached per (host, host kernel, QEMU, guest
// kernel) in a small JSON file.
#include <chrono>
#include <filesystem>
#include <string>

#include "cordon/host/settings.hpp"

namespace cordon::host {

struct KvmProbe {
    bool usable = false;
    bool cached = false;
    double seconds = 0;  // how long the probe ran (0 when cached)
    std::string detail;  // why not, or "booted to the root-mount panic in 0.8 s"
};

// Runs (or reads from cache_file) the probe for this kernel.
KvmProbe probe_kvm(const std::filesystem::path& kernel, const std::filesystem::path& cache_file,
                   std::chrono::milliseconds timeout = std::chrono::seconds(20));

// The probe run itself, uncached; qemu is the binary to run.
KvmProbe run_kvm_probe(const std::filesystem::path& qemu, const std::filesystem::path& kernel,
                       std::chrono::milliseconds timeout);

struct AcceleratorChoice {
    bool kvm = false;
    std::string reason;  // for the progress line and status
};

}  // namespace cordon::host

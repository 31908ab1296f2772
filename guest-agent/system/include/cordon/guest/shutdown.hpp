#pragma once
// The clean shutdown of the VM: stop the services (reverse start order; SIGTERM, then
// SIGKILL after each one's timeout), sync, unmount the data disk, power off.
#include <functional>
#include <string>
#include <vector>

#include "cordon/guest/supervisor.hpp"

namespace cordon::guest {

struct ShutdownOptions {
    // Unmounted in this order after the services stopped (bind mounts first, then the disk).
    std::vector<std::string> unmount;
    // The steps that touch the system; tests replace them. Defaults: sync(2), umount2(2)
    // falling back to a read-only remount, reboot(RB_POWER_OFF).
    std::function<void()> sync;
    std::function<std::string(const std::string& path)> unmount_one;  // "" or an error text
    std::function<void()> power_off;
};

ShutdownOptions default_shutdown_options();

// Runs the sequence on the supervisor's io_context. `report` gets each problem met (an
// unmount that failed...) before power_off runs; power_off runs even when there were some.
void shutdown_system(Supervisor& supervisor, ShutdownOptions options,
                     std::function<void(const std::vector<std::string>& problems)> report = {});

}  // namespace cordon::guest

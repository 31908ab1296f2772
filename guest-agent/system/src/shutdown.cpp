#include "cordon/guest/shutdown.hpp"

#include <sys/mount.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "cordon/error.hpp"
#include "cordon/log.hpp"
#include "cordon/quiet_asio.hpp"  // GCC 12 false positive in Asio (see the header)

namespace cordon::guest {

ShutdownOptions default_shutdown_options() {
    ShutdownOptions o;
    o.unmount = {"/var/lib/docker", "/var/lib/containerd", "/var/lib/cordon", "/data"};
    o.sync = [] { ::sync(); };
    o.unmount_one = [](const std::string& path) -> std::string {
        if (::umount2(path.c_str(), 0) == 0 || errno == EINVAL || errno == ENOENT)
            return {};
        const std::string why = errno_string(errno);
        // Still busy: at least make it consistent on disk.
        if (::mount(nullptr, path.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0) {
            return "cannot unmount " + path + " (" + why + "); remounted it read-only";
        }
        return "cannot unmount " + path + " (" + why + ") nor remount it read-only";
    };
    o.power_off = [] {
        log::set_stderr_queue(0);  // what the agent logged reaches the console first
        ::sync();
        ::reboot(RB_POWER_OFF);
        log::error("shutdown", "reboot(RB_POWER_OFF) failed: {}", errno_string(errno));
    };
    return o;
}

void shutdown_system(Supervisor& supervisor, ShutdownOptions options,
                     std::function<void(const std::vector<std::string>&)> report) {
    auto opts = std::make_shared<ShutdownOptions>(std::move(options));
    log::info("shutdown", "stopping services");
    supervisor.stop_all([opts, report = std::move(report)] {
        std::vector<std::string> problems;
        if (opts->sync)
            opts->sync();
        for (const auto& path : opts->unmount) {
            if (!opts->unmount_one)
                break;
            std::string err = opts->unmount_one(path);
            if (!err.empty()) {
                log::warn("shutdown", "{}", err);
                problems.push_back(std::move(err));
            }
        }
        if (report)
            report(problems);
        log::info("shutdown", "powering off");
        if (opts->power_off)
            opts->power_off();
    });
}

}  // namespace cordon::guest

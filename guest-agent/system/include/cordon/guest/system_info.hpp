#pragma once
// What the guest agent reports about its VM: kernel, uptime, memory, boot timings (left
// by the init in /run/cordon/boot-times) and the data disk state (/run/cordon/data-disk).
// Paths are parameters so tests can point them at files they write.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace cordon::guest {

struct KernelInfo {
    std::string release;  // uname -r
    std::string version;  // uname -v
    std::string machine;  // uname -m
};
KernelInfo read_kernel();

// Seconds since boot (first field of /proc/uptime). Throws cordon::Error if unreadable.
double read_uptime(const std::string& path = "/proc/uptime");

struct MemoryInfo {
    std::uint64_t total_kib = 0;
    std::uint64_t available_kib = 0;
    std::uint64_t free_kib = 0;
};
// Throws cordon::Error if the file cannot be read or lacks MemTotal.
MemoryInfo read_memory(const std::string& path = "/proc/meminfo");

// Boot timings: one "name seconds" line per step, in the order they happened.
using BootTimes = std::vector<std::pair<std::string, double>>;
// A missing file gives an empty list; malformed lines are skipped.
BootTimes read_boot_times(const std::string& path);
// Appends "name seconds" (seconds = now, from /proc/uptime, unless given).
void append_boot_time(const std::string& path, const std::string& name, double seconds);

// "key=value" lines (the init's state files). A missing file gives an empty map.
std::map<std::string, std::string> read_key_values(const std::string& path);

struct DataDiskState {
    // ok | missing | corrupt | error | unknown (the init wrote nothing)
    std::string state = "unknown";
    std::string device;
    bool formatted = false;  // made on this boot (first boot)
    std::string message;
    bool ok() const { return state == "ok"; }
};
DataDiskState read_data_disk(const std::string& path);

// Reads the unsigned counter in `path` (missing file = 0), adds one and writes it back
// atomically (temporary file, fsync, rename). Returns the new value. Throws cordon::Error
// when the file holds something else or cannot be written.
std::uint64_t bump_counter(const std::string& path);

}  // namespace cordon::guest

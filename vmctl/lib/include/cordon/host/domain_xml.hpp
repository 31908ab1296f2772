#pragma once
// The libvirt domain XML of a Cordon VM, written with libxml2's xmlTextWriter.
#include <filesystem>
#include <optional>
#include <string>

namespace cordon::host {

inline constexpr const char* kChannelName = "org.cordon.channel.0";
inline constexpr const char* kDataDiskSerial = "cordon-data";
inline constexpr const char* kRootDiskSerial = "cordon-root";

struct DomainSpec {
    std::string name;
    bool kvm = false;  // type='kvm' with host-passthrough CPU, else type='qemu' (TCG)
    int vcpus = 2;
    int memory_mib = 2048;
    std::filesystem::path kernel;
    std::filesystem::path initrd;
    std::string cmdline;
    std::optional<std::filesystem::path> rootfs;  // read-only virtio disk, serial cordon-root
    std::string rootfs_format = "raw";
    std::filesystem::path data_disk;       // qcow2 virtio disk, serial cordon-data
    std::filesystem::path channel_socket;  // unix socket QEMU binds for org.cordon.channel.0
    std::filesystem::path console_log;     // serial console log file
};

// Throws cordon::Error if libxml2 fails.
std::string domain_xml(const DomainSpec& spec);

}  // namespace cordon::host

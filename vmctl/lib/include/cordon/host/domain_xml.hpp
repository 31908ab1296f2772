#pragma once
// The libvirt domain XML of a Cordon VM, written with libxml2's xmlTextWriter.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cordon::host {

inline constexpr const char* kChannelName = "org.cordon.channel.0";
inline constexpr const char* kDataDiskSerial = "cordon-data";
inline constexpr const char* kRootDiskSerial = "cordon-root";

// A host folder exported over virtiofs; libvirt starts `binary` as its virtiofsd.
struct FilesystemSpec {
    std::string tag;               // the guest mounts it by this (at most 36 bytes)
    std::filesystem::path source;  // host folder
    std::filesystem::path binary;  // virtiofsd (or a wrapper); empty: libvirt's default
    bool operator==(const FilesystemSpec&) const = default;
};

// A QEMU fw_cfg file the guest reads in /sys/firmware/qemu_fw_cfg/by_name/<name>/raw
// (libvirt <sysinfo type='fwcfg'><entry name=... file=.../>). QEMU reads the host file at
// every start (libvirt labels it for QEMU's user). Not inline: libvirt 9.0 passes an inline
// value to QEMU XML-escaped and with its commas unescaped, so QEMU refuses any JSON.
struct FwCfgEntry {
    std::string name;            // "opt/<reverse domain>/<item>", at most 55 bytes
    std::filesystem::path file;  // absolute path of the file QEMU reads
    bool operator==(const FwCfgEntry&) const = default;
};

inline constexpr const char* kAdminFwCfgName = "opt/org.cordon/admin";
// The engine settings document (cordon/engine_settings.hpp).
inline constexpr const char* kEngineFwCfgName = "opt/org.cordon/engine";

struct DomainSpec {
    std::string name;
    std::string uuid;  // keep the existing domain's UUID when redefining; empty: libvirt picks one
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
    // virtiofs shares; when any, guest memory is memfd-backed and shared (vhost-user needs it).
    std::vector<FilesystemSpec> filesystems;
    // fw_cfg files (the administrator's policy settings, kAdminFwCfgName).
    std::vector<FwCfgEntry> fw_cfg;
};

// Throws cordon::Error if libxml2 fails. The Cordon metadata element carries a
// fingerprint of the spec (domain_fingerprint) so an unchanged VM is not redefined.
std::string domain_xml(const DomainSpec& spec);

// A stable 64-bit FNV-1a fingerprint (16 hex digits) of everything in the spec but the UUID.
std::string domain_fingerprint(const DomainSpec& spec);

// The fingerprint stored in a domain's XML, or empty.
std::string fingerprint_in_xml(const std::string& xml);

}  // namespace cordon::host

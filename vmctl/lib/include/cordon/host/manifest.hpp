#pragma once
// The VM image's manifest.json, in the image folder:
//   { "kernel": "vmlinuz", "initrd": "initrd.img", "rootfs": "rootfs.img",
//     "cmdline": "console=ttyS0 ...", "version": "..." }
// kernel, initrd and cmdline are required; rootfs (a read-only disk) and version
// are optional; rootfs_format ("raw" or "qcow2", default "raw") is optional.
// Relative paths are relative to the image folder.
#include <filesystem>
#include <optional>
#include <string>

namespace cordon::host {

struct ImageManifest {
    std::filesystem::path dir;
    std::filesystem::path kernel;
    std::filesystem::path initrd;
    std::optional<std::filesystem::path> rootfs;
    std::string rootfs_format = "raw";
    std::string cmdline;
    std::string version;
};

// Throws HostError(image) naming the folder, the file or the key when anything is
// missing or of the wrong type.
ImageManifest load_manifest(const std::filesystem::path& image_dir);

}  // namespace cordon::host

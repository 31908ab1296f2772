#pragma once
// Where a Cordon VM keeps its files on the host.
//
//   state dir   (data disk, console log, host agent log):
//       root:  /var/lib/cordon/<vm>          user: $XDG_DATA_HOME/cordon/<vm>
//   runtime dir (sockets, pid file; must be short for sun_path):
//       root:  /run/cordon/<vm>              user: $XDG_RUNTIME_DIR/cordon/<vm>
//                                                   (or /tmp/cordon-<uid>/<vm>)
//   cache dir   (the KVM probe result):
//       root:  /var/cache/cordon             user: $XDG_CACHE_HOME/cordon
//
// CORDON_STATE_DIR, CORDON_RUNTIME_DIR and CORDON_CACHE_DIR replace the base folders
// (the <vm> subfolder is still appended), which tests use to stay apart.
#include <filesystem>
#include <string>

namespace cordon::host {

struct VmPaths {
    std::string vm_name;
    std::filesystem::path state_dir;
    std::filesystem::path runtime_dir;
    std::filesystem::path cache_dir;
    std::filesystem::path data_disk;        // state_dir/data.qcow2
    std::filesystem::path console_log;      // state_dir/console.log
    std::filesystem::path hostagent_log;    // state_dir/hostagent.log
    std::filesystem::path channel_socket;   // runtime_dir/channel.sock (QEMU serves it)
    std::filesystem::path docker_socket;    // runtime_dir/docker.sock (host agent serves it)
    std::filesystem::path control_socket;   // runtime_dir/control.sock (host agent serves it)
    std::filesystem::path shell_socket;     // runtime_dir/shell.sock (host agent serves it)
    std::filesystem::path hostagent_pid;    // runtime_dir/hostagent.pid
    std::filesystem::path kvm_probe_cache;  // cache_dir/kvm-probe.json
};

// Throws HostError(usage) for a VM name that is not [A-Za-z0-9][A-Za-z0-9_.-]{0,47}.
void validate_vm_name(const std::string& name);

VmPaths vm_paths(const std::string& vm_name);

// The user's settings file: $XDG_CONFIG_HOME/cordon/settings.json (~/.config/...).
std::filesystem::path user_settings_path();
// /etc/cordon/admin-settings.json, or $CORDON_ADMIN_SETTINGS.
std::filesystem::path admin_settings_path();
// The image folder used when the image_dir setting is empty: $CORDON_IMAGE_DIR,
// else images/out of the build tree this program runs from (build/vmctl/cli/vmctl ->
// build/images/out) when it holds a manifest.json, else /usr/local/share/cordon/image.
std::filesystem::path default_image_dir();

// Creates dir and its parents with the given mode for the folders it creates.
void make_dirs(const std::filesystem::path& dir, unsigned mode);

// Writes content to path atomically: a temp file in the same folder, fsync,
// rename over path, fsync of the folder. Nothing is half-written on failure.
void write_file_atomic(const std::filesystem::path& path, const std::string& content,
                       unsigned mode = 0644);

// Reads a whole file; throws HostError(kind) naming the file when it cannot.
std::string read_file(const std::filesystem::path& path);

}  // namespace cordon::host

#pragma once
// Shared host folders: the `shared_folders` setting, how each folder reaches the VM
// (two virtiofs devices per folder, one per isolation mode, see docs/ARCHITECTURE.md),
// the ID maps virtiofsd runs under, and what the guest learns on its kernel command line.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cordon::host {

// The VM uid/gid of container root with isolation on (the `cordon` user's subordinate
// range) and the overflow id that stands for "nobody".
inline constexpr std::uint32_t kRemapBase = 100000;
inline constexpr std::uint32_t kOverflowId = 65534;
inline constexpr const char* kVirtiofsdPath = "/usr/lib/qemu/virtiofsd";

// One line of a user namespace ID map: ids [inner, inner+count) inside are
// [outer, outer+count) outside.
struct IdMapEntry {
    std::uint32_t inner = 0, outer = 0, count = 0;
    bool operator==(const IdMapEntry&) const = default;
};

struct IdMap {
    std::vector<IdMapEntry> entries;
    bool maps_root() const;           // some entry covers inner id 0
    std::string text() const;         // "0:65534:1,100000:1000:1" (what parse_id_map reads)
    std::string kernel_text() const;  // "0 65534 1\n100000 1000 1\n" (for /proc/PID/uid_map)
};

// Parses "inner:outer:count[,...]". Throws cordon::Error for bad syntax, a zero count,
// overflow, overlapping ranges (inside or outside) or more than 5 entries.
IdMap parse_id_map(const std::string& text);

// The map virtiofsd's user namespace gets for an owner id (host uid or gid) when the
// guest runs in the given isolation mode: container root (VM id 0 with isolation off,
// 100000 with it on) becomes the owner; with isolation on, VM id 0 becomes nobody.
IdMap share_id_map(std::uint32_t owner, bool isolation);

// The host account that owns what containers create in shared folders.
struct ShareOwner {
    std::uint32_t uid = 0, gid = 0;
    std::string home;  // for "~" in shared_folders; empty when unknown
    std::string text() const { return std::to_string(uid) + ":" + std::to_string(gid); }
};

// `share_owner` setting: "" is the user running Cordon (the invoking user of sudo when
// run as root through sudo), "NAME" a user name, "UID:GID" numbers. Throws HostError(usage).
ShareOwner resolve_share_owner(const std::string& setting);

struct SharedFolder {
    std::string path;  // absolute, clean (no '.', '..', '//', trailing '/'); "~" allowed in settings
    bool readonly = false;
    bool operator==(const SharedFolder&) const = default;
};

// Checks the JSON value of `shared_folders`: an array of {"path": "...", "readonly": bool}.
// Returns an empty string when valid, else what was expected.
std::string check_shared_folders(const nlohmann::json& value);
// Reads the (checked) JSON value, expanding "~" and "~/..." to home. Throws HostError(config).
std::vector<SharedFolder> shared_folders_from_json(const nlohmann::json& value,
                                                   const std::string& home);
nlohmann::json shared_folders_to_json(const std::vector<SharedFolder>& folders);
// "PATH[:ro],PATH[:ro]..." as a user types it (a JSON array is accepted too).
nlohmann::json parse_shared_folders_text(const std::string& text);

// Why a path cannot be a shared folder (empty: it can): not absolute or not clean, or the
// VM's own system folders (/, /proc, /etc, /usr, /var, ...) that it would hide in the VM.
std::string share_path_problem(const std::string& path);

// The virtiofs tag of folder #index for one isolation mode ("cordon-share-3-on").
std::string share_tag(std::size_t index, bool isolation);

// The kernel command line words telling the guest agent what to mount:
// " cordon.share=INDEX,rw|ro,PERCENT-ENCODED-PATH" per folder.
std::string share_cmdline(const std::vector<SharedFolder>& folders);

// Percent-encodes every byte outside [A-Za-z0-9/._~-] (so a path is one command-line word).
std::string percent_encode(const std::string& s);

// Writes the per-share wrapper scripts libvirt runs as each folder's virtiofsd
// (<binary path=...>): "exec cordon-virtiofsd --uid-map ... -- virtiofsd \"$@\"". The
// scripts live in dir, are rewritten on every start (the owner may change without the
// domain changing) and are named by virtiofs_wrapper_path().
std::filesystem::path virtiofs_wrapper_path(const std::filesystem::path& dir, std::size_t index,
                                            bool isolation);
// A read-only folder gets --read-only (the wrapper bind-mounts it read-only for virtiofsd).
void write_virtiofs_wrappers(const std::filesystem::path& dir,
                             const std::vector<SharedFolder>& folders, const ShareOwner& owner,
                             const std::filesystem::path& wrapper_exe);

// Finds cordon-virtiofsd: $CORDON_VIRTIOFSD_WRAPPER, next to this program or in the build
// tree (build/vmctl/virtiofs/), then PATH. Throws HostError with the build hint.
std::filesystem::path find_virtiofs_wrapper();

}  // namespace cordon::host

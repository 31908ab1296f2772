#pragma once
// ID-mapped mounts (Linux >= 5.12; open_tree + mount_setattr(MOUNT_ATTR_IDMAP) +
// move_mount). A file stored on disk with uid k is seen through an ID-mapped
// mount as uid start+k, and a file created through it by uid start+k is stored
// as k. This is how a container whose root is VM uid 165536 uses image layers
// and volumes stored with the plain IDs 0..65535, without a chown.
#include <cstdint>
#include <string>

#include "cordon/engine/subid.hpp"
#include "cordon/unique_fd.hpp"

namespace cordon::runtime {

using engine::IdRange;

// A user namespace mapping 0..count-1 to the given ranges, held open by an fd
// (the short-lived process that created it is gone when this returns).
UniqueFd make_userns_fd(const IdRange& uids, const IdRange& gids);

// Clones the mount tree at `source` (a folder or a file), ID-maps the clone with
// `userns_fd` and attaches it at `target` (which must exist, of the same kind).
// Throws cordon::Error naming the syscall, the path and errno; EINVAL from
// mount_setattr usually means the filesystem cannot be ID-mapped on this kernel.
void idmap_bind(const std::string& source, const std::string& target, int userns_fd);

// Whether `path`'s filesystem accepts ID-mapped mounts (tries it on a detached
// clone that is never attached). `why` gets the errno text when it does not.
// Mounts an overlay (options from overlay_options) at `target` with credentials
// whose fsuid/fsgid are `owner` (keeping root's capabilities): overlayfs does its
// own work (work/ folders, copy-up) with the mounter's credentials, and those
// must be mapped in the ID-mapped upper layer, where VM uid 0 is not.
// `cwd` is the folder relative layer paths in `options` start from (short options:
// the kernel caps them at one page).
void mount_overlay_as(const std::string& options, const std::string& target,
                      std::uint32_t owner_uid, std::uint32_t owner_gid,
                      const std::string& cwd = "/");

bool can_idmap(const std::string& path, int userns_fd, std::string* why = nullptr);

}  // namespace cordon::runtime

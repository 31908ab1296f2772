#pragma once
// Bind sources resolved once (issue 13, the symlink swap). The Docker socket policy checks
// a bind source when the container is created; dockerd and runc resolve the same path
// again at every start, as VM root. Whoever can write in a shared folder (the host user,
// a container that binds it) can swap a checked folder for a symlink in between, and runc
// would then mount wherever it points. So, at every `runc create` with isolation on:
//   - a source inside a shared folder is opened once, from the folder's root, with
//     openat2(RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH), and that open file is bind-mounted
//     at a staging point only VM root can write; runc mounts the staging point;
//   - a source dockerd mounted itself (a local volume with o=bind) is checked by what the
//     kernel mounted there: a shared folder, or a filesystem of its own.
#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cordon/mountinfo.hpp"
#include "cordon/unique_fd.hpp"

namespace cordon::runtime {

// The shared host folders as the guest agent mounted them: every virtiofs mount point.
std::vector<std::string> shared_folder_roots(const std::vector<MountEntry>& mounts);

// The innermost shared folder that holds `path` (equal to it or a parent), if any.
std::optional<std::string> shared_folder_of(const std::string& path,
                                            const std::vector<std::string>& roots);

// Why the bind source `source` must not be mounted, or empty. Only a source that is itself
// a mount point is judged (dockerd mounts a local volume's device there before runc runs):
// it must be a shared folder (virtiofs), or a tmpfs / NFS / CIFS filesystem mounted
// nowhere else in the VM than at volume folders (".../volumes/NAME/_data") and the
// container's own mounts (".../containers/ID/mounts/..."). What a swapped symlink makes
// dockerd mount (part of the root disk, /run, /dev/shm, procfs...) fails that.
std::string foreign_mount_refusal(const std::string& source, const std::vector<MountEntry>& mounts);

// Opens `path` (inside the shared folder `root`) as O_PATH without following any symlink
// and without leaving `root`. Throws cordon::Error naming the path: "goes through a
// symlink" (ELOOP), "leads out of the shared folder" (EXDEV), or the errno.
UniqueFd open_without_symlinks(const std::string& root, const std::string& path);

// Bind-mounts (recursively) what `fd` refers to at `target`, created first as an empty
// folder or file to match. Throws cordon::Error.
void bind_from_fd(int fd, const std::string& target);

// For each bind mount of `spec` whose source lies in a shared folder: opens it with
// open_without_symlinks and binds it at `dir`/p<INDEX>. Returns mount index -> staging
// path. Sources that do not exist are left to runc (it reports them). Throws
// cordon::Error on the first source that cannot be pinned; the caller tears `dir` down.
std::map<std::size_t, std::string> pin_shared_binds(const nlohmann::json& spec,
                                                     const std::vector<std::string>& roots,
                                                     const std::string& dir);

// Throws cordon::Error for the first bind source of `spec` (after `pinned` replaced some)
// that foreign_mount_refusal refuses.
void check_bind_landings(const nlohmann::json& spec,
                         const std::map<std::size_t, std::string>& pinned,
                         const std::vector<MountEntry>& mounts);

// Why `source`, a bind source of a container with isolation on, must not be mounted, or
// empty. Allowed: a path inside a shared folder (`roots`), the proxy's container-facing
// Docker socket (`container_socket`), and what dockerd makes for containers under its data
// root (`engine_root`, or one "UID.GID" folder below it for userns-remap):
// containers/<64 hex>/{hosts,hostname,resolv.conf,mounts/...} (another container's too:
// --network/--ipc container:X) and volumes/<name>/_data[/...]. Anything else is a VM path
// the policy should have refused (or never saw: --volumes-from a container created while
// isolation was off), so it is refused here too.
std::string bind_source_refusal(const std::string& source, const std::vector<std::string>& roots,
                                const std::string& engine_root,
                                const std::string& container_socket);

// Throws cordon::Error for the first bind source of `spec` not already pinned that
// bind_source_refusal refuses.
void check_bind_sources(const nlohmann::json& spec,
                        const std::map<std::size_t, std::string>& pinned,
                        const std::vector<std::string>& roots, const std::string& engine_root,
                        const std::string& container_socket);

}  // namespace cordon::runtime

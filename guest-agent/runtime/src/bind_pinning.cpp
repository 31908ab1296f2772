#include "cordon/runtime/bind_pinning.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "cordon/error.hpp"

namespace cordon::runtime {
namespace {

using json = nlohmann::json;

bool path_within(const std::string& path, const std::string& folder) {
    if (folder == "/")
        return !path.empty() && path.front() == '/';
    return path == folder || path.rfind(folder + "/", 0) == 0;
}

// runc treats a mount as a bind when its type is "bind" or an option is bind/rbind.
bool mount_is_bind(const json& m) {
    if (!m.is_object() || !m.contains("source") || !m["source"].is_string())
        return false;
    if (m.contains("type") && m["type"] == "bind")
        return true;
    if (!m.contains("options") || !m["options"].is_array())
        return false;
    return std::any_of(m["options"].begin(), m["options"].end(),
                       [](const json& o) { return o == "bind" || o == "rbind"; });
}

// Calls fn(index, source) for each bind mount of `spec` that `pinned` did not replace.
template <typename Fn>
void for_each_unpinned_bind(const json& spec, const std::map<std::size_t, std::string>& pinned,
                            Fn&& fn) {
    if (!spec.contains("mounts") || !spec["mounts"].is_array())
        return;
    for (std::size_t i = 0; i < spec["mounts"].size(); ++i) {
        const json& m = spec["mounts"][i];
        if (mount_is_bind(m) && !pinned.count(i))
            fn(i, m["source"].get<std::string>());
    }
}

// dockerd's own mount points for a container: volume folders and the container's mounts
// folder (/dev/shm's tmpfs).
bool engine_mount_point(const std::string& point) {
    const auto slash = point.rfind('/');
    if (slash == std::string::npos)
        return false;
    if (point.compare(slash, std::string::npos, "/_data") == 0) {
        const auto volume = point.rfind('/', slash - 1);
        const auto parent = volume == std::string::npos ? volume : point.rfind('/', volume - 1);
        return parent != std::string::npos &&
               point.compare(parent, volume - parent, "/volumes") == 0;
    }
    const auto mounts = point.find("/containers/");
    return mounts != std::string::npos && point.find("/mounts/", mounts) != std::string::npos;
}

bool own_filesystem_type(const std::string& type) {
    return type == "tmpfs" || type == "nfs" || type == "nfs4" || type == "cifs" || type == "smb3";
}

}  // namespace

std::vector<std::string> shared_folder_roots(const std::vector<MountEntry>& mounts) {
    std::vector<std::string> roots;
    for (const auto& m : mounts)
        if (m.fs_type == "virtiofs" &&
            std::find(roots.begin(), roots.end(), m.mount_point) == roots.end())
            roots.push_back(m.mount_point);
    return roots;
}

std::optional<std::string> shared_folder_of(const std::string& path,
                                            const std::vector<std::string>& roots) {
    std::optional<std::string> best;
    for (const auto& root : roots)
        if (path_within(path, root) && (!best || root.size() > best->size()))
            best = root;
    return best;
}

std::string foreign_mount_refusal(const std::string& source,
                                  const std::vector<MountEntry>& mounts) {
    // The mount on top at `source` (mountinfo lists mounts in the order they were made).
    const MountEntry* top = nullptr;
    for (const auto& m : mounts)
        if (m.mount_point == source)
            top = &m;
    if (!top)
        return {};  // a folder or file, not a mount dockerd made: nothing was resolved for it
    if (top->fs_type == "virtiofs")
        return {};  // a shared folder, or part of one
    const std::string what = top->fs_type + " " + top->source + " (folder " + top->root + ")";
    if (!own_filesystem_type(top->fs_type) || top->root != "/")
        return "the bind source " + source + " is a mount of " + what +
               ", which is neither a shared folder nor a filesystem of its own";
    for (const auto& m : mounts)
        if (m.device == top->device && m.mount_point != source && !engine_mount_point(m.mount_point))
            return "the bind source " + source + " is a mount of " + what +
                   ", the filesystem the VM also has at " + m.mount_point;
    return {};
}

namespace {

// openat2 from the shared folder's root; the fd, or -errno.
long open_beneath(const std::string& root, const std::string& path) {
    const UniqueFd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd)
        return -errno;
    std::string rel = path.substr(root == "/" ? 1 : root.size());
    while (!rel.empty() && rel.front() == '/')
        rel.erase(0, 1);
    if (rel.empty())
        rel = ".";
    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH;
    const long fd = ::syscall(SYS_openat2, root_fd.get(), rel.c_str(), &how, sizeof how);
    return fd >= 0 ? fd : -errno;
}

// Owns what open_beneath returned, or throws the error it stands for.
UniqueFd opened_or_throw(long fd, const std::string& root, const std::string& path) {
    if (fd >= 0)
        return UniqueFd(static_cast<int>(fd));
    if (fd == -ELOOP)
        throw Error("the bind source goes through a symlink, which it did not when the Docker "
                    "socket policy checked it; the engine would follow it to wherever it points "
                    "now, so it is not mounted",
                    path,
                    "recreate the container (docker rm, then docker run or docker compose up) so "
                    "the policy checks the path again");
    if (fd == -EXDEV)
        throw Error("the bind source leads out of the shared folder " + root, path,
                    "recreate the container with a path inside the shared folder");
    errno = static_cast<int>(-fd);
    throw_errno("cannot open the bind source", path);
}

}  // namespace

UniqueFd open_without_symlinks(const std::string& root, const std::string& path) {
    if (!path_within(path, root))
        throw Error("the bind source is not inside the shared folder " + root, path);
    return opened_or_throw(open_beneath(root, path), root, path);
}

void bind_from_fd(int fd, const std::string& target) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        throw_errno("cannot inspect the bind source for", target);
    if (S_ISDIR(st.st_mode)) {
        if (::mkdir(target.c_str(), 0700) != 0 && errno != EEXIST)
            throw_errno("cannot create a mount point", target);
    } else {
        const UniqueFd file(::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
        if (!file)
            throw_errno("cannot create a mount point", target);
    }
    // The kernel follows this magic link to the open file itself, not to a path.
    const std::string from = "/proc/self/fd/" + std::to_string(fd);
    if (::mount(from.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
        throw_errno("cannot bind the opened bind source at", target);
}

std::map<std::size_t, std::string> pin_shared_binds(const json& spec,
                                                     const std::vector<std::string>& roots,
                                                     const std::string& dir) {
    std::map<std::size_t, std::string> pinned;
    if (!spec.contains("mounts") || !spec["mounts"].is_array())
        return pinned;
    for (std::size_t i = 0; i < spec["mounts"].size(); ++i) {
        const json& m = spec["mounts"][i];
        if (!mount_is_bind(m))
            continue;
        const std::string source = m["source"].get<std::string>();
        const auto root = shared_folder_of(source, roots);
        if (!root)
            continue;
        const long opened = open_beneath(*root, source);
        if (opened == -ENOENT)
            continue;  // runc reports a missing source itself
        const UniqueFd fd = opened_or_throw(opened, *root, source);
        const std::string target = dir + "/p" + std::to_string(i);
        bind_from_fd(fd.get(), target);
        pinned[i] = target;
    }
    return pinned;
}

void check_bind_landings(const json& spec, const std::map<std::size_t, std::string>& pinned,
                         const std::vector<MountEntry>& mounts) {
    for_each_unpinned_bind(spec, pinned, [&](std::size_t i, const std::string& source) {
        if (const std::string why = foreign_mount_refusal(source, mounts); !why.empty())
            throw Error(why + ": a symlink swapped in after the Docker socket policy checked the "
                              "volume's device would have made the engine mount it",
                        "mounts[" + std::to_string(i) + "]",
                        "remove the volume and create it again with a device inside a shared "
                        "folder (docker volume rm, docker volume create)");
    });
}

namespace {

std::vector<std::string> path_segments(const std::string& path) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i <= path.size()) {
        const auto slash = path.find('/', i);
        out.push_back(path.substr(i, slash == std::string::npos ? std::string::npos : slash - i));
        if (slash == std::string::npos)
            break;
        i = slash + 1;
    }
    return out;
}

bool container_id(const std::string& s) {
    return s.size() == 64 &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// userns-remap's data root below the engine root: "100000.100000".
bool remap_folder(const std::string& s) {
    const auto dot = s.find('.');
    auto digits = [](const std::string& d) {
        return !d.empty() && std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    return dot != std::string::npos && digits(s.substr(0, dot)) && digits(s.substr(dot + 1));
}

bool engine_made(const std::string& source, const std::string& engine_root) {
    if (engine_root.empty() || source.rfind(engine_root + "/", 0) != 0)
        return false;
    auto seg = path_segments(source.substr(engine_root.size() + 1));
    for (const auto& s : seg)
        if (s.empty() || s == "." || s == "..")
            return false;  // dockerd writes clean paths
    std::size_t i = 0;
    if (!seg.empty() && remap_folder(seg[0]))
        i = 1;
    if (seg.size() < i + 3)
        return false;
    if (seg[i] == "volumes")
        return seg[i + 2] == "_data";
    if (seg[i] == "containers" && container_id(seg[i + 1])) {
        const std::string& what = seg[i + 2];
        if (what == "mounts")
            return seg.size() > i + 3;
        return seg.size() == i + 3 && (what == "hosts" || what == "hostname" || what == "resolv.conf");
    }
    return false;
}

}  // namespace

std::string bind_source_refusal(const std::string& source, const std::vector<std::string>& roots,
                                const std::string& engine_root,
                                const std::string& container_socket) {
    if (shared_folder_of(source, roots) || engine_made(source, engine_root) ||
        (!container_socket.empty() && source == container_socket))
        return {};
    return "the bind source " + source +
           " is neither in a shared folder nor made by the engine for containers (a volume, a "
           "container's hosts or resolv.conf); with isolation on no other VM path is mounted into "
           "a container";
}

void check_bind_sources(const json& spec, const std::map<std::size_t, std::string>& pinned,
                        const std::vector<std::string>& roots, const std::string& engine_root,
                        const std::string& container_socket) {
    for_each_unpinned_bind(spec, pinned, [&](std::size_t i, const std::string& source) {
        if (const std::string why =
                bind_source_refusal(source, roots, engine_root, container_socket);
            !why.empty())
            throw Error(why + " (a request the Docker socket policy did not check, e.g. "
                              "--volumes-from a container created while isolation was off)",
                        "mounts[" + std::to_string(i) + "]",
                        "recreate the container with binds from shared folders (docker rm, then "
                        "docker run)");
    });
}

}  // namespace cordon::runtime

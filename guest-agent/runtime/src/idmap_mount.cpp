#include "cordon/runtime/idmap_mount.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/mount.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "cordon/error.hpp"

namespace cordon::runtime {
namespace {

void write_proc(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    out.flush();
    if (!out)
        throw Error("cannot write the ID map", path, "the agent must run as root in the VM");
}

UniqueFd open_clone(const std::string& source) {
    const int fd = static_cast<int>(
        ::open_tree(AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (fd < 0)
        throw_errno("open_tree(OPEN_TREE_CLONE) failed", source);
    return UniqueFd(fd);
}

int set_idmap(int tree_fd, int userns_fd) {
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<std::uint64_t>(userns_fd);
    return ::mount_setattr(tree_fd, "", AT_EMPTY_PATH, &attr, sizeof attr);
}

}  // namespace

UniqueFd make_userns_fd(const IdRange& uids, const IdRange& gids) {
    int ready[2];
    int go[2];
    if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(go, O_CLOEXEC) != 0)
        throw_errno("pipe2 failed");
    UniqueFd ready_r(ready[0]), ready_w(ready[1]), go_r(go[0]), go_w(go[1]);
    const pid_t pid = ::fork();
    if (pid < 0)
        throw_errno("fork failed", "a user namespace for an ID-mapped mount");
    if (pid == 0) {
        // Child: only async-signal-safe calls until _exit.
        ::close(go_w.get());  // so that the read below sees EOF when the parent closes its end
        char c = ::unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
        (void)!::write(ready_w.get(), &c, 1);
        (void)!::read(go_r.get(), &c, 1);  // returns when the parent closes its end
        ::_exit(0);
    }
    ready_w.reset();
    go_r.reset();
    auto reap = [&] {
        go_w.reset();
        int st = 0;
        while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
    };
    char c = 0;
    if (::read(ready_r.get(), &c, 1) != 1 || c != 'y') {
        reap();
        throw Error("cannot create a user namespace for an ID-mapped mount", {},
                    "the kernel must allow user namespaces (user.max_user_namespaces > 0)");
    }
    const std::string proc = "/proc/" + std::to_string(pid);
    UniqueFd ns;
    try {
        write_proc(proc + "/uid_map",
                   "0 " + std::to_string(uids.start) + " " + std::to_string(uids.count) + "\n");
        write_proc(proc + "/gid_map",
                   "0 " + std::to_string(gids.start) + " " + std::to_string(gids.count) + "\n");
        ns.reset(::open((proc + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
        if (!ns)
            throw_errno("cannot open the user namespace", proc + "/ns/user");
    } catch (...) {
        reap();
        throw;
    }
    reap();
    return ns;
}

void idmap_bind(const std::string& source, const std::string& target, int userns_fd) {
    UniqueFd tree = open_clone(source);
    if (set_idmap(tree.get(), userns_fd) != 0)
        throw_errno("mount_setattr(MOUNT_ATTR_IDMAP) failed", source,
                    "the filesystem must support ID-mapped mounts on this kernel");
    if (::move_mount(tree.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
        throw_errno("move_mount failed", target);
}

void mount_overlay_as(const std::string& options, const std::string& target,
                      std::uint32_t owner_uid, std::uint32_t owner_gid, const std::string& cwd) {
    int result[2];
    if (::pipe2(result, O_CLOEXEC) != 0)
        throw_errno("pipe2 failed");
    UniqueFd rd(result[0]), wr(result[1]);
    const pid_t pid = ::fork();
    if (pid < 0)
        throw_errno("fork failed", target);
    if (pid == 0) {
        int err = 0;
        // Keep the capabilities when the fs IDs leave 0 (no set-ID fixup).
        if (::chdir(cwd.c_str()) != 0 ||
            ::prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0) != 0 ||
            ::setgroups(0, nullptr) != 0) {
            err = errno;
        } else {
            ::setfsgid(owner_gid);
            ::setfsuid(owner_uid);
            if (::mount("overlay", target.c_str(), "overlay", 0, options.c_str()) != 0)
                err = errno;
        }
        (void)!::write(wr.get(), &err, sizeof err);
        ::_exit(0);
    }
    wr.reset();
    int err = EIO;
    const auto n = ::read(rd.get(), &err, sizeof err);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (n != static_cast<ssize_t>(sizeof err))
        err = EIO;
    if (err != 0)
        throw Error("mount(overlay) over ID-mapped layers failed: " + errno_string(err), target,
                    "the kernel must support overlayfs on ID-mapped layers (Linux 5.19 or later)");
}

bool can_idmap(const std::string& path, int userns_fd, std::string* why) {
    try {
        UniqueFd tree = open_clone(path);
        if (set_idmap(tree.get(), userns_fd) != 0) {
            if (why)
                *why = "mount_setattr(MOUNT_ATTR_IDMAP): " + errno_string(errno);
            return false;
        }
        return true;  // the detached clone goes away with the fd
    } catch (const std::exception& e) {
        if (why)
            *why = e.what();
        return false;
    }
}

}  // namespace cordon::runtime

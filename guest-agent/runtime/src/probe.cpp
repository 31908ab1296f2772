#include "probe.hpp"

#include <fcntl.h>
#include <linux/securebits.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "cordon/error.hpp"
#include "cordon/runtime/idmap_mount.hpp"
#include "cordon/runtime/overlay_rootfs.hpp"

namespace cordon::runtime {
namespace fs = std::filesystem;

// Checks, step by step on the running kernel, everything exclusive ranges rely on;
// prints one line per step and returns 0 only when all passed.
int run_probe(const std::string& dir) {
    int failures = 0;
    auto step = [&](const std::string& name, bool ok, const std::string& detail) {
        std::cout << (ok ? "ok   " : "FAIL ") << name << (detail.empty() ? "" : ": " + detail)
                  << "\n";
        if (!ok)
            ++failures;
    };
    const IdRange range{165536, 65536};
    std::error_code ec;
    fs::remove_all(dir, ec);
    for (const char* sub : {"lower", "layer/diff", "layer/work", "l0", "up", "root"})
        fs::create_directories(fs::path(dir) / sub);
    { UniqueFd f(::open((dir + "/lower/f").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644)); }
    try {
        UniqueFd ns = make_userns_fd(range, range);
        std::string why;
        step("ID-mapped mount of " + dir, can_idmap(dir, ns.get(), &why), why);
        idmap_bind(dir + "/lower", dir + "/l0", ns.get());
        idmap_bind(dir + "/layer", dir + "/up", ns.get());
        struct stat st {};
        ::stat((dir + "/l0/f").c_str(), &st);
        step("stored uid 0 seen as " + std::to_string(range.start), st.st_uid == range.start,
             "uid " + std::to_string(st.st_uid));
        const std::string opts = overlay_options({dir + "/l0"}, dir + "/up/diff", dir + "/up/work");
        bool mounted = true;
        try {
            mount_overlay_as(opts, dir + "/root", range.start, range.start);
            step("overlay over ID-mapped layers", true, "");
        } catch (const std::exception& e) {
            mounted = false;
            step("overlay over ID-mapped layers", false, e.what());
        }
        // overlayfs keeps private clones of its layers: the staged mounts can go.
        if (mounted) {
            std::string why2;
            const bool ok = can_idmap(dir + "/root", ns.get(), &why2);
            step("ID-mapped mount of the overlay itself (expected to fail before Linux 6.x)", true,
                 ok ? "accepted" : why2);
        }
        {
            ::setfsuid(range.start);
            ::setfsgid(range.start);
            const int fd = ::open((dir + "/l0/h").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            const int err = errno;
            ::setfsuid(0);
            ::setfsgid(0);
            step("create as uid " + std::to_string(range.start) +
                     " (no capabilities) on the ID-mapped folder",
                 fd >= 0, fd >= 0 ? "" : errno_string(err));
            if (fd >= 0)
                ::close(fd);
            ::stat((dir + "/lower/h").c_str(), &st);
            step("stored on disk as uid 0", fd >= 0 && st.st_uid == 0,
                 "uid " + std::to_string(st.st_uid));
        }
        const bool late = ::getenv("CORDON_PROBE_LATE_DETACH") != nullptr;
        if (!late) {
            ::umount2((dir + "/l0").c_str(), MNT_DETACH);
            ::umount2((dir + "/up").c_str(), MNT_DETACH);
        }
        if (::getenv("CORDON_PROBE_KEEP_CAPS"))
            ::prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0);
        if (mounted) {
            ::stat((dir + "/root/f").c_str(), &st);
            step("overlay shows the lower file as " + std::to_string(range.start),
                 st.st_uid == range.start, "uid " + std::to_string(st.st_uid));
            ::setfsuid(range.start);
            ::setfsgid(range.start);
            const int fd = ::open((dir + "/root/g").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            const int err = errno;
            ::setfsuid(0);
            ::setfsgid(0);
            step("create as uid " + std::to_string(range.start) + " through the overlay", fd >= 0,
                 fd >= 0 ? "" : errno_string(err));
            if (fd >= 0)
                ::close(fd);
            ::stat((dir + "/layer/diff/g").c_str(), &st);
            step("stored on disk as uid 0", fd >= 0 && st.st_uid == 0,
                 "uid " + std::to_string(st.st_uid));
            ::umount2((dir + "/root").c_str(), MNT_DETACH);
        }
        if (late) {
            ::umount2((dir + "/l0").c_str(), MNT_DETACH);
            ::umount2((dir + "/up").c_str(), MNT_DETACH);
        }
    } catch (const std::exception& e) {
        step("setup", false, e.what());
    }
    fs::remove_all(dir, ec);
    return failures == 0 ? 0 : 1;
}

}  // namespace cordon::runtime

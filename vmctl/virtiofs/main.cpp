// cordon-virtiofsd: libvirt starts it in place of virtiofsd (<binary path=...> of a
// <filesystem>, through a small per-share script the host library writes). It enters a
// new user namespace with the ID maps it is given, becomes root of that namespace and
// executes the real virtiofsd with libvirt's arguments. Inside, virtiofsd creates a
// file for guest uid N as namespace uid N, which the kernel stores as the host uid the
// map gives N: the guest's container root becomes the host user.
//
//   cordon-virtiofsd --uid-map 0:65534:1,100000:1000:1 --gid-map 0:65534:1,100000:1000:1
//                    [--read-only] [--virtiofsd /usr/lib/qemu/virtiofsd] -- <virtiofsd arguments>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cordon/host/shares.hpp"

namespace {

constexpr const char* kDefaultVirtiofsd = "/usr/lib/qemu/virtiofsd";

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "cordon-virtiofsd: %s\n", what.c_str());
    std::_Exit(2);
}

std::string err(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

bool write_all(const std::string& file, const std::string& text) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    return ok;
}

// virtiofsd raises RLIMIT_NOFILE itself, which a user namespace may not do: raise it
// here, in the host namespace, to what virtiofsd would ask for.
void raise_nofile() {
    rlimit cur{};
    if (::getrlimit(RLIMIT_NOFILE, &cur) != 0)
        return;
    rlim_t want = 1000000;
    if (FILE* f = std::fopen("/proc/sys/fs/file-max", "r")) {
        unsigned long long max = 0;
        if (std::fscanf(f, "%llu", &max) == 1 && max > 16384 && max - 16384 < want)
            want = static_cast<rlim_t>(max - 16384);
        std::fclose(f);
    }
    if (cur.rlim_cur >= want)
        return;
    rlimit r{want, want > cur.rlim_max ? want : cur.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &r) != 0) {  // no CAP_SYS_RESOURCE: up to the hard limit
        r = {cur.rlim_max, cur.rlim_max};
        ::setrlimit(RLIMIT_NOFILE, &r);
    }
}

// The folder virtiofsd serves: "-o source=DIR[,...]" or "-osource=DIR" in its arguments.
std::string source_of(const std::vector<char*>& args) {
    for (std::size_t k = 1; k + 1 < args.size(); ++k) {
        std::string a = args[k];
        std::string opts;
        if (a == "-o" && args[k + 1])
            opts = args[k + 1];
        else if (a.rfind("-o", 0) == 0 && a.size() > 2)
            opts = a.substr(2);
        std::size_t start = 0;
        while (start < opts.size()) {
            const std::size_t comma = std::min(opts.find(',', start), opts.size());
            const std::string item = opts.substr(start, comma - start);
            if (item.rfind("source=", 0) == 0)
                return item.substr(7);
            start = comma + 1;
        }
    }
    return {};
}

// In a mount namespace of our own: the source folder bind-mounted read-only onto itself,
// so even a compromised guest cannot write through virtiofsd. The flags the kernel locks
// for a less privileged namespace (nosuid, nodev, noexec) are kept.
void make_read_only(const std::string& dir) {
    if (dir.empty())
        die("--read-only but no -o source=DIR in virtiofsd's arguments");
    if (::unshare(CLONE_NEWNS) != 0)
        die(err("cannot create a mount namespace"));
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        die(err("cannot make the mounts private"));
    if (::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
        die(err("cannot bind-mount " + dir));
    struct statvfs sv {};
    unsigned long keep = 0;
    if (::statvfs(dir.c_str(), &sv) == 0) {
        if (sv.f_flag & ST_NOSUID) keep |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV) keep |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME) keep |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME) keep |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME) keep |= MS_RELATIME;
    }
    if (::mount(nullptr, dir.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, nullptr) != 0)
        die(err("cannot make " + dir + " read-only"));
}

}  // namespace

int main(int argc, char** argv) {
    std::string uid_text, gid_text, program = kDefaultVirtiofsd;
    bool read_only = false;
    int i = 1;
    for (; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc)
                die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--uid-map")
            uid_text = value();
        else if (a == "--gid-map")
            gid_text = value();
        else if (a == "--read-only")
            read_only = true;
        else if (a == "--virtiofsd")
            program = value();
        else if (a == "--") {
            ++i;
            break;
        } else
            die("unknown option " + a + " (usage: --uid-map M --gid-map M [--virtiofsd P] -- ARGS)");
    }
    std::vector<char*> args{program.data()};
    bool probe_only = false;
    for (; i < argc; ++i) {
        args.push_back(argv[i]);
        const std::string a = argv[i];
        if (a == "--print-capabilities" || a == "--help" || a == "-h" || a == "-V" ||
            a == "--version")
            probe_only = true;
    }
    // The limit was raised above, as far as this host allows; in the namespace virtiofsd
    // could not raise it and would give up.
    const std::string keep_limit = "--rlimit-nofile=0";
    if (!probe_only)
        args.push_back(const_cast<char*>(keep_limit.c_str()));
    args.push_back(nullptr);
    if (probe_only) {  // libvirt asks what the daemon supports: no namespace needed
        ::execv(program.c_str(), args.data());
        die(err("cannot execute " + program));
    }

    cordon::host::IdMap uids, gids;
    try {
        uids = cordon::host::parse_id_map(uid_text);
        gids = cordon::host::parse_id_map(gid_text);
    } catch (const std::exception& e) {
        die(e.what());
    }
    if (!uids.maps_root() || !gids.maps_root())
        die("both maps must map namespace id 0 (virtiofsd must be root of its namespace)");

    raise_nofile();

    // A helper in the host namespace writes our maps once we have unshared.
    int go[2];
    if (::pipe2(go, O_CLOEXEC) != 0)
        die(err("pipe"));
    const pid_t self = ::getpid();
    const pid_t helper = ::fork();
    if (helper < 0)
        die(err("fork"));
    if (helper == 0) {
        ::close(go[1]);
        char c;
        if (::read(go[0], &c, 1) != 1)
            std::_Exit(3);
        const std::string proc = "/proc/" + std::to_string(self);
        if (!write_all(proc + "/uid_map", uids.kernel_text())) {
            std::fprintf(stderr, "cordon-virtiofsd: %s\n", err("cannot write uid_map").c_str());
            std::_Exit(4);
        }
        if (!write_all(proc + "/gid_map", gids.kernel_text())) {
            std::fprintf(stderr, "cordon-virtiofsd: %s\n", err("cannot write gid_map").c_str());
            std::_Exit(5);
        }
        std::_Exit(0);
    }
    ::close(go[0]);
    if (::unshare(CLONE_NEWUSER) != 0)
        die(err("cannot create a user namespace"));
    if (::write(go[1], "g", 1) != 1)
        die(err("cannot signal the map writer"));
    ::close(go[1]);
    int status = 0;
    while (::waitpid(helper, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("the ID maps could not be written (uid map " + uid_text + ", gid map " + gid_text + ")");
    if (::setgroups(0, nullptr) != 0)
        die(err("setgroups"));
    if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0)
        die(err("cannot become root of the new user namespace"));
    if (read_only)
        make_read_only(source_of(args));
    ::execv(program.c_str(), args.data());
    die(err("cannot execute " + program));
}

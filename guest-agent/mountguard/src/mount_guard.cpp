#include "cordon/mountguard/mount_guard.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "cordon/error.hpp"

// The skeleton bpftool generates (C with casts and a zero-size struct): not our warnings.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "mount_guard.skel.h"
#pragma GCC diagnostic pop

namespace cordon::mountguard {

namespace {

constexpr const char* kFixLsm =
    "the guest kernel needs CONFIG_BPF_LSM=y with \"bpf\" in its active LSMs (lsm= on the "
    "kernel command line or CONFIG_LSM) and BTF (CONFIG_DEBUG_INFO_BTF=y); or turn isolation "
    "off (dockerd then runs unconfined by design)";

std::string bounded(const char* field, std::size_t size) {
    return std::string(field, ::strnlen(field, size));
}

const char* hook_name(std::uint32_t hook) {
    switch (hook) {
        case MG_HOOK_SB_MOUNT:
            return "mount";
        case MG_HOOK_SB_KERN_MOUNT:
            return "new superblock";
        case MG_HOOK_MOVE_MOUNT:
            return "move_mount";
        default:
            return nullptr;
    }
}

const char* reason_name(std::uint32_t reason) {
    switch (reason) {
        case MG_REASON_TYPE:
            return "filesystem type not allowed";
        case MG_REASON_OVERLAY_PATH:
            return "overlay path outside the layer store";
        case MG_REASON_OVERLAY_SYNTAX:
            return "overlay options with '..' or an escape";
        case MG_REASON_MOVE:
            return "moving mounts is not allowed";
        case MG_REASON_UNREADABLE:
            return "the mount's type or options could not be read";
        default:
            return nullptr;
    }
}

// libbpf's messages while loading (the verifier's log among them), kept for the error.
std::mutex g_log_mutex;
std::string* g_log = nullptr;

int collect_libbpf_log(enum libbpf_print_level level, const char* format, va_list args) {
    if (level == LIBBPF_DEBUG || !g_log)
        return 0;
    // The verifier's log comes as one message; its end says what was refused: keep the tail.
    std::vector<char> line(64 * 1024);
    const int n = std::vsnprintf(line.data(), line.size(), format, args);
    if (n > 0)
        g_log->append(line.data(),
                      std::min<std::size_t>(static_cast<std::size_t>(n), line.size() - 1));
    if (g_log->size() > 2048)
        g_log->erase(0, g_log->size() - 2048);
    return 0;
}

// The active LSMs, for the error message (securityfs may not be mounted: then unknown).
std::string active_lsms() {
    std::ifstream in("/sys/kernel/security/lsm");
    std::string s;
    if (!std::getline(in, s))
        return "unknown (securityfs not mounted)";
    return s;
}

}  // namespace

std::string Denial::describe() const {
    std::string s = "the kernel refused " + comm + " (pid " + std::to_string(pid) + ") a " + hook;
    if (!fstype.empty())
        s += " of type " + fstype;
    if (!source.empty())
        s += " from '" + source + "'";
    if (!target.empty())
        s += " on '" + target + "'";
    s += ": " + reason;
    if (!detail.empty())
        s += " ('" + detail + "')";
    return s;
}

Denial decode_denial(std::span<const std::byte> record) {
    mg_event e{};
    if (record.size() < sizeof e) {
        throw Error("cannot read a mount guard record: " + std::to_string(record.size()) +
                        " bytes, expected " + std::to_string(sizeof e),
                    "the mount guard's ring buffer",
                    "the agent and its BPF program come from different builds: rebuild the image");
    }
    std::memcpy(&e, record.data(), sizeof e);
    const char* hook = hook_name(e.hook);
    const char* reason = reason_name(e.reason);
    if (!hook || !reason) {
        throw Error("cannot read a mount guard record: unknown hook " + std::to_string(e.hook) +
                        " or reason " + std::to_string(e.reason),
                    "the mount guard's ring buffer",
                    "the agent and its BPF program come from different builds: rebuild the image");
    }
    Denial d;
    d.hook = hook;
    d.reason = reason;
    d.pid = e.pid;
    d.flags = e.flags;
    d.comm = bounded(e.comm, sizeof e.comm);
    d.fstype = bounded(e.fstype, sizeof e.fstype);
    d.source = bounded(e.source, sizeof e.source);
    d.target = bounded(e.target, sizeof e.target);
    d.detail = bounded(e.detail, sizeof e.detail);
    return d;
}

void validate_prefixes(const std::vector<std::string>& prefixes) {
    if (prefixes.size() > MG_MAX_PREFIXES) {
        throw Error(
            "too many overlay prefixes for the mount guard: " + std::to_string(prefixes.size()) +
                ", at most " + std::to_string(MG_MAX_PREFIXES),
            "GuardOptions::overlay_prefixes", "name the layer stores only");
    }
    for (const auto& p : prefixes) {
        const bool ok = p.size() >= 2 && p.size() < MG_PREFIX_LEN && p.front() == '/' &&
                        p.find('/', 1) != std::string::npos && p.find("..") == std::string::npos &&
                        p.find('\\') == std::string::npos;
        if (!ok) {
            throw Error("invalid overlay prefix for the mount guard", "'" + p + "'",
                        "give an absolute path below a folder of / (a string prefix), without "
                        "'..', shorter than " +
                            std::to_string(MG_PREFIX_LEN) + " characters");
        }
    }
}

void ensure_cgroup(const std::string& path) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) {
        throw Error("cannot create the engine's cgroup: " + ec.message(), path,
                    "cgroup2 must be mounted on /sys/fs/cgroup (the image's rc does it)");
    }
}

void MountGuard::SkeletonDeleter::operator()(mount_guard_bpf* skel) const noexcept {
    mount_guard_bpf__destroy(skel);  // detaches the links, closes the maps and programs
}

void MountGuard::RingDeleter::operator()(ring_buffer* rb) const noexcept {
    ring_buffer__free(rb);
}

MountGuard::MountGuard(const GuardOptions& options) {
    validate_prefixes(options.overlay_prefixes);
    ensure_cgroup(options.cgroup);
    cgroup_fd_ = UniqueFd(::open(options.cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup_fd_)
        throw_errno("cannot open the engine's cgroup", options.cgroup);

    std::string log;
    {
        std::lock_guard lock(g_log_mutex);
        g_log = &log;
        const auto previous = libbpf_set_print(collect_libbpf_log);
        skel_.reset(mount_guard_bpf__open());
        if (skel_)
            configure(options);
        const int err = skel_ ? -mount_guard_bpf__load(skel_.get()) : errno;
        libbpf_set_print(previous);
        g_log = nullptr;
        if (!skel_ || err != 0) {
            throw Error("cannot load the mount guard's BPF program: " + errno_string(err) +
                            (log.empty() ? "" : "; libbpf: " + log),
                        "BPF LSM (active LSMs: " + active_lsms() + ")", kFixLsm);
        }
    }
    const __u32 slot = 0;
    const __u32 fd = static_cast<__u32>(cgroup_fd_.get());
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.engine_cgroup), &slot, &fd, BPF_ANY) != 0)
        throw_errno("cannot point the mount guard at the engine's cgroup", options.cgroup);
    ring_.reset(ring_buffer__new(
        bpf_map__fd(skel_->maps.denials),
        [](void* ctx, void* data, std::size_t size) -> int {
            auto* self = static_cast<MountGuard*>(ctx);
            ++self->drained_;
            if (!self->sink_ || !*self->sink_)
                return 0;
            try {  // nothing may unwind through libbpf
                Denial d;
                try {
                    d = decode_denial(
                        std::span<const std::byte>(static_cast<const std::byte*>(data), size));
                } catch (const std::exception& e) {
                    d.hook = "record";
                    d.reason = e.what();
                }
                (*self->sink_)(d);
            } catch (...) {
            }
            return 0;
        },
        this, nullptr));
    if (!ring_)
        throw_errno("cannot open the mount guard's ring buffer", "BPF ring buffer 'denials'");
    attach();
    self_test(options.probe_dir);
}

MountGuard::~MountGuard() = default;

void MountGuard::configure(const GuardOptions& options) {
    auto* ro = skel_->rodata;
    std::memset(ro->overlay_prefixes, 0, sizeof ro->overlay_prefixes);
    for (std::size_t i = 0; i < options.overlay_prefixes.size(); ++i) {
        const auto& p = options.overlay_prefixes[i];
        std::memcpy(ro->overlay_prefixes[i], p.data(), p.size());
    }
    ro->overlay_prefix_count = static_cast<__u32>(options.overlay_prefixes.size());
}

void MountGuard::attach() {
    if (const int err = mount_guard_bpf__attach(skel_.get()); err != 0) {
        throw Error(
            "cannot attach the mount guard to the LSM hooks: " + errno_string(-err),
            "lsm/sb_mount, lsm/sb_kern_mount, lsm/move_mount (active LSMs: " + active_lsms() + ")",
            kFixLsm);
    }
}

// Proves the guard enforces: a child joins the engine's cgroup and tries a ramfs mount,
// which the guard must refuse with EPERM. An attached program the kernel never calls (the
// BPF LSM compiled in but not active) would let it through: then this throws.
void MountGuard::self_test(const std::string& probe_dir) {
    if (::mkdir(probe_dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw_errno("cannot create the mount guard's probe folder", probe_dir);
    UniqueFd procs_fd(::openat(cgroup_fd_.get(), "cgroup.procs", O_WRONLY | O_CLOEXEC));
    if (!procs_fd)
        throw_errno("cannot open the engine cgroup's cgroup.procs", "mount guard self-test");
    const pid_t pid = ::fork();
    if (pid < 0)
        throw_errno("cannot fork the mount guard's self-test");
    if (pid == 0) {
        if (::write(procs_fd.get(), "0", 1) != 1)
            _exit(2);
        if (::mount("cordon-probe", probe_dir.c_str(), "ramfs", MS_NOSUID | MS_NODEV, nullptr) ==
            0) {
            ::umount2(probe_dir.c_str(), MNT_DETACH);
            _exit(1);
        }
        _exit(errno == EPERM ? 0 : 3);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    drain({});  // the probe's own refusal is expected: not reported
    if (code == 0)
        return;
    if (code == 1) {
        throw Error(
            "the mount guard is attached but the kernel does not call it: a probe in the "
            "engine's cgroup mounted a ramfs",
            "BPF LSM (active LSMs: " + active_lsms() + ")", kFixLsm);
    }
    throw Error(
        "the mount guard's self-test failed (" +
            std::string(code == 2 ? "cannot join the engine's cgroup"
                                  : "the probe mount failed with another error than EPERM") +
            ")",
        probe_dir, "see the agent log");
}

int MountGuard::denial_fd() const {
    return ring_buffer__epoll_fd(ring_.get());
}

std::size_t MountGuard::drain(const std::function<void(const Denial&)>& on_denial) {
    sink_ = &on_denial;
    drained_ = 0;
    ring_buffer__consume(ring_.get());
    sink_ = nullptr;
    return drained_;
}

std::array<std::uint64_t, MG_REASON_COUNT> MountGuard::counts() const {
    std::array<std::uint64_t, MG_REASON_COUNT> out{};
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0)
        return out;
    std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(cpus));
    for (__u32 r = 1; r < MG_REASON_COUNT; ++r) {
        if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.denial_counts), &r, per_cpu.data()) != 0)
            continue;
        for (auto v : per_cpu) out[r] += v;
    }
    return out;
}

std::uint64_t MountGuard::total_denials() const {
    std::uint64_t total = 0;
    for (auto v : counts()) total += v;
    return total;
}

}  // namespace cordon::mountguard

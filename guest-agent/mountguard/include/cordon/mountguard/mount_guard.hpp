#pragma once
// The engine's mount guard: a BPF LSM program (bpf/mount_guard.bpf.c) that lets a process
// in the engine's cgroup (dockerd and what it forks) with initial-user-namespace
// credentials make only the mounts dockerd needs (binds, remounts, propagation changes,
// overlay layers under the layer store, tmpfs, nfs/cifs) and refuses every other with
// EPERM. Each refusal is counted and written to a ring buffer read here.
//
// MountGuard is RAII: constructing it loads the program, points it at the cgroup,
// attaches it and proves it enforces (self_test); destroying it detaches everything.
#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cordon/mountguard/mount_guard_event.h"
#include "cordon/unique_fd.hpp"

struct mount_guard_bpf;
struct ring_buffer;

namespace cordon::mountguard {

// One refused mount, decoded from the ring buffer.
struct Denial {
    std::string hook;    // "mount", "new superblock", "move_mount"
    std::string reason;  // "type not allowed", ...
    std::uint32_t pid = 0;
    std::uint64_t flags = 0;
    std::string comm;
    std::string fstype;
    std::string source;
    std::string target;
    std::string detail;
    // "the kernel refused dockerd (pid 12) a mount of type proc from 'proc' on 'x':
    // type not allowed"
    std::string describe() const;
};

// Throws cordon::Error when the record is shorter than struct mg_event or names an
// unknown hook or reason. Strings are read up to their field's size (no NUL needed).
Denial decode_denial(std::span<const std::byte> record);

struct GuardOptions {
    std::string cgroup;  // the engine's cgroup v2 folder, e.g. /sys/fs/cgroup/cordon-engine/dockerd
    // Where absolute overlay lowerdir/upperdir/workdir may point (string prefixes, usually
    // ending in '/'): absolute, below a folder of /, no "..", shorter than MG_PREFIX_LEN,
    // at most MG_MAX_PREFIXES.
    std::vector<std::string> overlay_prefixes;
    // An empty folder the self-test mounts on (created if missing).
    std::string probe_dir;
};

// Throws cordon::Error naming the first prefix that breaks the rules above.
void validate_prefixes(const std::vector<std::string>& prefixes);

class MountGuard {
  public:
    // Loads, configures, attaches and self-tests. Throws cordon::Error saying which step
    // failed and how to fix it (a kernel without the BPF LSM active, a missing cgroup2...).
    explicit MountGuard(const GuardOptions& options);
    ~MountGuard();
    MountGuard(const MountGuard&) = delete;
    MountGuard& operator=(const MountGuard&) = delete;

    // Readable when denials wait in the ring buffer (for an event loop). Owned here.
    int denial_fd() const;
    // Calls `on_denial` for each waiting record (non-blocking); returns how many.
    std::size_t drain(const std::function<void(const Denial&)>& on_denial);
    // Refusals so far, per enum mg_reason (index 0 unused), summed over the CPUs.
    std::array<std::uint64_t, MG_REASON_COUNT> counts() const;
    std::uint64_t total_denials() const;

  private:
    void configure(const GuardOptions& options);
    void attach();
    void self_test(const std::string& probe_dir);

    struct SkeletonDeleter {
        void operator()(mount_guard_bpf* skel) const noexcept;
    };
    struct RingDeleter {
        void operator()(ring_buffer* rb) const noexcept;
    };
    UniqueFd cgroup_fd_;
    std::unique_ptr<mount_guard_bpf, SkeletonDeleter> skel_;
    std::unique_ptr<ring_buffer, RingDeleter> ring_;
    const std::function<void(const Denial&)>* sink_ = nullptr;  // during drain()
    std::size_t drained_ = 0;
};

// Creates the cgroup v2 folder (and its parents) if missing.
void ensure_cgroup(const std::string& path);

}  // namespace cordon::mountguard

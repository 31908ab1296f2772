// SPDX-License-Identifier: GPL-2.0
/* The engine's mount guard (BPF LSM). For a caller in the engine's cgroup (dockerd and
 * everything it forks) whose credentials are in the initial user namespace, only the
 * mounts dockerd makes are allowed:
 *   - bind mounts, remounts and propagation changes (MS_BIND, MS_REMOUNT,
 *     MS_SHARED/PRIVATE/SLAVE/UNBINDABLE, with MS_REC);
 *   - new mounts of overlay (image layers), tmpfs, and the network filesystems of the
 *     local volume driver (nfs, nfs4, cifs, smb3);
 *   - for overlay, lowerdir/upperdir/workdir relative (dockerd's "mountfrom" re-exec works
 *     from its layer folder) or under one of the configured prefixes (the layer stores),
 *     never with "..", never with a backslash escape.
 * Everything else is refused with -EPERM, counted, and written to a ring buffer the agent
 * reads. MS_MOVE and move_mount(2) are refused; a new superblock is checked again by its
 * real type at sb_kern_mount, which also covers the new mount API (fsconfig). Callers
 * outside the cgroup, or with credentials in a child user namespace (runc setting up a
 * remapped container), are left to the kernel's own rules. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "kernel_types.h"
#include "cordon/mountguard/mount_guard_event.h"

#define EPERM 1
#define MS_REMOUNT 32UL
#define MS_BIND 4096UL
#define MS_MOVE 8192UL
#define MS_UNBINDABLE (1UL << 17)
#define MS_PRIVATE (1UL << 18)
#define MS_SLAVE (1UL << 19)
#define MS_SHARED (1UL << 20)
#define MS_PROPAGATION (MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED)
#define OPTIONS_MASK (MG_OPTIONS_MAX - 1)

char LICENSE[] SEC("license") = "GPL";

/* Set by the agent before load (read-only afterwards): absolute overlay paths must start
 * with one of these (string prefixes: the layer stores, and dockerd's overlay support
 * probe folders in a fresh data root). */
const volatile char overlay_prefixes[MG_MAX_PREFIXES][MG_PREFIX_LEN] = {};
const volatile __u32 overlay_prefix_count = 0;

/* Slot 0: the engine's cgroup (an fd the agent stores). */
struct {
    __uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} engine_cgroup SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} denials SEC(".maps");

/* Refusals per enum mg_reason (the agent sums the CPUs). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MG_REASON_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} denial_counts SEC(".maps");

/* ---- overlay options: a small state machine run by bpf_loop over the options page ---- */
enum { AT_OPTION, AT_PATH, IN_PATH, IN_VALUE };

/* Kept in the per-CPU scratch map, not on the caller's stack: the 6.1 verifier checks a
 * bpf_loop callback once, with the caller's stack as it is at the first call, and would
 * drop as dead the branches for states a stack-held machine has not reached yet (the
 * kernel fixed this in 6.8). A map value reads as unknown at every step. */
struct overlay_scan {
    __u32 state;
    __u32 skip_to; /* characters before this index belong to a key already matched */
    __u32 bad;     /* enum mg_reason, 0 while fine */
    __u32 bad_at;  /* where the refused value starts */
    __u32 done;    /* the scan reached the end (or a refusal) */
};

struct scratch {
    char options[MG_OPTIONS_MAX];
    char fstype[MG_FSTYPE_LEN];
    struct overlay_scan scan;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct scratch);
} scratch_space SEC(".maps");

static __always_inline struct scratch *scratch(void) {
    __u32 zero = 0;
    return bpf_map_lookup_elem(&scratch_space, &zero);
}

/* In the engine's cgroup (or below it) with credentials of the initial user namespace. */
static __always_inline int confined(void) {
    /* A slot the agent has not filled reads as an error: not confined. The agent fills it
     * before it attaches, so this only matters while loading. */
    if (bpf_current_task_under_cgroup(&engine_cgroup, 0) != 1)
        return 0;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    return BPF_CORE_READ(task, cred, user_ns, level) == 0;
}

static __always_inline int same(const char *s, const char *lit, int n) {
    for (int i = 0; i < n; i++) {
        if (s[i] != lit[i])
            return 0;
    }
    return 1;
}

/* n counts the terminating NUL. */
static __always_inline int type_allowed(const char *t) {
    return same(t, "overlay", 8) || same(t, "tmpfs", 6) || same(t, "nfs", 4) ||
           same(t, "nfs4", 5) || same(t, "cifs", 5) || same(t, "smb3", 5);
}

static __always_inline int is_overlay(const char *t) {
    return same(t, "overlay", 8);
}

static __always_inline int deny(__u32 hook, __u32 reason, __u64 flags, const char *fstype,
                                const char *source, const struct path *target,
                                const char *detail) {
    __u32 key = reason;
    __u64 *count = bpf_map_lookup_elem(&denial_counts, &key);
    if (count)
        *count += 1;
    struct mg_event *e = bpf_ringbuf_reserve(&denials, sizeof(*e), 0);
    if (!e)
        return -EPERM; /* the count still says it happened */
    e->hook = hook;
    e->reason = reason;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->pad = 0;
    e->flags = flags;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    e->fstype[0] = 0;
    e->source[0] = 0;
    e->target[0] = 0;
    e->detail[0] = 0;
    if (fstype)
        bpf_probe_read_kernel_str(e->fstype, sizeof(e->fstype), fstype);
    if (source)
        bpf_probe_read_kernel_str(e->source, sizeof(e->source), source);
    if (target) {
        const unsigned char *name = BPF_CORE_READ(target, dentry, d_name.name);
        if (name)
            bpf_probe_read_kernel_str(e->target, sizeof(e->target), name);
    }
    if (detail)
        bpf_probe_read_kernel_str(e->detail, sizeof(e->detail), detail);
    bpf_ringbuf_submit(e, 0);
    return -EPERM;
}

/* opts[i], with the index masked in a way the compiler cannot drop (it would, after a
 * bounds check it finds redundant, and the verifier then sees an unbounded access). */
static __always_inline char opt_at(const char *opts, __u32 i) {
    __u64 j = i;
    asm volatile("%0 &= %1" : "+r"(j) : "i"(OPTIONS_MASK));
    return opts[j];
}

static __always_inline int key_at(const char *opts, __u32 i, const char *key, int n) {
    for (int k = 0; k < n; k++) {
        if (opt_at(opts, i + k) != key[k])
            return 0;
    }
    return 1;
}

static __always_inline int prefix_at(const char *opts, __u32 i) {
    for (__u32 p = 0; p < MG_MAX_PREFIXES; p++) {
        if (p >= overlay_prefix_count)
            return 0;
        int match = 1;
        for (__u32 k = 0; k < MG_PREFIX_LEN; k++) {
            const char want = overlay_prefixes[p][k];
            if (want == 0)
                break;
            if (opt_at(opts, i + k) != want) {
                match = 0;
                break;
            }
        }
        if (match && overlay_prefixes[p][0] != 0)
            return 1;
    }
    return 0;
}

static long overlay_step(__u32 i, void *ctx) {
    struct scratch *s = scratch();
    if (!s)
        return 1; /* cannot happen; check_overlay() then finds done unset and refuses */
    struct overlay_scan *c = &s->scan;
    if (i >= MG_OPTIONS_MAX - 1) { /* the page's last byte, which the kernel sets to 0 */
        c->done = 1;
        return 1;
    }
    const char *opts = s->options;
    const char ch = opt_at(opts, i);
    if (ch == 0) {
        c->done = 1;
        return 1;
    }
    if (i < c->skip_to)
        return 0;
    if (ch == '\\' || (ch == '.' && opt_at(opts, i + 1) == '.')) {
        c->bad = MG_REASON_OVERLAY_SYNTAX;
        c->bad_at = i;
        c->done = 1;
        return 1;
    }
    if (ch == ',') {
        c->state = AT_OPTION;
        return 0;
    }
    switch (c->state) {
    case AT_OPTION:
        if (key_at(opts, i, "lowerdir=", 9)) {
            c->skip_to = i + 9;
            c->state = AT_PATH;
        } else if (key_at(opts, i, "upperdir=", 9)) {
            c->skip_to = i + 9;
            c->state = AT_PATH;
        } else if (key_at(opts, i, "workdir=", 8)) {
            c->skip_to = i + 8;
            c->state = AT_PATH;
        } else {
            c->state = IN_VALUE;
        }
        return 0;
    case AT_PATH:
        if (ch == ':')
            return 0;
        if (ch == '/' && !prefix_at(opts, i)) {
            c->bad = MG_REASON_OVERLAY_PATH;
            c->bad_at = i;
            c->done = 1;
            return 1;
        }
        c->state = IN_PATH;
        return 0;
    case IN_PATH:
        if (ch == ':')
            c->state = AT_PATH;
        return 0;
    default:
        return 0;
    }
}

/* 0, or the enum mg_reason that refuses the overlay options in s->options. */
static __always_inline __u32 check_overlay(struct scratch *s) {
    s->scan.state = AT_OPTION;
    s->scan.skip_to = 0;
    s->scan.bad = 0;
    s->scan.bad_at = 0;
    s->scan.done = 0;
    if (bpf_loop(MG_OPTIONS_MAX, overlay_step, 0, 0) < 0)
        return MG_REASON_UNREADABLE;
    if (!s->scan.done)
        return MG_REASON_UNREADABLE; /* the scan did not reach the end of the options */
    return s->scan.bad;
}

SEC("lsm/sb_mount")
int BPF_PROG(mg_sb_mount, const char *dev_name, const struct path *path, const char *type,
             unsigned long flags, void *data, int ret) {
    if (ret)
        return ret;
    if (!confined())
        return 0;
    /* The order of path_mount() in fs/namespace.c: what the kernel will do with it. */
    if (flags & (MS_REMOUNT | MS_BIND | MS_PROPAGATION))
        return 0;
    if (flags & MS_MOVE)
        return deny(MG_HOOK_SB_MOUNT, MG_REASON_MOVE, flags, type, dev_name, path, 0);
    /* A new mount. */
    struct scratch *s = scratch();
    if (!s || !type)
        return deny(MG_HOOK_SB_MOUNT, MG_REASON_UNREADABLE, flags, type, dev_name, path, 0);
    if (bpf_probe_read_kernel_str(s->fstype, sizeof(s->fstype), type) <= 0)
        return deny(MG_HOOK_SB_MOUNT, MG_REASON_UNREADABLE, flags, type, dev_name, path, 0);
    if (!type_allowed(s->fstype))
        return deny(MG_HOOK_SB_MOUNT, MG_REASON_TYPE, flags, type, dev_name, path, 0);
    if (!is_overlay(s->fstype) || !data)
        return 0; /* overlay without options fails in the kernel ("missing lowerdir") */
    if (bpf_probe_read_kernel_str(s->options, sizeof(s->options), data) < 0)
        return deny(MG_HOOK_SB_MOUNT, MG_REASON_UNREADABLE, flags, type, dev_name, path, 0);
    const __u32 bad = check_overlay(s);
    if (!bad)
        return 0;
    __u32 at = s->scan.bad_at;
    if (at > MG_OPTIONS_MAX - MG_DETAIL_LEN)
        at = MG_OPTIONS_MAX - MG_DETAIL_LEN;
    return deny(MG_HOOK_SB_MOUNT, bad, flags, type, dev_name, path, s->options + at);
}

/* A new superblock about to be mounted, by its real type: mount(2) and the new mount API's
 * fsconfig(FSCONFIG_CMD_CREATE) both pass here. */
SEC("lsm/sb_kern_mount")
int BPF_PROG(mg_sb_kern_mount, const struct super_block *sb, int ret) {
    if (ret)
        return ret;
    if (!confined())
        return 0;
    struct scratch *s = scratch();
    const char *name = BPF_CORE_READ(sb, s_type, name);
    if (!s || !name)
        return deny(MG_HOOK_SB_KERN_MOUNT, MG_REASON_UNREADABLE, 0, 0, 0, 0, 0);
    if (bpf_probe_read_kernel_str(s->fstype, sizeof(s->fstype), name) <= 0)
        return deny(MG_HOOK_SB_KERN_MOUNT, MG_REASON_UNREADABLE, 0, name, 0, 0, 0);
    if (!type_allowed(s->fstype))
        return deny(MG_HOOK_SB_KERN_MOUNT, MG_REASON_TYPE, 0, name, 0, 0, 0);
    return 0;
}

/* move_mount(2): dockerd does not use the new mount API. */
SEC("lsm/move_mount")
int BPF_PROG(mg_move_mount, const struct path *from_path, const struct path *to_path, int ret) {
    if (ret)
        return ret;
    if (!confined())
        return 0;
    return deny(MG_HOOK_MOVE_MOUNT, MG_REASON_MOVE, 0, 0, 0, to_path, 0);
}

/* The record the mount guard's BPF program writes to its ring buffer for each refused
 * mount, and the numbers both sides agree on. Shared by bpf/mount_guard.bpf.c (C, BPF
 * target) and the C++ reader (src/mount_guard.cpp): plain C, fixed-width fields only. */
#ifndef CORDON_MOUNT_GUARD_EVENT_H
#define CORDON_MOUNT_GUARD_EVENT_H

#ifdef __bpf__
typedef __u32 mg_u32;
typedef __u64 mg_u64;
#else
#include <stdint.h>
typedef uint32_t mg_u32;
typedef uint64_t mg_u64;
#endif

#define MG_COMM_LEN 16
#define MG_FSTYPE_LEN 32
#define MG_SOURCE_LEN 128
#define MG_TARGET_LEN 64
#define MG_DETAIL_LEN 128
#define MG_PREFIX_LEN 64
#define MG_MAX_PREFIXES 4
#define MG_OPTIONS_MAX 4096 /* the kernel copies at most one page of mount options */

/* Which LSM hook refused. */
enum mg_hook {
    MG_HOOK_SB_MOUNT = 1,      /* mount(2) */
    MG_HOOK_SB_KERN_MOUNT = 2, /* a new superblock about to be mounted (mount(2) or fsconfig) */
    MG_HOOK_MOVE_MOUNT = 3,    /* move_mount(2): the new mount API's attach step */
};

/* Why. Also the index of the per-reason counter in the "denials" map. */
enum mg_reason {
    MG_REASON_TYPE = 1,         /* a filesystem type outside the allowlist */
    MG_REASON_OVERLAY_PATH = 2, /* overlay lowerdir/upperdir/workdir outside the data root */
    MG_REASON_OVERLAY_SYNTAX = 3, /* "..", a backslash escape, or options that fill the page */
    MG_REASON_MOVE = 4,         /* MS_MOVE or move_mount(2) */
    MG_REASON_UNREADABLE = 5,   /* the type or the options could not be read */
    MG_REASON_COUNT = 6,
};

struct mg_event {
    mg_u32 hook;   /* enum mg_hook */
    mg_u32 reason; /* enum mg_reason */
    mg_u32 pid;    /* thread group id of the caller */
    mg_u32 pad;
    mg_u64 flags; /* mount(2) flags (MS_*) */
    char comm[MG_COMM_LEN];
    char fstype[MG_FSTYPE_LEN];
    char source[MG_SOURCE_LEN]; /* mount(2)'s source (dev_name) */
    char target[MG_TARGET_LEN]; /* the last component of the mount point */
    char detail[MG_DETAIL_LEN]; /* for overlay: the option value refused, from its start */
};

#endif

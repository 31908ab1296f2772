/* The few kernel types the mount guard reads, declared by hand instead of a generated
 * vmlinux.h: only the members used, each marked preserve_access_index so that libbpf
 * relocates every access against the running kernel's BTF (CO-RE). Layout and the
 * members left out do not matter; the member names and their types do. */
#ifndef CORDON_MOUNT_GUARD_KERNEL_TYPES_H
#define CORDON_MOUNT_GUARD_KERNEL_TYPES_H

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct user_namespace {
    int level; /* 0: the initial user namespace */
};

struct cred {
    struct user_namespace *user_ns;
};

struct task_struct {
    const struct cred *cred; /* the subjective credentials, which mount(2) checks */
};

struct qstr {
    const unsigned char *name;
};

struct dentry {
    struct qstr d_name;
};

struct vfsmount;

struct path {
    struct vfsmount *mnt;
    struct dentry *dentry;
};

struct file_system_type {
    const char *name;
};

struct super_block {
    struct file_system_type *s_type;
};

#pragma clang attribute pop

#endif

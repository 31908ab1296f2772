#!/usr/bin/env bash
# Builds the Cordon guest from Debian 12 packages: a kernel, a small initramfs that mounts
# a compressed read-only root (squashfs on a virtio disk) under a tmpfs overlay, and
# manifest.json with the exact package versions and sha256s.
#
# usage: build-image.sh --cache DIR --out DIR [--agent PATH] [--runtime PATH] [--compressor lz4|zstd|xz|gzip|none] [--version V]
#
# Needs (host): apt-get, dpkg-deb, readelf (binutils), mksquashfs (squashfs-tools), cpio,
# sha256sum. No loop devices, no mounts: everything is built in plain folders.
# The .deb files are kept in --cache and reused when present, so a second build does not
# touch the network and gives the same output (timestamps are pinned to SOURCE_DATE_EPOCH).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache="" out="" agent="" runtime="" version=${CORDON_VERSION:-0.1.0} compressor=${CORDON_IMAGE_COMPRESSOR:-lz4}
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) cache=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --agent) agent=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;   # cordon-runc, the exclusive-ID-range runc wrapper
    --compressor) compressor=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    *) echo "build-image: unknown argument '$1' (see the usage line at the top of $0)" >&2; exit 2 ;;
  esac
done
die() { echo "build-image: $*" >&2; exit 1; }
[ -n "$cache" ] && [ -n "$out" ] || die "--cache and --out are required"
for tool in apt-get apt-cache dpkg-deb readelf mksquashfs cpio sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' is missing on the build host: run scripts/bootstrap (squashfs-tools, cpio, binutils, dpkg-dev)"
done
if [ -n "$agent" ] && [ ! -x "$agent" ]; then die "the guest agent '$agent' does not exist or is not executable"; fi
if [ -n "$runtime" ] && [ ! -x "$runtime" ]; then die "the runtime wrapper '$runtime' does not exist or is not executable"; fi
case "$compressor" in zstd|lz4|xz|gzip|none) ;; *) die "unknown --compressor '$compressor' (lz4, zstd, xz, gzip or none)";; esac

# The kernel command line the VM must boot with (virtio disks found by serial, see README).
# cgroup.memory=nokmem: the first memory cgroup (the first container) would otherwise turn
# on the memcg kmem static key, live-patching the jump in kmem_cache_alloc with
# text_poke_bp while both vCPUs run through it; under QEMU 7.2 multi-threaded TCG that
# sometimes leaves both vCPUs looping on the int3 forever (soft lockup at the first
# container start; seen in CI, RIPs resolved to kmem_cache_alloc+0x5d / asm_exc_int3).
# The cost: kernel memory (slab) is not charged to a container's memory limit.
# no_timer_check: under a loaded host, TCG can miss the kernel's early IO-APIC timer check
# ("MP-BIOS bug: 8254 timer not connected to IO-APIC", seen in CI), after which the boot
# idled for good with both vCPUs halted; virtual machines do not need the check.
CMDLINE="console=ttyS0 quiet panic=-1 cgroup.memory=nokmem no_timer_check"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
export LC_ALL=C

# ---------------------------------------------------------------------------------------
# 1. Packages. A fixed list: each was checked against the binaries we keep, and step 3
#    fails the build if a kept binary needs a library none of them provides.
# ---------------------------------------------------------------------------------------
KERNEL_META=linux-image-cloud-amd64
PACKAGES=(
  busybox-static                       # the userland: sh, mount, modprobe, udhcpc, init...
  libc6 libgcc-s1                      # the C library for the dynamic binaries
  libstdc++6 libfmt9                   # the guest agent (C++, fmt)
  docker.io libdevmapper1.02.1 libsystemd0 libselinux1 libudev1 libpcre2-8-0
  libcap2 libgcrypt20 libgpg-error0 liblz4-1 liblzma5 libzstd1
  containerd runc libseccomp2
  iptables libip4tc2 libip6tc2 libxtables12 libnetfilter-conntrack3 libnfnetlink0 libmnl0
  e2fsprogs libext2fs2 libcom-err2 libblkid1 libuuid1 libss2
  ca-certificates                      # the public CAs dockerd trusts for pulls (Mozilla's list)
  libbpf1 libelf1 zlib1g                # the agent's mount guard (libbpf and what it links)
)

mkdir -p "$cache/debs"
debs="$cache/debs"
have_lists() { apt-cache show "$KERNEL_META" >/dev/null 2>&1; }
if ! have_lists; then
  echo "build-image: apt package lists are empty; running apt-get update once"
  apt-get update -qq || die "apt-get update failed: is Debian's archive reachable?"
fi

# The kernel metapackage points at the real image package (linux-image-6.1.0-NN-cloud-amd64).
kernel_pkg=""
if ls "$debs"/linux-image-*-cloud-amd64_*.deb >/dev/null 2>&1; then
  kernel_pkg=$(basename "$(ls "$debs"/linux-image-*-cloud-amd64_*.deb | sort | tail -1)")
  kernel_pkg=${kernel_pkg%%_*}
else
  kernel_pkg=$(apt-cache depends "$KERNEL_META" | awk '/Depends: linux-image-/ {print $2; exit}')
  [ -n "$kernel_pkg" ] || die "cannot resolve $KERNEL_META to a kernel package (apt-cache depends)"
fi
PACKAGES+=("$kernel_pkg")

missing=()
for p in "${PACKAGES[@]}"; do
  ls "$debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-image: downloading ${#missing[@]} packages into $debs"
  if ! (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}"); then
    # Stale package lists name versions the archive no longer has: refresh once, retry.
    echo "build-image: apt-get download failed; refreshing the package lists and retrying"
    apt-get update -qq || die "apt-get update failed: is Debian's archive reachable?"
    (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}") \
      || die "apt-get download failed for: ${missing[*]}"
  fi
fi

# ---------------------------------------------------------------------------------------
# 2. Unpack everything into a staging folder; the guest root takes only what it needs.
# ---------------------------------------------------------------------------------------
work="$cache/work"
rm -rf "$work" && mkdir -p "$work/stage" "$work/root" "$work/initramfs"
stage="$work/stage" root="$work/root" ird="$work/initramfs"
deb_files=()
for p in "${PACKAGES[@]}"; do
  f=$(ls "$debs/${p}_"*.deb | sort | tail -1)
  deb_files+=("$f")
  dpkg-deb -x "$f" "$stage"
done
kver=$(ls "$stage/lib/modules")
[ -f "$stage/boot/vmlinuz-$kver" ] || die "the kernel package has no /boot/vmlinuz-$kver"

# ---------------------------------------------------------------------------------------
# 3. The guest root.
# ---------------------------------------------------------------------------------------
for d in bin sbin usr/bin usr/sbin lib64 lib/x86_64-linux-gnu etc/docker etc/cordon \
         proc sys dev run tmp data var/lib/docker var/lib/cordon var/log root home/cordon \
         sys/fs/cgroup mnt; do
  mkdir -p "$root/$d"
done
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

keep() {  # keep SRC-relative-path [DEST-relative-path]
  local src=$1 dst=${2:-$1}
  [ -e "$stage/$src" ] || die "package file /$src is missing (did a package change its layout?)"
  mkdir -p "$(dirname "$root/$dst")"
  cp -a "$stage/$src" "$root/$dst"
}
keep bin/busybox
keep usr/sbin/dockerd
keep usr/sbin/docker-proxy                # port publishing (userland proxy)
keep usr/bin/containerd
keep usr/bin/containerd-shim-runc-v2
keep usr/sbin/runc
keep usr/sbin/xtables-legacy-multi
keep sbin/mke2fs
keep sbin/e2fsck
keep etc/mke2fs.conf

# The public CA bundle, as update-ca-certificates would write it (the package's postinst
# does not run here): every Mozilla certificate, in name order. The agent writes
# /etc/ssl/certs/ca-certificates.crt again at each boot with the host's CAs appended (the
# root is an overlay on tmpfs), from the pristine copy in /usr/share/cordon.
ls "$stage"/usr/share/ca-certificates/mozilla/*.crt >/dev/null 2>&1 \
  || die "the ca-certificates package has no /usr/share/ca-certificates/mozilla/*.crt"
mkdir -p "$root/usr/share/cordon" "$root/etc/ssl/certs"
find "$stage/usr/share/ca-certificates/mozilla" -name '*.crt' -print0 | sort -z \
  | xargs -0 cat > "$root/usr/share/cordon/ca-certificates.crt"
cp "$root/usr/share/cordon/ca-certificates.crt" "$root/etc/ssl/certs/ca-certificates.crt"

# iptables: dockerd 20.10 calls `iptables`; we use the legacy (x_tables) backend, whose
# kernel side is a handful of small modules (see MODULES_ROOT) and needs no libnftnl.
for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf xtables-legacy-multi "$root/usr/sbin/$t"
done
# iptables loads its matches and targets (standard, MASQUERADE, conntrack, addrtype, DNAT...)
# as plugins: keep the IPv4 and protocol-independent ones.
mkdir -p "$root/usr/lib/x86_64-linux-gnu/xtables"
cp -a "$stage"/usr/lib/x86_64-linux-gnu/xtables/libxt_*.so "$stage"/usr/lib/x86_64-linux-gnu/xtables/libipt_*.so \
  "$root/usr/lib/x86_64-linux-gnu/xtables/"
ln -sf mke2fs "$root/sbin/mkfs.ext4"
ln -sf e2fsck "$root/sbin/fsck.ext4"
ln -sf runc "$root/usr/sbin/docker-runc"

# busybox applets, without hiding a real binary of the same name.
"$stage/bin/busybox" --list-full | while read -r applet; do
  [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done

if [ -n "$agent" ]; then
  install -s -m 0755 "$agent" "$root/usr/sbin/cordon-guest-agent"   # -s: no debug info in the VM
fi
if [ -n "$runtime" ]; then
  install -D -s -m 0755 "$runtime" "$root/usr/libexec/cordon/cordon-runc"
fi

# Shared libraries: the closure of DT_NEEDED over every dynamic binary we kept.
find_lib() {
  local name=$1 d
  for d in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib64; do
    if [ -e "$stage/$d/$name" ]; then echo "$d/$name"; return 0; fi
  done
  return 1
}
declare -A seen=()
queue=()
while IFS= read -r -d '' f; do
  if readelf -h "$f" >/dev/null 2>&1 && readelf -d "$f" 2>/dev/null | grep -q NEEDED; then queue+=("$f"); fi
done < <(find "$root" -type f \( -perm -u+x -o -name '*.so' \) -print0)
while [ ${#queue[@]} -gt 0 ]; do
  f=${queue[0]}; queue=("${queue[@]:1}")
  for lib in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ -n "${seen[$lib]:-}" ] && continue
    seen[$lib]=1
    rel=$(find_lib "$lib") || die "'$f' needs $lib, which none of the packages provides: add its package to PACKAGES"
    mkdir -p "$root/lib/x86_64-linux-gnu"
    cp -L "$stage/$rel" "$root/lib/x86_64-linux-gnu/$lib"
    queue+=("$root/lib/x86_64-linux-gnu/$lib")
  done
done
cp -L "$stage/lib64/ld-linux-x86-64.so.2" "$root/lib64/ld-linux-x86-64.so.2"
ln -sf ../lib64/ld-linux-x86-64.so.2 "$root/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"

# Kernel modules (only these and their dependencies).
MODULES_INITRAMFS=(virtio_pci virtio_blk squashfs overlay virtio_console)
MODULES_ROOT=(
  virtiofs                                                   # shared host folders
  qemu_fw_cfg                                                # the admin settings (fw_cfg)
  virtio_console virtio_net virtio_rng                       # channel, network, entropy
  virtio_balloon                                             # memory given back (free page reporting)
  overlay bridge br_netfilter veth                           # docker's bridge network
  ip_tables iptable_filter iptable_nat nf_nat nf_conntrack   # iptables (legacy backend)
  xt_MASQUERADE xt_conntrack xt_addrtype xt_nat xt_tcpudp
)
"$stage/bin/busybox" depmod -b "$stage" "$kver"
copy_modules() {  # copy_modules DEST-ROOT module...
  local dest=$1; shift
  local m line path dep
  for m in "$@"; do
    line=$(grep -E "/${m//_/[_-]}\.ko:" "$stage/lib/modules/$kver/modules.dep") || die "kernel module $m not found in $kernel_pkg"
    path=${line%%:*}
    for dep in $path ${line#*:}; do
      mkdir -p "$(dirname "$dest/lib/modules/$kver/$dep")"
      cp "$stage/lib/modules/$kver/$dep" "$dest/lib/modules/$kver/$dep"
    done
  done
  cp "$stage/lib/modules/$kver/modules.builtin" "$stage/lib/modules/$kver/modules.order" \
     "$dest/lib/modules/$kver/"
  "$stage/bin/busybox" depmod -b "$dest" "$kver"
}
copy_modules "$root" "${MODULES_INITRAMFS[@]}" "${MODULES_ROOT[@]}"
printf '%s\n' "${MODULES_ROOT[@]}" > "$root/etc/cordon/modules"

# Configuration: users (the unprivileged `cordon` user owns the user-namespace range).
cat > "$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
cordon:x:1000:1000:Cordon unprivileged container user:/home/cordon:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
cat > "$root/etc/group" <<'EOF'
root:x:0:
cordon:x:1000:
docker:x:999:
nogroup:x:65534:
EOF
printf 'root:*:19000:0:99999:7:::\ncordon:!:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' > "$root/etc/shadow"
chmod 0640 "$root/etc/shadow"
echo 'cordon:100000:65536' > "$root/etc/subuid"
echo 'cordon:100000:65536' > "$root/etc/subgid"
chown 1000:1000 "$root/home/cordon"
echo cordon > "$root/etc/hostname"
# host.docker.internal: the host's loopback as QEMU's user networking serves it (10.0.2.2),
# so `docker pull host.docker.internal:5000/x` reaches a registry on the host's 127.0.0.1.
printf '127.0.0.1 localhost\n::1 localhost\n127.0.1.1 cordon\n10.0.2.2 host.docker.internal\n' > "$root/etc/hosts"
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
printf 'ip 0 IP\nicmp 1 ICMP\ntcp 6 TCP\nudp 17 UDP\nipv6-icmp 58 IPv6-ICMP\n' > "$root/etc/protocols"
ln -sf /run/cordon/resolv.conf "$root/etc/resolv.conf"
# os-release: dockerd reports it in `docker info`.
printf 'NAME="Cordon guest"\nID=cordon\nID_LIKE=debian\nVERSION_ID="1"\nPRETTY_NAME="Cordon guest (Debian 12 packages)"\n' \
  > "$root/etc/os-release"
install -m 0644 "$here/rootfs/daemon.json" "$root/etc/docker/daemon.json"
mkdir -p "$root/etc/containerd" "$root/var/lib/containerd"
install -m 0644 "$here/rootfs/containerd.toml" "$root/etc/containerd/config.toml"
# The agent serves the policy proxy on /run/cordon/docker.sock (its default).
agent_cmd="/usr/sbin/cordon-guest-agent"
[ -n "$agent" ] || agent_cmd=/etc/cordon/agent   # no agent built: a placeholder that says so
sed "s|@AGENT@|$agent_cmd|" "$here/rootfs/inittab" > "$root/etc/inittab"
install -m 0755 "$here/rootfs/rc" "$root/etc/cordon/rc"
install -m 0755 "$here/rootfs/udhcpc.script" "$root/etc/cordon/udhcpc.script"
install -m 0755 "$here/rootfs/poweroff" "$root/etc/cordon/poweroff"
install -m 0644 "$here/rootfs/firewall.rules" "$root/etc/cordon/firewall.rules"
install -m 0755 "$here/rootfs/console" "$root/etc/cordon/console"
install -m 0755 "$here/rootfs/agent" "$root/etc/cordon/agent"
ln -s /run "$root/var/run"

# ---------------------------------------------------------------------------------------
# 4. The initramfs: busybox, the stage-1 /init and the modules to reach the root disk.
# ---------------------------------------------------------------------------------------
mkdir -p "$ird/bin" "$ird/proc" "$ird/sys" "$ird/dev" "$ird/run" "$ird/ro" "$ird/rw" "$ird/newroot"
cp "$stage/bin/busybox" "$ird/bin/busybox"
for a in sh mount umount mkdir modprobe switch_root cat sleep echo cut grep ls ln mknod; do
  ln -s busybox "$ird/bin/$a"
done
install -m 0755 "$here/initramfs/init" "$ird/init"
copy_modules "$ird" "${MODULES_INITRAMFS[@]}"

# ---------------------------------------------------------------------------------------
# 5. Pack: pinned timestamps, root ownership, sorted entries.
# ---------------------------------------------------------------------------------------
find "$root" "$ird" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
rm -f "$out/rootfs.squashfs" "$out/initramfs.img" "$out/vmlinuz" "$out/manifest.json"
cp "$stage/boot/vmlinuz-$kver" "$out/vmlinuz"
(cd "$ird" && find . | sort | cpio -o -H newc -R 0:0 --reproducible --quiet) > "$out/initramfs.img"
comp_opts=(-comp "$compressor")
[ "$compressor" = zstd ] && comp_opts+=(-Xcompression-level 15)
[ "$compressor" = none ] && comp_opts=(-noI -noD -noF -noX)
mksquashfs "$root" "$out/rootfs.squashfs" "${comp_opts[@]}" -b 256K -noappend -quiet \
  -no-progress -no-xattrs \
  -processors 2 >/dev/null

# ---------------------------------------------------------------------------------------
# 6. The manifest.
# ---------------------------------------------------------------------------------------
json_file() {  # name path
  printf '    {"name": "%s", "bytes": %s, "sha256": "%s"}' "$1" "$(stat -c %s "$2")" \
    "$(sha256sum "$2" | cut -d' ' -f1)"
}
{
  echo '{'
  echo '  "format": 1,'
  echo "  \"version\": \"$version\","
  echo '  "kernel": "vmlinuz",'
  echo '  "initrd": "initramfs.img",'
  echo "  \"cmdline\": \"$CMDLINE\","
  echo '  "rootfs": "rootfs.squashfs",'
  echo '  "rootfs_format": "raw",'
  echo '  "root_disk_serial": "cordon-root",'
  echo '  "data_disk_serial": "cordon-data",'
  echo '  "channel_port": "org.cordon.channel.0",'
  echo "  \"debian\": \"12\","
  echo "  \"kernel_release\": \"$kver\","
  echo "  \"squashfs_compressor\": \"$compressor\","
  echo "  \"source_date_epoch\": $SOURCE_DATE_EPOCH,"
  echo "  \"root_bytes_uncompressed\": $(du -sb "$root" | cut -f1),"
  echo '  "files": ['
  json_file vmlinuz "$out/vmlinuz"; echo ','
  json_file initramfs.img "$out/initramfs.img"; echo ','
  json_file rootfs.squashfs "$out/rootfs.squashfs"; echo
  echo '  ],'
  echo '  "packages": ['
  n=0
  for f in "${deb_files[@]}"; do
    [ $n -gt 0 ] && echo ','
    n=$((n + 1))
    printf '    {"name": "%s", "version": "%s", "file": "%s", "sha256": "%s"}' \
      "$(dpkg-deb -f "$f" Package)" "$(dpkg-deb -f "$f" Version)" "$(basename "$f")" \
      "$(sha256sum "$f" | cut -d' ' -f1)"
  done
  echo
  echo '  ]'
  echo '}'
} > "$out/manifest.json.tmp"
mv "$out/manifest.json.tmp" "$out/manifest.json"
rm -rf "$work"

echo "build-image: $out: vmlinuz $(du -h "$out/vmlinuz" | cut -f1), initramfs.img $(du -h "$out/initramfs.img" | cut -f1), rootfs.squashfs $(du -h "$out/rootfs.squashfs" | cut -f1) ($compressor)"

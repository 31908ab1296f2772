#!/bin/sh
# Runs inside the VM (as root, through `vmctl exec`): sequential and small-file I/O in
# one folder. Prints "name seconds" lines, timed with /proc/uptime (10 ms steps).
# usage: guest-io.sh DIR MIB FILES
set -e
dir=$1 mib=$2 files=$3
now() { read -r up _ < /proc/uptime; echo "$up"; }
span() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
work=$dir/.cordon-bench-$$
mkdir -p "$work/small"
trap 'rm -rf "$work"' EXIT
drop
s=$(now); dd if=/dev/zero of="$work/seq" bs=1M count="$mib" conv=fsync 2>/dev/null; e=$(now)
echo "seq_write $(span "$s" "$e")"
drop
s=$(now); dd if="$work/seq" of=/dev/null bs=1M 2>/dev/null; e=$(now)
echo "seq_read $(span "$s" "$e")"
drop
# printf and the redirection are shell builtins: one create+write+close per file, no fork.
s=$(now); i=0
while [ "$i" -lt "$files" ]; do printf '%4096s' x > "$work/small/f$i"; i=$((i + 1)); done
sync; e=$(now)
echo "small_write $(span "$s" "$e")"
drop
s=$(now); cat "$work/small/"* > /dev/null; e=$(now)
echo "small_read $(span "$s" "$e")"

#pragma once
// The mount table as /proc/<pid>/mountinfo lists it (one entry per line, in mount order,
// so a later entry for the same mount point is stacked on top of an earlier one).
#include <string>
#include <vector>

namespace cordon {

struct MountEntry {
    std::string mount_point;  // field 5, with the kernel's \ooo escapes decoded
    std::string fs_type;      // first field after the " - " separator
    std::string source;       // second field after it (a virtiofs tag, a device...)
    std::string device;       // field 3, "MAJOR:MINOR" of the filesystem (its superblock)
    std::string root;         // field 4, the folder of that filesystem mounted here
};

// Unreadable file: an empty list. Malformed lines are skipped.
std::vector<MountEntry> read_mountinfo(const std::string& path = "/proc/self/mountinfo");

// Decodes the kernel's octal escapes ("\040" for a space) in a mountinfo path field.
std::string unescape_mountinfo_path(const std::string& field);

}  // namespace cordon

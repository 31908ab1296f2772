#pragma once
// Replace a file's contents so that a reader (or a crash) sees either the old
// contents or the new, never a half-written file: write a temporary file in the
// same folder, fsync it, rename it over the target, fsync the folder.
#include <string>
#include <string_view>
#include <sys/types.h>

namespace cordon {

// Throws cordon::Error naming `path` on failure; the target is untouched then.
void write_file_atomically(const std::string& path, std::string_view contents, mode_t mode = 0644);

// Reads a whole file; throws cordon::Error naming `path` when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace cordon

#pragma once
// Shifting file ownership between ID mappings. With isolation on, container
// root is VM uid 100000; with it off, uid 0. A named volume written in one mode
// must be re-owned to be usable in the other: IDs inside the source range move
// to the same offset in the target range; IDs outside it stay as they are.
#include <cstdint>
#include <string>

#include "cordon/engine/subid.hpp"

namespace cordon::engine {

struct IdMapping {
    IdRange uids;
    IdRange gids;
};

// The identity mapping of the plain engine: container IDs 0..65535 are VM IDs 0..65535.
inline IdMapping identity_mapping() { return {{0, 65536}, {0, 65536}}; }

struct ShiftStats {
    std::uint64_t entries = 0;  // files, folders and links seen
    std::uint64_t changed = 0;  // entries whose owner or group changed
};

// Re-owns every entry under `root` (the root included) without following
// symlinks. Set-ID bits cleared by chown are restored. Throws cordon::Error
// naming the entry on the first failure.
ShiftStats shift_ownership(const std::string& root, const IdMapping& from, const IdMapping& to);

// The ID that `id` becomes; ids outside `from` are returned unchanged.
std::uint32_t shift_id(std::uint32_t id, const IdRange& from, const IdRange& to);

}  // namespace cordon::engine

#pragma once
// Exclusive 64K ID ranges per container, allocated from a persistent table on
// the data disk. Every operation holds an exclusive flock on "<table>.lock"
// (runc create calls run concurrently) and replaces the table atomically, so a
// crash leaves either the old or the new table, never a torn one. Ranges whose
// holder is gone are reclaimed on the next allocation:
//  - entries written during an earlier boot (no container survives a reboot);
//  - entries whose container no longer exists (runc has no state for it) and
//    that are older than a grace period (a create in progress has no state yet).
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cordon/engine/subid.hpp"

namespace cordon::runtime {

using engine::IdRange;

struct RangePool {
    std::uint32_t first = 100000;  // VM uid of the first range's container root
    std::uint32_t size = 65536;    // IDs per container
    std::uint32_t ranges = 4096;  // how many ranges exist (first + ranges*size must fit in 32 bits)
    IdRange range(std::uint32_t index) const { return {first + index * size, size}; }
};

struct RangeEntry {
    std::uint32_t index = 0;
    std::string container;
    std::string boot_id;
    std::string state_root;         // runc --root, to tell whether the container still exists
    std::int64_t allocated_at = 0;  // unix seconds
};

class RangeAllocator {
  public:
    using IsLive = std::function<bool(const RangeEntry&)>;
    using Clock = std::function<std::int64_t()>;

    // `boot_id` is /proc/sys/kernel/random/boot_id in the VM; `is_live` tells
    // whether an entry's container still exists.
    RangeAllocator(std::string table_path, RangePool pool, std::string boot_id, IsLive is_live,
                   std::chrono::seconds grace = std::chrono::seconds(300), Clock now = {});

    // The container's range: its existing one (a retried create), else the lowest
    // free one. Throws cordon::Error when every range is in use.
    IdRange allocate(const std::string& container, const std::string& state_root);
    // Frees the container's range; false when it held none.
    bool release(const std::string& container);
    // The entries in the table now (after nothing is reclaimed), for status and tests.
    std::vector<RangeEntry> entries() const;

  private:
    std::vector<RangeEntry> load() const;
    void save(const std::vector<RangeEntry>& entries) const;

    std::string path_;
    RangePool pool_;
    std::string boot_id_;
    IsLive is_live_;
    std::chrono::seconds grace_;
    Clock now_;
};

// Reads /proc/sys/kernel/random/boot_id.
std::string current_boot_id();

}  // namespace cordon::runtime

// libFuzzer target: the exclusive ID range table cordon-runc keeps on the data disk.
// Input: byte 0 = which containers count as live (bit mask over the first entries) and
// the pool size; the rest = the table file.
// Invariants: no crash; a table it refuses is a cordon::Error and is left byte-identical;
// a range it hands out lies inside the pool, is not held by any other entry afterwards,
// and the table it writes loads again with every container on its own range.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "cordon/error.hpp"
#include "cordon/log.hpp"
#include "cordon/runtime/range_allocator.hpp"

using namespace cordon::runtime;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

const fs::path& table_path() {
    static const fs::path p = [] {
        cordon::log::set_level(cordon::log::Level::error);
        fs::path d =
            fs::temp_directory_path() / ("cordon-fuzz-ranges-" + std::to_string(::getpid()));
        fs::create_directories(d);
        return d / "idmap-ranges.json";
    }();
    return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    const std::uint8_t live_mask = data[0];
    const RangePool pool{100000, 65536, 1u + (data[0] & 0x07)};
    const std::string table(reinterpret_cast<const char*>(data + 1), size - 1);
    { std::ofstream(table_path(), std::ios::binary | std::ios::trunc) << table; }

    std::set<std::string> seen;  // live by the order in which the allocator asks
    RangeAllocator a(
        table_path().string(), pool, "boot-1",
        [&](const RangeEntry& e) {
            seen.insert(e.container);
            return ((live_mask >> (seen.size() % 8)) & 1) != 0;
        },
        std::chrono::seconds(60), [] { return std::int64_t{1'000'000}; });
    IdRange got;
    try {
        got = a.allocate("fuzz-new", "/run/runc");
    } catch (const cordon::Error&) {
        if (slurp(table_path()) != table)
            __builtin_trap();  // a refused table must be left alone
        return 0;
    }
    if (got.count != pool.size || got.start < pool.first ||
        (got.start - pool.first) % pool.size != 0 ||
        (got.start - pool.first) / pool.size >= pool.ranges)
        __builtin_trap();
    // What it wrote must load again (entries() re-reads the table) with unique ranges.
    std::set<std::uint32_t> indices;
    std::set<std::string> containers;
    bool mine = false;
    for (const auto& e : a.entries()) {
        if (!indices.insert(e.index).second || !containers.insert(e.container).second)
            __builtin_trap();
        if (e.container == "fuzz-new")
            mine = pool.range(e.index) == got;
    }
    if (!mine)
        __builtin_trap();  // the table does not record the range it handed out
    // And releasing it works on whatever the table now holds.
    (void)a.release("fuzz-new");
    return 0;
}

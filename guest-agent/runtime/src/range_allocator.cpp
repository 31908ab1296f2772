#include "cordon/runtime/range_allocator.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

#include "cordon/atomic_file.hpp"
#include "cordon/error.hpp"
#include "cordon/log.hpp"
#include "cordon/unique_fd.hpp"

namespace cordon::runtime {
namespace {

constexpr const char* kRangeAllocatorLog = "idmap";

class TableLock {
  public:
    explicit TableLock(const std::string& table) {
        const std::string path = table + ".lock";
        fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        if (!fd_)
            throw_errno("cannot open the ID range table's lock", path,
                        "the data disk must be mounted and writable");
        while (::flock(fd_.get(), LOCK_EX) != 0) {
            if (errno != EINTR)
                throw_errno("cannot lock the ID range table", path);
        }
    }  // the lock goes with the fd

  private:
    UniqueFd fd_;
};

const char* kHint =
    "the table is rewritten atomically, so this is not a crash: restore or delete it "
    "with no container running";

}  // namespace

std::string current_boot_id() {
    std::string id = read_file("/proc/sys/kernel/random/boot_id");
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    return id;
}

RangeAllocator::RangeAllocator(std::string table_path, RangePool pool, std::string boot_id,
                               IsLive is_live, std::chrono::seconds grace, Clock now)
    : path_(std::move(table_path)),
      pool_(pool),
      boot_id_(std::move(boot_id)),
      is_live_(std::move(is_live)),
      grace_(grace),
      now_(now ? std::move(now)
               : Clock([] { return static_cast<std::int64_t>(std::time(nullptr)); })) {
    if (pool_.size == 0 || pool_.ranges == 0 ||
        static_cast<std::uint64_t>(pool_.first) +
                static_cast<std::uint64_t>(pool_.ranges) * pool_.size >
            UINT32_MAX)
        throw Error("the ID range pool does not fit in 32-bit IDs", path_,
                    "use fewer or smaller ranges");
}

std::vector<RangeEntry> RangeAllocator::load() const {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
        if (errno == ENOENT)
            return {};
        throw_errno("cannot read the ID range table", path_);
    }
    const nlohmann::json j = nlohmann::json::parse(read_file(path_), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("ranges") || !j["ranges"].is_array())
        throw Error("the ID range table is not {\"ranges\": [...]}", path_, kHint);
    std::vector<RangeEntry> out;
    std::set<std::uint32_t> indices;
    std::set<std::string> containers;
    for (const auto& e : j["ranges"]) {
        if (!e.is_object() || !e.contains("index") || !e["index"].is_number_unsigned() ||
            !e.contains("container") || !e["container"].is_string())
            throw Error("an ID range table entry lacks \"index\" or \"container\"", path_, kHint);
        // Checked here, not trusted later: a wrapped index would hand a container IDs
        // outside the pool (down to the VM's own root).
        if (e["index"].get<std::uint64_t>() > UINT32_MAX)
            throw Error("an ID range table entry has an index beyond 32 bits: " + e["index"].dump(),
                        path_, kHint);
        auto optional_string = [&](const char* key) {
            const auto it = e.find(key);
            if (it == e.end())
                return std::string();
            if (!it->is_string())
                throw Error(
                    std::string("an ID range table entry's \"") + key + "\" is not a string", path_,
                    kHint);
            return it->get<std::string>();
        };
        RangeEntry r;
        r.index = e["index"].get<std::uint32_t>();
        r.container = e["container"].get<std::string>();
        r.boot_id = optional_string("boot_id");
        r.state_root = optional_string("state_root");
        if (const auto it = e.find("allocated_at"); it != e.end()) {
            if (!it->is_number_integer())
                throw Error("an ID range table entry's \"allocated_at\" is not an integer", path_,
                            kHint);
            r.allocated_at = it->get<std::int64_t>();
        }
        // Two containers on one range would share their IDs: the very thing the table
        // exists to prevent. Refuse rather than guess which one is right.
        if (!indices.insert(r.index).second)
            throw Error(
                "the ID range table gives range " + std::to_string(r.index) + " to two containers",
                path_, kHint);
        if (!containers.insert(r.container).second)
            throw Error("the ID range table lists container " + r.container + " twice", path_,
                        kHint);
        out.push_back(std::move(r));
    }
    return out;
}

void RangeAllocator::save(const std::vector<RangeEntry>& entries) const {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& e : entries)
        arr.push_back({{"index", e.index},
                       {"container", e.container},
                       {"boot_id", e.boot_id},
                       {"state_root", e.state_root},
                       {"allocated_at", e.allocated_at},
                       {"uid_start", pool_.range(e.index).start}});
    write_file_atomically(path_, nlohmann::json{{"version", 1}, {"ranges", arr}}.dump(1) + "\n",
                          0600);
}

IdRange RangeAllocator::allocate(const std::string& container, const std::string& state_root) {
    if (container.empty())
        throw Error("cannot allocate an ID range for an empty container id");
    TableLock lock(path_);
    std::vector<RangeEntry> entries = load();
    for (const auto& e : entries)
        if (e.container == container && e.index < pool_.ranges && e.boot_id == boot_id_)
            return pool_.range(e.index);  // a retried create keeps its range
    const std::int64_t now = now_();
    const auto before = entries.size();
    std::erase_if(entries, [&](const RangeEntry& e) {
        if (e.index >= pool_.ranges)
            return true;  // the pool shrank
        if (e.boot_id != boot_id_)
            return true;  // written before this boot
        if (now - e.allocated_at < grace_.count())
            return false;
        return !is_live_(e);
    });
    if (entries.size() != before)
        log::info(kRangeAllocatorLog, "reclaimed {} ID range(s) of containers that are gone",
                  before - entries.size());
    std::vector<bool> used(pool_.ranges, false);
    for (const auto& e : entries) used[e.index] = true;
    const auto free = std::find(used.begin(), used.end(), false);
    if (free == used.end())
        throw Error(
            "every exclusive ID range is in use (" + std::to_string(pool_.ranges) + " containers)",
            path_, "remove stopped containers or switch isolation to the shared range");
    RangeEntry e;
    e.index = static_cast<std::uint32_t>(free - used.begin());
    e.container = container;
    e.boot_id = boot_id_;
    e.state_root = state_root;
    e.allocated_at = now;
    entries.push_back(e);
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.index < b.index; });
    save(entries);
    return pool_.range(e.index);
}

bool RangeAllocator::release(const std::string& container) {
    TableLock lock(path_);
    std::vector<RangeEntry> entries = load();
    const auto n =
        std::erase_if(entries, [&](const RangeEntry& e) { return e.container == container; });
    if (n)
        save(entries);
    return n != 0;
}

std::vector<RangeEntry> RangeAllocator::entries() const {
    TableLock lock(path_);
    return load();
}

}  // namespace cordon::runtime

#include "cordon/engine/switch_journal.hpp"

#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <set>

#include "cordon/atomic_file.hpp"
#include "cordon/engine/id_range_json.hpp"
#include "cordon/error.hpp"

namespace cordon::engine {
using json = nlohmann::json;

namespace {

constexpr int kVersion = 1;
const IdRange kPlainIds{0, 65536};

class Reader {
  public:
    Reader(const std::string& source) : source_(source) {}

    [[noreturn]] void fail(const std::string& what) const {
        throw Error("the isolation switch journal " + what, source_,
                    "the agent sets an unreadable journal aside and keeps the saved mode; "
                    "see 'vmctl logs agent'");
    }
    const json& key(const json& obj, const char* name, const char* where) const {
        if (!obj.is_object() || !obj.contains(name))
            fail(std::string("has no key \"") + where + name + "\"");
        return obj.at(name);
    }
    bool boolean(const json& obj, const char* name, const char* where = "") const {
        const json& v = key(obj, name, where);
        if (!v.is_boolean())
            fail(std::string("key \"") + where + name + "\" must be true or false");
        return v.get<bool>();
    }
    std::int64_t integer(const json& obj, const char* name, const char* where = "") const {
        const json& v = key(obj, name, where);
        if (!v.is_number_integer())
            fail(std::string("key \"") + where + name + "\" must be an integer");
        return v.get<std::int64_t>();
    }
    std::string text(const json& obj, const char* name, const char* where = "") const {
        const json& v = key(obj, name, where);
        if (!v.is_string())
            fail(std::string("key \"") + where + name + "\" must be a string");
        return v.get<std::string>();
    }
    IdRange range(const json& obj, const char* name) const {
        const std::string where = std::string("remap_user.") + name + ".";
        const json& r = key(obj, name, "remap_user.");
        const std::int64_t start = integer(r, "start", where.c_str());
        const std::int64_t count = integer(r, "count", where.c_str());
        if (start < 0 || count <= 0 || start + count > (std::int64_t{1} << 32))
            fail("range \"remap_user." + std::string(name) + "\" is not a valid ID range");
        return {static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(count)};
    }
    std::vector<std::string> names(const json& obj, const char* name) const {
        const json& v = key(obj, name, "");
        if (!v.is_array())
            fail(std::string("key \"") + name + "\" must be a list of volume names");
        std::vector<std::string> out;
        std::set<std::string> seen;
        for (const json& n : v) {
            if (!n.is_string())
                fail(std::string("key \"") + name + "\" must be a list of volume names");
            std::string s = n.get<std::string>();
            if (s.empty() || s == "." || s == ".." || s.size() > 255 ||
                s.find_first_of(std::string("/\0", 2)) != std::string::npos)
                fail(std::string("key \"") + name +
                     "\" holds a name that is not a volume folder name");
            if (!seen.insert(s).second)
                fail(std::string("key \"") + name + "\" names a volume twice");
            out.push_back(std::move(s));
        }
        return out;
    }

  private:
    const std::string& source_;
};

bool overlap(const IdRange& a, const IdRange& b) {
    const std::uint64_t a_end = std::uint64_t{a.start} + a.count;
    const std::uint64_t b_end = std::uint64_t{b.start} + b.count;
    return a.start < b_end && b.start < a_end;
}

}  // namespace

std::string to_text(const SwitchJournal& j) {
    const json out = {
        {"version", kVersion},
        {"kind", j.rollback ? "rollback" : "switch"},
        {"save",
         {{"enabled", j.save.enabled},
          {"exclusive_ranges", j.save.exclusive_ranges},
          {"changed_at", j.save.changed_at}}},
        {"userns_remap", {{"from", j.from_remap}, {"to", j.to_remap}}},
        {"remap_user", {{"uids", range_json(j.remap.uids)}, {"gids", range_json(j.remap.gids)}}},
        {"step", j.step},
        {"volumes", j.volumes},
        {"done", j.done},
        {"images_archive", j.images_archive},
        {"started_at", j.started_at}};
    return out.dump(2) + "\n";
}

SwitchJournal parse_switch_journal(std::string_view text, const std::string& source) {
    const Reader r(source);
    const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
        r.fail("is not a JSON object");
    if (r.integer(j, "version") != kVersion)
        r.fail("has version " + j.at("version").dump() + ", this agent reads version " +
               std::to_string(kVersion));
    SwitchJournal out;
    const std::string kind = r.text(j, "kind");
    if (kind != "switch" && kind != "rollback")
        r.fail("key \"kind\" must be \"switch\" or \"rollback\"");
    out.rollback = kind == "rollback";
    const json& save = r.key(j, "save", "");
    out.save.enabled = r.boolean(save, "enabled", "save.");
    out.save.exclusive_ranges = r.boolean(save, "exclusive_ranges", "save.");
    out.save.changed_at = r.integer(save, "changed_at", "save.");
    const json& remap = r.key(j, "userns_remap", "");
    out.from_remap = r.boolean(remap, "from", "userns_remap.");
    out.to_remap = r.boolean(remap, "to", "userns_remap.");
    if (out.from_remap == out.to_remap)
        r.fail("moves volumes from a data root to the same data root");
    const json& user = r.key(j, "remap_user", "");
    out.remap.uids = r.range(user, "uids");
    out.remap.gids = r.range(user, "gids");
    if (overlap(out.remap.uids, kPlainIds) || overlap(out.remap.gids, kPlainIds))
        r.fail("has remapped ID ranges that overlap the plain engine's 0..65535");
    out.step = r.text(j, "step");
    out.volumes = r.names(j, "volumes");
    out.done = r.names(j, "done");
    const std::set<std::string> all(out.volumes.begin(), out.volumes.end());
    for (const auto& d : out.done)
        if (!all.contains(d))
            r.fail("key \"done\" names a volume that \"volumes\" does not");
    out.images_archive = r.text(j, "images_archive");
    if (out.images_archive.find('\0') != std::string::npos)
        r.fail("key \"images_archive\" is not a path");
    out.started_at = r.integer(j, "started_at");
    return out;
}

std::string switch_journal_path(const EnginePaths& paths) {
    return paths.state_dir + "/isolation-switch.journal";
}
std::string switch_images_archive(const EnginePaths& paths) {
    return paths.state_dir + "/isolation-switch-images.tar";
}
std::string switch_images_note(const EnginePaths& paths) {
    return paths.state_dir + "/isolation-switch-images.load";
}

bool SwitchJournalFile::exists() const {
    return ::access(path_.c_str(), F_OK) == 0;
}

std::optional<SwitchJournal> SwitchJournalFile::load() const {
    if (!exists() && errno == ENOENT)
        return std::nullopt;
    return parse_switch_journal(read_file(path_), path_);
}

void SwitchJournalFile::save(const SwitchJournal& journal) const {
    write_file_atomically(path_, to_text(journal), 0600);
}

void SwitchJournalFile::remove() const {
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
        throw_errno("cannot remove", path_);
}

std::string SwitchJournalFile::set_aside() const {
    const std::string bad = path_ + ".bad";
    if (::rename(path_.c_str(), bad.c_str()) != 0)
        throw_errno("cannot set the unreadable journal aside", path_,
                    "remove it by hand once the volumes are checked");
    return bad;
}

}  // namespace cordon::engine

// libFuzzer target: the isolation switch's journal, as the agent reads it at start from the
// data disk (a torn write, a bad disk or a hand edit can leave anything there).
// Invariants: no crash; bad text is only ever a cordon::Error naming the file; an accepted
// journal is one recovery can replay safely (volume names are single path components,
// "done" is a subset of "volumes", a real move, remapped ranges disjoint from 0..65535 and
// inside the 32-bit ID space) and writing it back gives text that reads as the same journal.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "cordon/engine/switch_journal.hpp"
#include "cordon/error.hpp"

using namespace cordon::engine;

namespace {

bool same(const SwitchJournal& a, const SwitchJournal& b) {
    return a.rollback == b.rollback && a.save.enabled == b.save.enabled &&
           a.save.exclusive_ranges == b.save.exclusive_ranges &&
           a.save.changed_at == b.save.changed_at && a.from_remap == b.from_remap &&
           a.to_remap == b.to_remap && a.remap.uids == b.remap.uids &&
           a.remap.gids == b.remap.gids && a.step == b.step && a.volumes == b.volumes &&
           a.done == b.done && a.images_archive == b.images_archive && a.started_at == b.started_at;
}

bool disjoint_from_plain(const IdRange& r) {
    return r.count > 0 && std::uint64_t{r.start} + r.count <= (std::uint64_t{1} << 32) &&
           r.start >= 65536;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::string source = "/var/lib/cordon/isolation-switch.journal";
    SwitchJournal j;
    try {
        j = parse_switch_journal(text, source);
    } catch (const cordon::Error& e) {
        if (e.subject() != source)
            __builtin_trap();
        return 0;
    }
    if (j.from_remap == j.to_remap)
        __builtin_trap();
    if (!disjoint_from_plain(j.remap.uids) || !disjoint_from_plain(j.remap.gids))
        __builtin_trap();
    const std::set<std::string> names(j.volumes.begin(), j.volumes.end());
    if (names.size() != j.volumes.size())
        __builtin_trap();
    for (const auto& v : j.volumes)
        if (v.empty() || v == "." || v == ".." || v.find('/') != std::string::npos ||
            v.find('\0') != std::string::npos)
            __builtin_trap();
    for (const auto& d : j.done)
        if (!names.contains(d))
            __builtin_trap();
    SwitchJournal again;
    try {
        again = parse_switch_journal(to_text(j), source);
    } catch (...) {
        __builtin_trap();  // what the switch writes, the next agent must read
    }
    if (!same(j, again))
        __builtin_trap();
    return 0;
}

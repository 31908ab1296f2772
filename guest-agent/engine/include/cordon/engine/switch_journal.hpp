#pragma once
// The isolation switch's journal: what a switch that moves named volumes between
// the two data roots has done so far, kept on the data disk beside the isolation
// state so that a switch killed half-way (agent killed, power lost) is finished at
// the next agent start instead of leaving the volumes in the root of the mode that
// is not in force. Written (atomically) before the first volume moves, updated
// after every volume, removed only once the new mode is saved.
//
// A rollback of a failed switch writes the same kind of journal, pointing back.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cordon/engine/engine_config.hpp"
#include "cordon/engine/id_shift.hpp"
#include "cordon/engine/isolation_state.hpp"

namespace cordon::engine {

struct SwitchJournal {
    bool rollback = false;    // undoing a switch that failed in the same agent
    IsolationChoice save;     // the choice saved once the volumes are in place
    bool from_remap = false;  // volumes leave the userns-remap data root (else the plain one)
    bool to_remap = true;     // volumes go to the userns-remap data root (else the plain one)
    IdMapping remap{{100000, 65536}, {100000, 65536}};  // the VM user's ranges when it started
    std::string step = "moving volumes";
    std::vector<std::string> volumes;  // every volume the switch moves
    std::vector<std::string> done;     // moved and re-owned (a subset of volumes, in order)
    std::string images_archive;        // saved images to load into the new engine ("" = none)
    std::int64_t started_at = 0;       // unix seconds
};

// JSON text (one object, "version": 1).
std::string to_text(const SwitchJournal& journal);

// Parses and checks a journal's text: every key of the right type, volume names that are
// single path components, "done" a subset of "volumes", a real move (from != to) and ID
// ranges disjoint from the plain engine's 0..65535 (else re-running the ownership shift
// would not be idempotent). Throws cordon::Error naming `source` and the bad key.
SwitchJournal parse_switch_journal(std::string_view text, const std::string& source);

// Where the journal, the saved images and the "images still to load" note live.
std::string switch_journal_path(const EnginePaths& paths);
std::string switch_images_archive(const EnginePaths& paths);
std::string switch_images_note(const EnginePaths& paths);

class SwitchJournalFile {
  public:
    explicit SwitchJournalFile(std::string path) : path_(std::move(path)) {}
    bool exists() const;
    // nullopt when there is none; throws cordon::Error when it cannot be read or parsed.
    std::optional<SwitchJournal> load() const;
    void save(const SwitchJournal& journal) const;  // atomic replace, fsynced
    void remove() const;                            // throws when it cannot be removed
    // Renames an unusable journal to "<path>.bad" (replacing an older one) and returns that
    // name; throws cordon::Error when even that fails.
    std::string set_aside() const;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

}  // namespace cordon::engine

// The isolation switch's journal and the recovery of a switch killed half-way, with real
// files, renames and chowns in a temp dir (the tests run as root, as CI does). A "kill"
// is a step hook throwing something that is not a std::exception: nothing in the switch
// catches it, so the state on disk is what a killed agent leaves.
#include "cordon/engine/switch_journal.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include "cordon/atomic_file.hpp"
#include "cordon/engine/isolation_switch.hpp"
#include "fake_engine.hpp"

using namespace cordon::engine;
namespace fs = std::filesystem;

namespace {

struct Killed {};  // the agent "dies" where this is thrown

using cordon::engine::testing::FakeApi;
using cordon::engine::testing::FakeControl;

const IdMapping kRemap{{100000, 65536}, {100000, 65536}};

struct Owner {
    uid_t uid;
    gid_t gid;
    bool operator==(const Owner&) const = default;
};

std::ostream& operator<<(std::ostream& o, const Owner& w) {
    return o << w.uid << ":" << w.gid;
}

Owner owner_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return {st.st_uid, st.st_gid};
}

void chown_to(const fs::path& p, Owner w) {
    ASSERT_EQ(::lchown(p.c_str(), w.uid, w.gid), 0) << p;
}

// Owners a volume's files have in the plain engine, and what they become with userns-remap.
// 70000 and 200000 lie outside both ranges and must stay as they are.
const std::vector<std::pair<std::string, Owner>> kPlainOwners = {
    {"", {0, 0}},        {"a", {0, 0}},       {"b", {1000, 1000}},    {"d", {33, 33}},
    {"d/c", {65535, 0}}, {"d/e", {70000, 5}}, {"f", {200000, 200000}}};

Owner remapped(Owner w) {
    return {shift_id(w.uid, identity_mapping().uids, kRemap.uids),
            shift_id(w.gid, identity_mapping().gids, kRemap.gids)};
}

class JournalTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0)
            GTEST_SKIP() << "moving and re-owning volumes needs root (CI runs as root)";
        char tmpl[] = "/tmp/cordon-journal-XXXXXX";
        root_ = ::mkdtemp(tmpl);
        paths_.docker_root = (root_ / "docker").string();
        paths_.daemon_json = (root_ / "daemon.json").string();
        paths_.base_daemon_json = (root_ / "base-daemon.json").string();
        paths_.state_dir = root_.string();
        store_ = IsolationStore((root_ / "isolation.json").string());
        store_.save({false, 1, false});
    }
    void TearDown() override {
        if (!root_.empty())
            fs::remove_all(root_);
    }
    IsolationSwitch make() { return IsolationSwitch(paths_, RemapUser{}, store_, api_, control_); }
    fs::path plain_volumes() const { return root_ / "docker" / "volumes"; }
    fs::path remap_volumes() const { return root_ / "docker" / "100000.100000" / "volumes"; }

    // A named volume in the plain engine's root with files of several owners.
    void make_volume(const std::string& name, int extra_files = 0) {
        const fs::path data = plain_volumes() / name / "_data";
        fs::create_directories(data / "d");
        for (const auto& [rel, w] : kPlainOwners) {
            const fs::path p = rel.empty() ? data : data / rel;
            if (!fs::exists(p))
                std::ofstream(p) << name << ":" << rel;
            chown_to(p, w);
        }
        for (int i = 0; i < extra_files; ++i) {
            const fs::path p = data / "d" / ("n" + std::to_string(i));
            std::ofstream(p) << i;
            chown_to(p, {static_cast<uid_t>(i % 2000), static_cast<gid_t>(i % 2000)});
        }
    }
    // Every file of the volume has the owner it must have in `root`'s mapping.
    void expect_owners(const fs::path& volumes, const std::string& name, bool remap) {
        const fs::path data = volumes / name / "_data";
        for (const auto& [rel, w] : kPlainOwners) {
            const fs::path p = rel.empty() ? data : data / rel;
            EXPECT_EQ(owner_of(p), remap ? remapped(w) : w) << p;
        }
        EXPECT_EQ(cordon::read_file((data / "a").string()), name + ":a");
    }

    fs::path root_;
    EnginePaths paths_;
    IsolationStore store_{"/nonexistent"};
    FakeApi api_;
    FakeControl control_;
};

SwitchJournal sample() {
    SwitchJournal j;
    j.save = {true, 1700000000, false};
    j.from_remap = false;
    j.to_remap = true;
    j.volumes = {"db", "web"};
    j.done = {"db"};
    j.images_archive = "/var/lib/cordon/isolation-switch-images.tar";
    j.started_at = 1700000000;
    return j;
}

}  // namespace

TEST(SwitchJournalText, RoundTrips) {
    const SwitchJournal j = sample();
    const SwitchJournal back = parse_switch_journal(to_text(j), "j");
    EXPECT_EQ(back.rollback, j.rollback);
    EXPECT_EQ(back.save.enabled, j.save.enabled);
    EXPECT_EQ(back.save.changed_at, j.save.changed_at);
    EXPECT_EQ(back.from_remap, j.from_remap);
    EXPECT_EQ(back.to_remap, j.to_remap);
    EXPECT_EQ(back.remap.uids, j.remap.uids);
    EXPECT_EQ(back.volumes, j.volumes);
    EXPECT_EQ(back.done, j.done);
    EXPECT_EQ(back.images_archive, j.images_archive);
    EXPECT_EQ(back.step, j.step);
}

TEST(SwitchJournalText, RefusesWhatItCannotSafelyReplay) {
    const auto bad = [](auto edit) {
        nlohmann::json j = nlohmann::json::parse(to_text(sample()));
        edit(j);
        return j.dump();
    };
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"{\"version\": 1", "not a JSON object"},
        {"[]", "not a JSON object"},
        {bad([](auto& j) { j["version"] = 2; }), "version"},
        {bad([](auto& j) { j.erase("volumes"); }), "\"volumes\""},
        {bad([](auto& j) {
             j["volumes"] = {"db", "../etc"};
         }),
         "volume folder name"},
        {bad([](auto& j) {
             j["volumes"] = {"db", "a/b"};
         }),
         "volume folder name"},
        {bad([](auto& j) {
             j["volumes"] = {"db", "db"};
         }),
         "twice"},
        {bad([](auto& j) { j["done"] = {"other"}; }), "\"done\""},
        {bad([](auto& j) { j["userns_remap"]["to"] = false; }), "same data root"},
        {bad([](auto& j) { j["remap_user"]["uids"]["start"] = 1000; }), "overlap"},
        {bad([](auto& j) { j["remap_user"]["gids"]["count"] = 0; }), "valid ID range"},
        {bad([](auto& j) { j["remap_user"]["gids"]["start"] = 4294967295u; }), "valid ID range"},
        {bad([](auto& j) { j["save"]["enabled"] = "yes"; }), "save.enabled"},
        {bad([](auto& j) { j["kind"] = "other"; }), "\"kind\""},
    };
    for (const auto& [text, expect] : cases) {
        try {
            parse_switch_journal(text, "/state/isolation-switch.journal");
            ADD_FAILURE() << "accepted: " << text;
        } catch (const cordon::Error& e) {
            EXPECT_EQ(e.subject(), "/state/isolation-switch.journal");
            EXPECT_NE(e.failure().find(expect), std::string::npos)
                << e.failure() << " / " << expect;
        }
    }
}

// Re-running the shift is what makes recovery safe: with disjoint ranges, shifting an id
// that was already shifted (or lies outside the source range) leaves it alone.
TEST(SwitchJournalShift, ShiftIdIsIdempotentForDisjointRanges) {
    const IdRange plain{0, 65536}, remap{100000, 65536};
    for (std::uint32_t id :
         {0u, 1u, 1000u, 65534u, 65535u, 65536u, 99999u, 100000u, 165535u, 165536u, 4294967295u}) {
        const std::uint32_t once = shift_id(id, plain, remap);
        EXPECT_EQ(shift_id(once, plain, remap), once) << id;
        const std::uint32_t back = shift_id(id, remap, plain);
        EXPECT_EQ(shift_id(back, remap, plain), back) << id;
    }
}

TEST_F(JournalTest, AHalfShiftedTreeEndsFullyShiftedAndASecondWalkChangesNothing) {
    make_volume("v");
    const fs::path data = plain_volumes() / "v" / "_data";
    // Half of it was walked before the kill.
    chown_to(data / "a", remapped({0, 0}));
    chown_to(data / "d" / "c", remapped({65535, 0}));
    shift_ownership(data.string(), identity_mapping(), kRemap);
    expect_owners(plain_volumes(), "v", true);
    EXPECT_EQ(shift_ownership(data.string(), identity_mapping(), kRemap).changed, 0u);
    // And back again, the same.
    chown_to(data / "b", {1000, 1000});
    shift_ownership(data.string(), kRemap, identity_mapping());
    expect_owners(plain_volumes(), "v", false);
    EXPECT_EQ(shift_ownership(data.string(), kRemap, identity_mapping()).changed, 0u);
}

TEST_F(JournalTest, ASwitchWritesTheJournalBeforeMovingAndRemovesItOnceTheModeIsSaved) {
    make_volume("db");
    make_volume("web");
    api_.tags = {"busybox:latest"};
    auto sw = make();
    std::vector<std::string> steps;
    sw.set_step_hook([&](const std::string& step, const SwitchJournal& j) {
        steps.push_back(step + " " + std::to_string(j.done.size()));
        const bool saved = store_.load().enabled;
        if (step == "mode saved") {
            EXPECT_TRUE(saved);
            EXPECT_FALSE(fs::exists(sw.journal_file().path()));
            return;
        }
        EXPECT_FALSE(saved) << step;
        // What is on disk is what the hook was given.
        const auto on_disk = sw.journal_file().load();
        ASSERT_TRUE(on_disk.has_value()) << step;
        EXPECT_EQ(on_disk->volumes, (std::vector<std::string>{"db", "web"}));
        EXPECT_EQ(on_disk->done, j.done);
        EXPECT_EQ(on_disk->images_archive, switch_images_archive(paths_));
        EXPECT_TRUE(on_disk->to_remap);
    });
    const auto r = sw.apply({true, true, {}}, {}, [](const std::string&) {});
    EXPECT_EQ(r.volumes_moved, 2u);
    EXPECT_EQ(r.images_moved, 1u);
    EXPECT_EQ(steps,
              (std::vector<std::string>{"journal written 0", "volume moved 1", "volume moved 2",
                                        "engine starting 2", "mode saved 2"}));
    EXPECT_FALSE(fs::exists(switch_journal_path(paths_)));
    EXPECT_FALSE(fs::exists(switch_images_note(paths_)));
    EXPECT_FALSE(fs::exists(switch_images_archive(paths_)));
    expect_owners(remap_volumes(), "db", true);
    expect_owners(remap_volumes(), "web", true);
}

TEST_F(JournalTest, ASwitchKilledAfterOneVolumeIsFinishedAtTheNextStart) {
    for (const char* v : {"a-vol", "b-vol", "c-vol"}) make_volume(v);
    api_.tags = {"busybox:latest"};
    {
        auto sw = make();
        sw.set_step_hook([](const std::string& step, const SwitchJournal& j) {
            if (step == "volume moved" && j.done.size() == 1)
                throw Killed{};
        });
        EXPECT_THROW(sw.apply({true, true, {}}, {}, [](const std::string&) {}), Killed);
    }
    // What the killed agent left: the old mode saved, one volume in the new root.
    EXPECT_FALSE(store_.load().enabled);
    EXPECT_TRUE(fs::exists(remap_volumes() / "a-vol"));
    EXPECT_TRUE(fs::exists(plain_volumes() / "b-vol"));
    // And the next volume's rename happened with half its walk (as a kill mid-walk leaves it).
    ASSERT_EQ(::rename((plain_volumes() / "b-vol").c_str(), (remap_volumes() / "b-vol").c_str()),
              0);
    chown_to(remap_volumes() / "b-vol" / "_data" / "b", remapped({1000, 1000}));

    auto journal = SwitchJournalFile(switch_journal_path(paths_)).load();
    ASSERT_TRUE(journal.has_value());
    EXPECT_EQ(journal->done, std::vector<std::string>{"a-vol"});
    FakeControl fresh;
    IsolationSwitch next(paths_, RemapUser{}, store_, api_, fresh);
    const RecoveryReport rep = next.finish_interrupted(*journal, {});
    EXPECT_EQ(rep.volumes, 3u);
    EXPECT_EQ(rep.moved, 1u);  // c-vol; b-vol was already there
    EXPECT_TRUE(rep.missing.empty());
    EXPECT_TRUE(rep.images_pending);
    EXPECT_EQ(rep.summary().rfind("finished an interrupted isolation switch: 3 volumes", 0), 0u)
        << rep.summary();
    for (const char* v : {"a-vol", "b-vol", "c-vol"}) {
        expect_owners(remap_volumes(), v, true);
        EXPECT_FALSE(fs::exists(plain_volumes() / v));
    }
    EXPECT_TRUE(store_.load().enabled);
    EXPECT_FALSE(fs::exists(switch_journal_path(paths_)));
    EXPECT_NE(cordon::read_file(paths_.daemon_json).find("userns-remap"), std::string::npos);
    // The images the switch saved load once the engine answers, then are gone.
    EXPECT_TRUE(next.load_pending_images());
    EXPECT_EQ(api_.loads, 1);
    EXPECT_FALSE(fs::exists(switch_images_archive(paths_)));
    EXPECT_FALSE(next.load_pending_images());
}

TEST_F(JournalTest, RecoveryKilledItselfAndRunTwiceEndsTheSameAndTheSecondRunChangesNothing) {
    for (const char* v : {"a-vol", "b-vol"}) make_volume(v);
    {
        auto sw = make();
        sw.set_step_hook([](const std::string& step, const SwitchJournal&) {
            if (step == "journal written")
                throw Killed{};
        });
        EXPECT_THROW(sw.apply({true, true, {}}, {}, [](const std::string&) {}), Killed);
    }
    const auto journal = SwitchJournalFile(switch_journal_path(paths_)).load();
    ASSERT_TRUE(journal.has_value());
    EXPECT_TRUE(journal->done.empty());
    {
        // The recovery is killed too, after its first volume.
        auto sw = make();
        sw.set_step_hook([](const std::string& step, const SwitchJournal&) {
            if (step == "volume moved")
                throw Killed{};
        });
        EXPECT_THROW(sw.finish_interrupted(*journal, {}), Killed);
        EXPECT_FALSE(store_.load().enabled);
    }
    const auto again = SwitchJournalFile(switch_journal_path(paths_)).load();
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->done, std::vector<std::string>{"a-vol"});
    auto sw = make();
    const auto first = sw.finish_interrupted(*again, {});
    EXPECT_EQ(first.moved, 1u);
    // A kill just before the journal was removed runs it once more: nothing changes.
    const auto second = sw.finish_interrupted(*again, {});
    EXPECT_EQ(second.moved, 0u);
    EXPECT_EQ(second.shift.changed, 0u);
    EXPECT_GT(second.shift.entries, 0u);
    for (const char* v : {"a-vol", "b-vol"}) expect_owners(remap_volumes(), v, true);
    EXPECT_TRUE(store_.load().enabled);
}

TEST_F(JournalTest, ARollbackKilledHalfWayIsFinishedBackToTheOldMode) {
    for (const char* v : {"a-vol", "b-vol"}) make_volume(v);
    control_.fail_ready = 1;  // the new engine does not come up: the switch rolls back
    {
        auto sw = make();
        sw.set_step_hook([](const std::string& step, const SwitchJournal& j) {
            if (step == "volume moved" && j.rollback)
                throw Killed{};
        });
        EXPECT_THROW(sw.apply({true, true, {}}, {}, [](const std::string&) {}), Killed);
    }
    const auto journal = SwitchJournalFile(switch_journal_path(paths_)).load();
    ASSERT_TRUE(journal.has_value());
    EXPECT_TRUE(journal->rollback);
    EXPECT_FALSE(journal->to_remap);
    const auto rep = make().finish_interrupted(*journal, {});
    EXPECT_EQ(
        rep.summary().rfind("finished rolling back an interrupted isolation switch: 2 volumes", 0),
        0u)
        << rep.summary();
    for (const char* v : {"a-vol", "b-vol"}) expect_owners(plain_volumes(), v, false);
    EXPECT_FALSE(store_.load().enabled);
    EXPECT_EQ(cordon::read_file(paths_.daemon_json).find("userns-remap"), std::string::npos);
    EXPECT_FALSE(fs::exists(switch_journal_path(paths_)));
}

TEST_F(JournalTest, AFailedSwitchRollsBackAndLeavesNoJournal) {
    make_volume("db");
    control_.fail_ready = 1;
    EXPECT_THROW(make().apply({true, true, {}}, {}, [](const std::string&) {}), cordon::Error);
    expect_owners(plain_volumes(), "db", false);
    EXPECT_FALSE(fs::exists(switch_journal_path(paths_)));
    EXPECT_FALSE(store_.load().enabled);
}

TEST_F(JournalTest, AnUnfinishedJournalBlocksANewSwitch) {
    make_volume("db");
    SwitchJournalFile(switch_journal_path(paths_)).save(sample());
    try {
        make().apply({true, true, {}}, {}, [](const std::string&) {});
        FAIL() << "switched over an unfinished journal";
    } catch (const cordon::Error& e) {
        EXPECT_EQ(e.subject(), switch_journal_path(paths_));
    }
    expect_owners(plain_volumes(), "db", false);
}

TEST_F(JournalTest, ACorruptJournalIsSetAsideAndNothingMoves) {
    make_volume("db");
    const SwitchJournalFile file(switch_journal_path(paths_));
    std::ofstream(file.path()) << "{\"version\": 1, \"kind\": \"switch\", \"volu";
    EXPECT_THROW(file.load(), cordon::Error);
    const std::string bad = file.set_aside();
    EXPECT_EQ(bad, file.path() + ".bad");
    EXPECT_TRUE(fs::exists(bad));
    EXPECT_FALSE(file.exists());
    EXPECT_FALSE(file.load().has_value());
    expect_owners(plain_volumes(), "db", false);
    EXPECT_FALSE(fs::exists(remap_volumes()));
    EXPECT_FALSE(store_.load().enabled);
}

TEST_F(JournalTest, AVolumeGoneFromBothRootsIsReportedAndTheRestFinished) {
    make_volume("db");
    SwitchJournal j = sample();  // names "db" and "web"; "web" exists nowhere
    j.images_archive.clear();
    SwitchJournalFile(switch_journal_path(paths_)).save(j);
    const auto rep = make().finish_interrupted(j, {});
    EXPECT_EQ(rep.missing, std::vector<std::string>{"web"});
    expect_owners(remap_volumes(), "db", true);
    EXPECT_NE(rep.summary().find("missing: web"), std::string::npos) << rep.summary();
}

TEST_F(JournalTest, ImagesThatFailToLoadStayForTheNextTry) {
    cordon::write_file_atomically(switch_images_archive(paths_), "tar");
    cordon::write_file_atomically(switch_images_note(paths_), "load");
    api_.fail_load = true;
    EXPECT_THROW(make().load_pending_images(), cordon::Error);
    EXPECT_TRUE(fs::exists(switch_images_archive(paths_)));
    api_.fail_load = false;
    EXPECT_TRUE(make().load_pending_images());
    EXPECT_FALSE(fs::exists(switch_images_note(paths_)));
}

// Not an assertion: how long finishing a switch takes (printed for the report).
TEST_F(JournalTest, RecoveryTimeThreeVolumesOfAThousandFiles) {
    for (const char* v : {"a-vol", "b-vol", "c-vol"}) make_volume(v, 1000);
    {
        auto sw = make();
        sw.set_step_hook([](const std::string& step, const SwitchJournal&) {
            if (step == "journal written")
                throw Killed{};
        });
        EXPECT_THROW(sw.apply({true, true, {}}, {}, [](const std::string&) {}), Killed);
    }
    const auto journal = SwitchJournalFile(switch_journal_path(paths_)).load();
    ASSERT_TRUE(journal.has_value());
    const auto t0 = std::chrono::steady_clock::now();
    const auto rep = make().finish_interrupted(*journal, {});
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(rep.moved, 3u);
    EXPECT_EQ(rep.shift.entries, 3u * (kPlainOwners.size() + 1000));
    std::cout << "[ measure  ] recovery of 3 volumes x 1000 files: " << s << " s ("
              << rep.shift.entries << " entries, " << rep.shift.changed << " re-owned)\n";
    RecordProperty("recovery_seconds", std::to_string(s));
    for (const char* v : {"a-vol", "b-vol", "c-vol"}) expect_owners(remap_volumes(), v, true);
}

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cordon/atomic_file.hpp"
#include "cordon/engine/isolation_state.hpp"
#include "cordon/error.hpp"

using namespace cordon::engine;
namespace fs = std::filesystem;

namespace {
struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/cordon-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};
}  // namespace

TEST(IsolationStore, MissingFileMeansOn) {
    TempDir d;
    IsolationStore s((d.path / "isolation.json").string());
    EXPECT_TRUE(s.load().enabled);
}

TEST(IsolationStore, SaveThenLoadRoundTrips) {
    TempDir d;
    IsolationStore s((d.path / "isolation.json").string());
    s.save({false, 1234, false});
    auto c = s.load();
    EXPECT_FALSE(c.enabled);
    EXPECT_EQ(c.changed_at, 1234);
    EXPECT_EQ(fs::status(s.path()).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
}

TEST(IsolationStore, MalformedFileIsAClearErrorAndLeftAlone) {
    TempDir d;
    const auto path = (d.path / "isolation.json").string();
    for (const char* bad : {"{", "[]", "{\"enabled\": \"yes\"}", "{}", "{\"enabled\":true,\"changed_at\":\"x\"}"}) {
        std::ofstream(path) << bad;
        IsolationStore s(path);
        try {
            s.load();
            FAIL() << "accepted " << bad;
        } catch (const cordon::Error& e) {
            EXPECT_EQ(e.subject(), path);
            EXPECT_FALSE(e.hint().empty());
        }
        EXPECT_EQ(cordon::read_file(path), bad);
    }
}

TEST(IsolationStore, AdminLockWins) {
    EXPECT_TRUE(effective_isolation({false, 0}, {true, true, "admin"}));
    EXPECT_FALSE(effective_isolation({true, 0}, {true, false, "admin"}));
    EXPECT_FALSE(effective_isolation({false, 0}, {}));
}

TEST(AtomicFile, FailedWriteLeavesNoTemporaryAndKeepsTheOld) {
    TempDir d;
    const auto path = (d.path / "f").string();
    cordon::write_file_atomically(path, "old");
    EXPECT_THROW(cordon::write_file_atomically((d.path / "missing-dir" / "f").string(), "new"), cordon::Error);
    EXPECT_EQ(cordon::read_file(path), "old");
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator(d.path)) ++n;
    EXPECT_EQ(n, 1u);
}

TEST(IsolationStore, ExclusiveRangesRoundTripAndDefaultOff) {
    TempDir d;
    IsolationStore s((d.path / "isolation.json").string());
    EXPECT_FALSE(s.load().exclusive_ranges);
    s.save({true, 5, true});
    EXPECT_TRUE(s.load().exclusive_ranges);
    std::ofstream(d.path / "isolation.json") << R"({"enabled": true, "exclusive_ranges": "yes"})";
    EXPECT_THROW(s.load(), cordon::Error);
}

#include "cordon/runtime/range_allocator.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "cordon/atomic_file.hpp"
#include "cordon/error.hpp"

namespace fs = std::filesystem;
using namespace cordon;
using namespace cordon::runtime;

namespace {

class RangeAllocatorTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/cordon-ranges-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        table_ = dir_ + "/ranges.json";
    }
    void TearDown() override { fs::remove_all(dir_); }

    RangeAllocator make(std::uint32_t ranges = 4, std::string boot = "boot-1") {
        return RangeAllocator(
            table_, RangePool{100000, 65536, ranges}, std::move(boot),
            [this](const RangeEntry& e) { return live_.count(e.container) != 0; },
            std::chrono::seconds(60), [this] { return now_; });
    }

    std::string dir_, table_;
    std::set<std::string> live_;
    std::int64_t now_ = 1000;
};

TEST_F(RangeAllocatorTest, GivesEachContainerItsOwnRangeInOrder) {
    auto a = make();
    EXPECT_EQ(a.allocate("A", "/run/r"), (IdRange{100000, 65536}));
    EXPECT_EQ(a.allocate("B", "/run/r"), (IdRange{165536, 65536}));
    EXPECT_EQ(a.allocate("C", "/run/r"), (IdRange{231072, 65536}));
    EXPECT_EQ(a.entries().size(), 3u);
}

TEST_F(RangeAllocatorTest, ARetriedCreateKeepsItsRange) {
    auto a = make();
    a.allocate("A", "/run/r");
    const auto b = a.allocate("B", "/run/r");
    EXPECT_EQ(a.allocate("B", "/run/r"), b);
    EXPECT_EQ(a.entries().size(), 2u);
}

TEST_F(RangeAllocatorTest, ExhaustionIsAClearErrorAndChangesNothing) {
    auto a = make(2);
    live_ = {"A", "B"};
    a.allocate("A", "/run/r");
    a.allocate("B", "/run/r");
    const std::string before = read_file(table_);
    now_ += 3600;  // both are live: nothing to reclaim even past the grace period
    try {
        a.allocate("C", "/run/r");
        FAIL() << "expected exhaustion";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("every exclusive ID range is in use (2 containers)"),
                  std::string::npos)
            << e.what();
        EXPECT_FALSE(e.hint().empty());
    }
    EXPECT_EQ(read_file(table_), before);
}

TEST_F(RangeAllocatorTest, ReleasedRangesAreReusedLowestFirst) {
    auto a = make();
    a.allocate("A", "/run/r");
    a.allocate("B", "/run/r");
    a.allocate("C", "/run/r");
    EXPECT_TRUE(a.release("B"));
    EXPECT_FALSE(a.release("B"));
    EXPECT_TRUE(a.release("A"));
    EXPECT_EQ(a.allocate("D", "/run/r").start, 100000u);
    EXPECT_EQ(a.allocate("E", "/run/r").start, 165536u);
    EXPECT_EQ(a.allocate("F", "/run/r").start, 296608u);
}

TEST_F(RangeAllocatorTest, EntriesOfAnEarlierBootAreReclaimed) {
    {
        auto a = make(2, "boot-1");
        live_ = {"A", "B"};
        a.allocate("A", "/run/r");
        a.allocate("B", "/run/r");
    }
    // The VM rebooted (or crashed): no container of boot-1 survives, whatever runc state says.
    auto b = make(2, "boot-2");
    EXPECT_EQ(b.allocate("C", "/run/r").start, 100000u);
    const auto entries = b.entries();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].container, "C");
    EXPECT_EQ(entries[0].boot_id, "boot-2");
}

TEST_F(RangeAllocatorTest, GoneContainersAreReclaimedOnlyAfterTheGracePeriod) {
    auto a = make(2);
    a.allocate("A", "/run/r");  // never became live: a create that crashed, or one in progress
    live_ = {"B"};
    a.allocate("B", "/run/r");
    now_ += 30;  // within the grace period: A may still be starting
    EXPECT_THROW(a.allocate("C", "/run/r"), Error);
    now_ += 60;  // past it: A is gone (a crash between allocate and runc, or a lost delete)
    EXPECT_EQ(a.allocate("C", "/run/r").start, 100000u);
    EXPECT_EQ(a.entries().size(), 2u);
}

TEST_F(RangeAllocatorTest, AStrayTemporaryFileFromACrashedWriteIsIgnored) {
    auto a = make();
    a.allocate("A", "/run/r");
    // What a crash mid-write leaves: a temporary file beside the table (never the table itself).
    { std::ofstream(table_ + ".tmp.123") << "{\"ranges\": [{\"ind"; }
    EXPECT_EQ(a.allocate("B", "/run/r").start, 165536u);
    EXPECT_EQ(a.entries().size(), 2u);
}

TEST_F(RangeAllocatorTest, ACorruptTableIsRefusedAndLeftAlone) {
    { std::ofstream(table_) << "{\"ranges\": 7}"; }
    auto a = make();
    try {
        a.allocate("A", "/run/r");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), table_);
        EXPECT_FALSE(e.hint().empty());
    }
    EXPECT_EQ(read_file(table_), "{\"ranges\": 7}");
}

// Found by fuzz_range_table: tables no allocator writes, each refused naming the
// problem rather than handing out IDs outside the pool or shared between containers.
TEST_F(RangeAllocatorTest, TablesThatWouldShareOrEscapeRangesAreRefused) {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"ranges":[{"index":1,"container":"A","boot_id":"boot-1"},)"
         R"({"index":1,"container":"B","boot_id":"boot-1"}]})",
         "range 1 to two containers"},
        {R"({"ranges":[{"index":0,"container":"A","boot_id":"boot-1"},)"
         R"({"index":2,"container":"A","boot_id":"boot-1"}]})",
         "container A twice"},
        {R"({"ranges":[{"index":4294967296,"container":"A"}]})", "beyond 32 bits"},
        {R"({"ranges":[{"index":0,"container":"A","boot_id":7}]})", "\"boot_id\""},
        {R"({"ranges":[{"index":0,"container":"A","allocated_at":"now"}]})", "\"allocated_at\""},
    };
    for (const auto& [table, problem] : cases) {
        { std::ofstream(table_, std::ios::trunc) << table; }
        auto a = make();
        try {
            a.allocate("C", "/run/r");
            ADD_FAILURE() << "accepted: " << table;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(problem), std::string::npos) << e.what();
        }
        EXPECT_EQ(read_file(table_), table) << "the refused table was changed";
    }
}

TEST_F(RangeAllocatorTest, AnEntryOutsideAShrunkPoolIsNotHandedBackOnARetry) {
    // Written by a wider pool: index 9 does not exist in a pool of 4.
    {
        std::ofstream(table_)
            << R"({"ranges":[{"index":9,"container":"A","boot_id":"boot-1","allocated_at":1000}]})";
    }
    live_ = {"A"};
    auto a = make(4);
    const IdRange r = a.allocate("A", "/run/r");
    EXPECT_EQ(r.start, 100000u) << "the container got a range outside the pool";
    ASSERT_EQ(a.entries().size(), 1u);
    EXPECT_EQ(a.entries()[0].index, 0u);
}

TEST_F(RangeAllocatorTest, APoolThatOverflows32BitsIsRefused) {
    EXPECT_THROW(RangeAllocator(table_, RangePool{100000, 65536, 65536}, "b",
                                [](const RangeEntry&) { return true; }),
                 Error);
}

TEST_F(RangeAllocatorTest, ConcurrentProcessesNeverShareARange) {
    constexpr int kProcs = 8;
    std::vector<pid_t> pids;
    for (int i = 0; i < kProcs; ++i) {
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            try {
                auto a = make(16);
                a.allocate("C" + std::to_string(i), "/run/r");
                ::_exit(0);
            } catch (...) {
                ::_exit(1);
            }
        }
        pids.push_back(pid);
    }
    for (pid_t pid : pids) {
        int st = 0;
        ::waitpid(pid, &st, 0);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    std::set<std::uint32_t> indices;
    for (const auto& e : make(16).entries()) indices.insert(e.index);
    EXPECT_EQ(indices.size(), static_cast<std::size_t>(kProcs));
}

}  // namespace

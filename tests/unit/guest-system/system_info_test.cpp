#include "cordon/guest/system_info.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "cordon/error.hpp"
#include "test_util.hpp"

using namespace cordon::guest;
using cordon::guest::test::TempDir;

TEST(SystemInfo, ReadsTheRealKernelUptimeAndMemory) {
    auto k = read_kernel();
    EXPECT_FALSE(k.release.empty());
    EXPECT_GT(read_uptime(), 0.0);
    auto m = read_memory();
    EXPECT_GT(m.total_kib, 0u);
    EXPECT_LE(m.available_kib, m.total_kib);
}

TEST(SystemInfo, ParsesMeminfoAndUptimeFiles) {
    TempDir tmp;
    std::ofstream(tmp.file("meminfo"))
        << "MemTotal:        1000 kB\nMemFree:  200 kB\nMemAvailable:    600 kB\n";
    auto m = read_memory(tmp.file("meminfo"));
    EXPECT_EQ(m.total_kib, 1000u);
    EXPECT_EQ(m.free_kib, 200u);
    EXPECT_EQ(m.available_kib, 600u);
    std::ofstream(tmp.file("bad")) << "nothing here\n";
    EXPECT_THROW(read_memory(tmp.file("bad")), cordon::Error);
    EXPECT_THROW(read_memory(tmp.file("absent")), cordon::Error);
    std::ofstream(tmp.file("uptime")) << "12.34 20.00\n";
    EXPECT_DOUBLE_EQ(read_uptime(tmp.file("uptime")), 12.34);
    EXPECT_THROW(read_uptime(tmp.file("absent")), cordon::Error);
}

TEST(SystemInfo, BootTimesRoundTrip) {
    TempDir tmp;
    const auto f = tmp.file("boot-times");
    EXPECT_TRUE(read_boot_times(f).empty());
    std::ofstream(f) << "init-start 1.50\ngarbage\nroot-mounted 2.25\n";
    append_boot_time(f, "agent-start", 3.126);
    auto t = read_boot_times(f);
    ASSERT_EQ(t.size(), 3u);
    EXPECT_EQ(t[0].first, "init-start");
    EXPECT_DOUBLE_EQ(t[0].second, 1.5);
    EXPECT_EQ(t[2].first, "agent-start");
    EXPECT_NEAR(t[2].second, 3.13, 0.006);
}

TEST(SystemInfo, DataDiskStates) {
    TempDir tmp;
    auto unknown = read_data_disk(tmp.file("data-disk"));
    EXPECT_EQ(unknown.state, "unknown");
    EXPECT_FALSE(unknown.ok());
    EXPECT_NE(unknown.message.find("no data disk report"), std::string::npos);

    std::ofstream(tmp.file("ok"))
        << "state=ok\ndevice=/dev/vdb\nformatted=1\nmessage=mounted on /data\n";
    auto ok = read_data_disk(tmp.file("ok"));
    EXPECT_TRUE(ok.ok());
    EXPECT_EQ(ok.device, "/dev/vdb");
    EXPECT_TRUE(ok.formatted);

    std::ofstream(tmp.file("corrupt"))
        << "state=corrupt\ndevice=/dev/vdb\nformatted=0\nmessage=a=b: refusing\n";
    auto bad = read_data_disk(tmp.file("corrupt"));
    EXPECT_EQ(bad.state, "corrupt");
    EXPECT_EQ(bad.message, "a=b: refusing");  // only the first '=' splits
}

TEST(SystemInfo, CounterSurvivesAndRejectsGarbage) {
    TempDir tmp;
    const auto f = tmp.file("boot-count");
    EXPECT_EQ(bump_counter(f), 1u);
    EXPECT_EQ(bump_counter(f), 2u);
    EXPECT_EQ(bump_counter(f), 3u);
    std::ofstream(f) << "12abc";
    EXPECT_THROW(bump_counter(f), cordon::Error);
    EXPECT_THROW(bump_counter(tmp.file("no/such/dir/count")), cordon::Error);
}

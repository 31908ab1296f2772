#include "cordon/guest/shutdown.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "cordon/quiet_asio.hpp"  // GCC 12 false positive in Asio (see the header)
#include "test_util.hpp"

using namespace std::chrono_literals;
using namespace cordon::guest;
using cordon::guest::test::run_until;

TEST(Shutdown, StopsServicesThenSyncsUnmountsAndPowersOff) {
    boost::asio::io_context io;
    Supervisor sup(io);
    ServiceSpec s;
    s.name = "engine";
    s.argv = {"/bin/sleep", "60"};
    sup.add(s);
    sup.start("engine");
    ASSERT_TRUE(run_until(io, [&] { return sup.status("engine").state == ServiceState::running; }));

    std::vector<std::string> steps;
    ShutdownOptions o;
    o.unmount = {"/var/lib/docker", "/data"};
    o.sync = [&] {
        // The engine must be gone before anything is synced or unmounted.
        EXPECT_EQ(sup.status("engine").state, ServiceState::stopped);
        steps.push_back("sync");
    };
    o.unmount_one = [&](const std::string& p) -> std::string {
        steps.push_back("umount " + p);
        return p == "/data" ? "cannot unmount /data (busy)" : "";
    };
    o.power_off = [&] { steps.push_back("poweroff"); };
    std::vector<std::string> problems;
    shutdown_system(sup, o, [&](const std::vector<std::string>& p) { problems = p; });
    ASSERT_TRUE(run_until(io, [&] { return !steps.empty() && steps.back() == "poweroff"; }));
    EXPECT_EQ(steps, (std::vector<std::string>{"sync", "umount /var/lib/docker", "umount /data",
                                               "poweroff"}));
    EXPECT_EQ(problems, std::vector<std::string>{"cannot unmount /data (busy)"});
}

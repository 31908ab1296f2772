// Live state from libvirt lifecycle events: with the poll slowed to a minute,
// a domain started and destroyed behind the window's back (through another
// libvirt connection) shows in the window within seconds.
#include <gtest/gtest.h>

#include "cordon/host/domain_xml.hpp"
#include "window_fixture.hpp"

using namespace cordon::gui;
using namespace cordon::gui::test;
namespace fs = std::filesystem;

TEST(Events, StateFollowsLibvirtWithoutPolling) {
    auto dir = tempDir("events");
    auto hv = cordon::host::make_libvirt();
    auto other = hv->connect("test:///default");  // also keeps the test driver's state alive
    Window w("test:///default", {dir / "user.json", dir / "admin.json"});
    ASSERT_TRUE(w.waitState("Stopped"));
    ASSERT_TRUE(waitFor([&] { return w.vm->eventsActive(); }, 10000));
    w.vm->setPollInterval(60000);

    cordon::host::DomainSpec spec;
    spec.name = "cordon";
    spec.kernel = dir / "vmlinuz";
    spec.initrd = dir / "initrd";
    spec.data_disk = dir / "data.qcow2";
    spec.channel_socket = dir / "ch.sock";
    spec.console_log = dir / "console.log";
    auto dom = other->define(cordon::host::domain_xml(spec));
    dom->create();
    EXPECT_TRUE(w.waitState("Running", 5000)) << w.text("stateLabel").toStdString();
    dom->destroy();
    EXPECT_TRUE(w.waitState("Stopped", 5000)) << w.text("stateLabel").toStdString();
}

TEST(Events, NoEventsWhenLibvirtIsDownAndTheWindowSaysWhy) {
    auto dir = tempDir("events-down");
    Window w("qemu+unix:///system?socket=" + (dir / "none.sock").string(),
             {dir / "user.json", dir / "admin.json"});
    ASSERT_TRUE(w.waitState("Error"));
    EXPECT_FALSE(w.vm->eventsActive());
}

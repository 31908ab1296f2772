#include "models.hpp"

#include <gtest/gtest.h>

using namespace cordon::gui;

TEST(ContainerModel, ShowsRowsAndTheRootMapping) {
    ContainerModel m;
    m.setContainers({{"id1", "web", "nginx:latest", "running", "Up 2 minutes"},
                     {"id2", "old", "busybox", "exited", "Exited (0)"}});
    ASSERT_EQ(m.rowCount(), 2);
    EXPECT_EQ(m.data(m.index(0, ContainerModel::Name)).toString(), "web");
    EXPECT_EQ(m.data(m.index(0, ContainerModel::Image)).toString(), "nginx:latest");
    EXPECT_EQ(m.data(m.index(0, ContainerModel::State)).toString(), "running (Up 2 minutes)");
    EXPECT_EQ(m.data(m.index(1, ContainerModel::RootMapsTo)).toString(), "unknown");
    m.setRootMapping("VM uid 100000");
    EXPECT_EQ(m.data(m.index(1, ContainerModel::RootMapsTo)).toString(), "VM uid 100000");
    EXPECT_EQ(m.data(m.index(0, ContainerModel::Name), Qt::ToolTipRole).toString(), "id1");
}

TEST(AuditModel, RefusedOnlyByDefaultNewestFirst) {
    AuditModel m;
    AuditEntry a;
    a.time = "1";
    a.refused = true;
    AuditEntry b;
    b.time = "2";
    b.refused = false;
    AuditEntry c;
    c.time = "3";
    c.refused = true;
    m.setEntries({a, b, c});
    ASSERT_EQ(m.rowCount(), 2);
    EXPECT_EQ(m.data(m.index(0, AuditModel::Time)).toString(), "3");
    m.setShowAllowed(true);
    EXPECT_EQ(m.rowCount(), 3);
    EXPECT_EQ(m.totalCount(), 3);
}

// The mount guard's user-space side: ring records decoded (and refused when they do not
// come from this build), overlay prefixes checked before they reach the BPF program, and
// which dockerd configurations run under the guard. Loading the program needs the VM
// (tests/e2e/engine/mount_guard_e2e_test.cpp).
#include "cordon/mountguard/mount_guard.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "cordon/error.hpp"
#include "cordon/mountguard/engine_mode.hpp"

using namespace cordon::mountguard;

namespace {
std::span<const std::byte> bytes(const mg_event& e, std::size_t size = sizeof(mg_event)) {
    return {reinterpret_cast<const std::byte*>(&e), size};
}
mg_event proc_event() {
    mg_event e{};
    e.hook = MG_HOOK_SB_MOUNT;
    e.reason = MG_REASON_TYPE;
    e.pid = 42;
    std::strcpy(e.comm, "dockerd");
    std::strcpy(e.fstype, "proc");
    std::strcpy(e.source, "proc");
    std::strcpy(e.target, "_data");
    return e;
}
}  // namespace

TEST(MountGuardRecord, DecodesARefusalIntoOneLineForPeople) {
    const Denial d = decode_denial(bytes(proc_event()));
    EXPECT_EQ(d.pid, 42u);
    EXPECT_EQ(d.fstype, "proc");
    EXPECT_EQ(d.describe(),
              "the kernel refused dockerd (pid 42) a mount of type proc from 'proc' on '_data': "
              "filesystem type not allowed");
}

TEST(MountGuardRecord, FieldsWithoutATerminatorStopAtTheirSize) {
    mg_event e = proc_event();
    std::memset(e.comm, 'x', sizeof e.comm);
    std::memset(e.detail, 'y', sizeof e.detail);
    const Denial d = decode_denial(bytes(e));
    EXPECT_EQ(d.comm, std::string(MG_COMM_LEN, 'x'));
    EXPECT_EQ(d.detail, std::string(MG_DETAIL_LEN, 'y'));
}

TEST(MountGuardRecord, AShortOrUnknownRecordIsRefusedNotGuessed) {
    const mg_event e = proc_event();
    EXPECT_THROW(decode_denial(bytes(e, sizeof e - 1)), cordon::Error);
    mg_event unknown = proc_event();
    unknown.reason = MG_REASON_COUNT;
    EXPECT_THROW(decode_denial(bytes(unknown)), cordon::Error);
    unknown = proc_event();
    unknown.hook = 0;
    EXPECT_THROW(decode_denial(bytes(unknown)), cordon::Error);
}

TEST(MountGuardPrefixes, OnlyAbsolutePathsBelowAFolderWithoutDotDotFitTheProgram) {
    EXPECT_NO_THROW(validate_prefixes({"/var/lib/docker/overlay2/", "/var/lib/docker/1.1/overlay2/",
                                       "/var/lib/docker/check-overlayfs-support"}));
    const std::vector<std::string> bads = {"",
                                           "/",
                                           "var/lib/docker/",
                                           "/var",
                                           "/var/lib/docker/../../etc/",
                                           "/a\\b/",
                                           "/" + std::string(MG_PREFIX_LEN, 'a') + "/"};
    for (const auto& bad : bads) {
        EXPECT_THROW(validate_prefixes({bad}), cordon::Error) << bad;
    }
    EXPECT_THROW(validate_prefixes({"/a/", "/b/", "/c/", "/d/", "/e/"}), cordon::Error);
}

TEST(MountGuardMode, IsolationOnOrExclusiveRangesOrUnreadableMeansGuarded) {
    using nlohmann::json;
    EXPECT_TRUE(wants_mount_guard(json{{"userns-remap", "cordon:cordon"}}));
    EXPECT_TRUE(wants_mount_guard(json{{"default-runtime", "cordon-idmap"}}));
    EXPECT_TRUE(wants_mount_guard(json::array()));
    EXPECT_TRUE(wants_mount_guard_file("/nonexistent/daemon.json"));
    // The legitimate twin: isolation off.
    EXPECT_FALSE(wants_mount_guard(json{{"data-root", "/var/lib/docker"}}));
    EXPECT_FALSE(wants_mount_guard(json{{"userns-remap", ""}, {"default-runtime", "runc"}}));
}

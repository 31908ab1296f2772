// The desktop app talks to libvirtd through libvirt's client library, which writes to the
// daemon's socket with write(): when libvirtd is restarted under a running app, a write to
// the dead connection raises SIGPIPE. It must come back as an error (EPIPE), not end the
// app (the GUI e2e suite died this way, silently, in one run of its libvirtd restart).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "cordon/host/virt.hpp"

TEST(LibvirtClient, ADaemonThatWentAwayCannotKillTheAppWithSigpipe) {
    struct sigaction dfl {
    }, old{};
    dfl.sa_handler = SIG_DFL;
    ASSERT_EQ(::sigaction(SIGPIPE, &dfl, &old), 0);
    // What cordon-desktop's main() and the GUI suites do before anything talks to libvirt.
    auto hv = cordon::host::make_libvirt();
    ASSERT_TRUE(hv);
    // A connection whose other end is gone, like libvirtd's socket after a restart.
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ::close(sv[1]);
    errno = 0;
    const ssize_t n = ::write(sv[0], "x", 1);  // with SIGPIPE at its default, the test dies here
    const int err = errno;
    ::close(sv[0]);
    EXPECT_EQ(n, -1);
    EXPECT_EQ(err, EPIPE);
    ::sigaction(SIGPIPE, &old, nullptr);
}

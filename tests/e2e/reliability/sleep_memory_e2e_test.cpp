// Host sleep and memory (issue 9, items 2 and 4) on one real VM:
//  - the VM paused for over a minute (`virsh suspend`, as a host sleep freezes it): after
//    `virsh resume` the guest clock is back within 2 s of the host's within seconds,
//    because the host agent pushes the time, and Docker works without user action; a port
//    published before the pause answers again on the host, a TCP connection opened through
//    it before the pause still works after it (the host agent waits for a paused VM), a
//    request made during the pause is answered after it, and a port published after the
//    resume is forwarded too (the ports watch came back);
//  - QEMU's RSS falls back near its idle level after a container that held 1 GiB exits
//    (virtio-balloon free page reporting).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "cordon/unique_fd.hpp"
#include "reliability_support.hpp"

using namespace cordon::e2e;
using namespace cordon::e2e::reliability;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

class SleepMemory : public ::testing::Test {
  protected:
    void SetUp() override {
        CORDON_REQUIRE_VM();
        VmEnvironment::get().ensure_test_image();
    }
};

// The smallest of a few samples a second apart: RSS right after activity is noisy.
double settled_rss(pid_t pid, int samples = 5) {
    double best = -1;
    for (int i = 0; i < samples; ++i) {
        const double r = rss_mib(pid);
        if (best < 0 || (r >= 0 && r < best))
            best = r;
        std::this_thread::sleep_for(1s);
    }
    return best;
}

// A loopback port nobody listens on right now, other than `not_this` (>= 1024: the host
// agent may not run as root).
std::uint16_t unused_loopback_port(std::uint16_t not_this = 0) {
    for (int attempt = 0; attempt < 50; ++attempt) {
        cordon::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
            continue;
        const std::uint16_t p = ntohs(a.sin_port);
        if (p >= 1024 && p < 60000 && p != not_this)
            return p;
    }
    return 0;
}

// A TCP connection to 127.0.0.1:port; invalid when refused.
cordon::UniqueFd connect_loopback(std::uint16_t port) {
    cordon::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        return {};
    return fd;
}

// What reading from a connection gave within a time limit.
struct ReadOutcome {
    enum class Kind { data, eof, error, timeout } kind = Kind::timeout;
    std::string data;   // up to and including the first newline (data), or what came before
    std::string error;  // errno text (error)
    std::string text() const {
        switch (kind) {
            case Kind::data:
                return "data '" + trim(data) + "'";
            case Kind::eof:
                return "end of stream (FIN)" + (data.empty() ? "" : " after '" + trim(data) + "'");
            case Kind::error:
                return "error: " + error;
            case Kind::timeout:
                return "nothing (still open, no answer)";
        }
        return {};
    }
};

// Reads one line (or to the end when !line), waiting at most `limit` in all.
ReadOutcome read_from(int fd, std::chrono::milliseconds limit, bool line = true) {
    ReadOutcome out;
    const auto end = Clock::now() + limit;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
        if (left <= 0) {
            out.kind = ReadOutcome::Kind::timeout;
            return out;
        }
        pollfd p{fd, POLLIN, 0};
        const int rc = ::poll(&p, 1, static_cast<int>(left));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0)
            continue;  // the deadline check above ends it
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            out.kind = ReadOutcome::Kind::error;
            out.error = std::strerror(errno);
            return out;
        }
        if (n == 0) {
            out.kind = line || out.data.empty() ? ReadOutcome::Kind::eof : ReadOutcome::Kind::data;
            return out;
        }
        out.data.append(buf, static_cast<std::size_t>(n));
        if (line && out.data.find('\n') != std::string::npos) {
            out.kind = ReadOutcome::Kind::data;
            return out;
        }
    }
}

bool send_all(int fd, const std::string& s) {
    return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

// An HTTP/1.0 GET of / through 127.0.0.1:port, waiting at most `limit`; "" when the
// connection is refused or closed without an answer.
std::string http_get(std::uint16_t port, std::chrono::milliseconds limit) {
    cordon::UniqueFd fd = connect_loopback(port);
    if (!fd || !send_all(fd.get(), "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"))
        return {};
    return read_from(fd.get(), limit, false).data;
}

// A web page on :80 and a line echo server on :81 (persistent connections).
std::string web_and_echo_command(const std::string& marker) {
    return "mkdir -p /www && echo " + marker +
           " > /www/index.html && httpd -p 80 -h /www && exec nc -ll -p 81 -e cat";
}

// Polls GET / on the port until the answer holds `marker`; seconds taken, -1 after `limit`.
double wait_for_page(std::uint16_t port, const std::string& marker, std::chrono::seconds limit,
                     int* attempts = nullptr) {
    const auto t0 = Clock::now();
    int n = 0;
    while (Clock::now() - t0 < limit) {
        ++n;
        if (http_get(port, 10s).find(marker) != std::string::npos) {
            if (attempts)
                *attempts = n;
            return seconds_since(t0);
        }
        std::this_thread::sleep_for(250ms);
    }
    if (attempts)
        *attempts = n;
    return -1;
}

// The last lines of the host agent's log (for failure messages).
std::string hostagent_log_tail(const VmEnvironment& vm, std::size_t lines = 40) {
    const std::string dir = status_json(vm)["paths"].value("state_dir", "");
    std::ifstream in(dir + "/hostagent.log");
    std::vector<std::string> all;
    for (std::string l; std::getline(in, l);) all.push_back(l);
    std::ostringstream out;
    for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
        out << all[i] << "\n";
    return out.str();
}

}  // namespace

TEST_F(SleepMemory, FreedGuestMemoryGoesBackToTheHost) {
    auto& vm = VmEnvironment::get();
    const std::string name = vm_name(vm);
    const pid_t qemu = qemu_pid(name);
    ASSERT_GT(qemu, 0) << "no QEMU pid file for " << name;
    auto xml = virsh({"dumpxml", name});
    EXPECT_NE(xml.out.find("freePageReporting='on'"), std::string::npos)
        << "the balloon has no free page reporting";
    auto mod = vm.vm_exec("grep -c '^virtio_balloon ' /proc/modules");
    EXPECT_EQ(trim(mod.out), "1") << "virtio_balloon is not loaded in the guest: " << describe(mod);

    // Idle means after the same kind of work on a small scale: under TCG, QEMU's RSS also
    // holds its translated code, which grows the first time a path runs.
    auto warm = vm.docker({"run", "--rm", "--tmpfs", "/big:size=64m", vm.test_image(), "sh", "-c",
                           "busybox fallocate -l 16777216 /big/f && echo filled"});
    ASSERT_TRUE(warm.ok()) << describe(warm);
    std::this_thread::sleep_for(10s);
    const double idle = settled_rss(qemu, 8);
    ASSERT_GT(idle, 0);
    auto hog = vm.docker({"run", "-d", "--name", "rel-hog", "--tmpfs", "/big:size=1200m",
                          vm.test_image(), "sh", "-c",
                          // fallocate on tmpfs allocates (and clears) the pages in the kernel: a
                          // byte-by-byte writer takes minutes under TCG.
                          "busybox fallocate -l 1073741824 /big/f && echo filled && sleep 3600"});
    ASSERT_TRUE(hog.ok()) << describe(hog);
    const auto t0 = Clock::now();
    bool filled = false;
    while (!filled && seconds_since(t0) < 300) {
        filled = vm.docker({"logs", "rel-hog"}, 30s).out.find("filled") != std::string::npos;
        if (!filled)
            std::this_thread::sleep_for(1s);
    }
    if (!filled)
        vm.docker({"rm", "-f", "rel-hog"}, 120s);
    ASSERT_TRUE(filled) << "the container did not fill 1 GiB of tmpfs within 300 s";
    const double peak = rss_mib(qemu);
    const auto t1 = Clock::now();  // the memory goes back while `docker rm` still runs
    auto rm = vm.docker({"rm", "-f", "rel-hog"}, 120s);
    ASSERT_TRUE(rm.ok()) << describe(rm);
    double after = rss_mib(qemu);
    while (after >= idle + 300 && seconds_since(t1) < 180) {
        std::this_thread::sleep_for(1s);
        after = rss_mib(qemu);
    }
    const double fell_in = seconds_since(t1);
    after = std::min(after, settled_rss(qemu, 3));
    std::cout << "[ numbers ] QEMU RSS: idle " << idle << " MiB, with 1 GiB held " << peak
              << " MiB, "
              << "after the container exited " << after << " MiB (under idle + 300 MiB " << fell_in
              << " s after `docker rm -f` began)\n";
    EXPECT_GT(peak, idle + 700)
        << "the container's 1 GiB never reached QEMU's RSS: the test measured nothing";
    EXPECT_LT(after, idle + 300) << "the guest did not give the freed memory back";
}

TEST_F(SleepMemory, ClockIsCorrectedAfterAPauseAndDockerAndPortsKeepWorking) {
    auto& vm = VmEnvironment::get();
    const std::string name = vm_name(vm);
    const std::string control = status_json(vm)["paths"].value("control_socket", "");

    // A published web page and a line echo server, reached from the host before the pause.
    const std::uint16_t web_port = unused_loopback_port();
    const std::uint16_t echo_port = unused_loopback_port(web_port);
    ASSERT_NE(web_port, 0);
    ASSERT_NE(echo_port, 0);
    const std::string marker = "cordon-sleep-page";
    vm.docker({"rm", "-f", "rel-web", "rel-web2"}, 60s);
    auto web = vm.docker({"run", "-d", "--name", "rel-web", "-p",
                          "127.0.0.1:" + std::to_string(web_port) + ":80", "-p",
                          "127.0.0.1:" + std::to_string(echo_port) + ":81", vm.test_image(), "sh",
                          "-c", web_and_echo_command(marker)});
    ASSERT_TRUE(web.ok()) << describe(web);
    const double page_before = wait_for_page(web_port, marker, 120s);
    ASSERT_GE(page_before, 0) << "127.0.0.1:" << web_port
                              << " never served the page before the pause\n--- host agent\n"
                              << hostagent_log_tail(vm);
    // The connection that lives across the pause: one echo round trip proves the whole path.
    cordon::UniqueFd echo;
    ReadOutcome first_echo;
    for (int i = 0; i < 60 && first_echo.kind != ReadOutcome::Kind::data; ++i) {
        if (i > 0)
            std::this_thread::sleep_for(500ms);
        echo = connect_loopback(echo_port);
        if (echo && send_all(echo.get(), "before\n"))
            first_echo = read_from(echo.get(), 10s);
    }
    ASSERT_EQ(first_echo.kind, ReadOutcome::Kind::data) << first_echo.text();
    ASSERT_EQ(trim(first_echo.data), "before");
    std::cout << "[ numbers ] before the pause: the published page answered " << page_before
              << " s after docker run -d returned\n";

    const ClockReading e0 = clock_error(control);
    std::cout << "[ numbers ] clock error before the pause: " << e0.error_s << " s (+/- "
              << e0.uncertainty_s << ")\n";
    EXPECT_LT(std::fabs(e0.error_s), 2.0);

    const int steps_before = agent_info(vm)["clock"].value("steps", 0);
    auto s = virsh({"suspend", name});
    ASSERT_TRUE(s.ok()) << describe(s);
    const auto suspended = Clock::now();
    const int pause_s = 75;
    // Watch the open connection while the VM is frozen: does the host end it?
    std::optional<ReadOutcome> during;
    double during_at = -1;
    while (seconds_since(suspended) < pause_s) {
        const auto left =
            std::chrono::milliseconds(pause_s * 1000) -
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - suspended);
        if (left.count() <= 0)
            break;
        if (during) {
            std::this_thread::sleep_for(left);
            break;
        }
        ReadOutcome o = read_from(echo.get(), left);
        if (o.kind != ReadOutcome::Kind::timeout) {
            during = o;
            during_at = seconds_since(suspended);
        }
    }
    // A client that asks for the published page at the end of the pause: the host agent
    // accepts and holds the request while the VM is paused; it is answered after resume
    // (as a request to a paused machine's real NIC would be, once its SYN is retried).
    std::atomic<double> paused_get_done_at{-1};
    std::string paused_page;
    Clock::time_point paused_get_done;  // written by the thread, read after join()
    const auto probe_start = Clock::now();
    std::jthread paused_get([&] {
        paused_page = http_get(web_port, 90s);
        paused_get_done = Clock::now();
        paused_get_done_at = seconds_since(probe_start);
    });
    std::this_thread::sleep_for(2s);
    const bool answered_while_paused = paused_get_done_at.load() >= 0;
    auto r = virsh({"resume", name});
    ASSERT_TRUE(r.ok()) << describe(r);
    const auto resumed = Clock::now();

    // From the moment of resume, a host client asks for the published page until it comes.
    std::atomic<double> page_after{-1};
    std::atomic<int> page_attempts{0};
    std::jthread prober([&] {
        int n = 0;
        page_after = wait_for_page(web_port, marker, 120s, &n);
        page_attempts = n;
    });

    // The first reading may still see the pause; within seconds it must be gone.
    double first = NAN, corrected_after = -1, last = NAN;
    while (seconds_since(resumed) < 60) {
        try {
            const ClockReading e = clock_error(control);
            last = e.error_s;
            if (std::isnan(first))
                first = e.error_s;
            if (std::fabs(e.error_s) < 2.0) {
                corrected_after = seconds_since(resumed);
                break;
            }
        } catch (const std::exception& ex) {
            std::cout << "  (reading the guest clock: " << ex.what() << ")\n";
        }
        std::this_thread::sleep_for(500ms);
    }
    std::cout << "[ numbers ] paused " << pause_s << " s: first clock error after resume " << first
              << " s; within 2 s after " << corrected_after << " s (last reading " << last
              << " s)\n";
    ASSERT_GE(corrected_after, 0) << "the guest clock was still " << last
                                  << " s off 60 s after resume";
    EXPECT_LT(corrected_after, 15) << "the clock took too long to be corrected";
    // The guest's clock did stop during the pause, and a step (not luck) corrected it.
    const json info = agent_info(vm);
    std::cout << "[ numbers ] guest clock state: " << info["clock"].dump() << "\n";
    EXPECT_GT(info["clock"].value("steps", 0), steps_before) << info["clock"].dump();
    EXPECT_LT(info["clock"].value("last_step_offset_ms", 0.0), -1000.0 * (pause_s - 15))
        << "the guest clock was not behind by about the pause: " << info["clock"].dump();

    // The connection opened before the pause. The host agent's keepalive (a PING every
    // 10 s, 30 s without a PONG) asks libvirt before giving up, and a paused VM is waited
    // for: the channel and every stream on it survive the pause, as they do a real host
    // sleep (which stops the host agent's clock too).
    EXPECT_FALSE(during) << "the connection opened before the pause ended during it, " << during_at
                         << " s after suspend: " << (during ? during->text() : "")
                         << "\n--- host agent\n"
                         << hostagent_log_tail(vm);
    ReadOutcome after_echo{ReadOutcome::Kind::error, {}, "send failed"};
    const auto echo_sent = Clock::now();
    if (!during && send_all(echo.get(), "after\n"))
        after_echo = read_from(echo.get(), 30s);
    std::cout << "[ numbers ] the TCP connection opened before the pause, after resume: "
              << after_echo.text() << " in " << seconds_since(echo_sent) << " s\n";
    EXPECT_EQ(after_echo.kind, ReadOutcome::Kind::data) << after_echo.text();
    EXPECT_EQ(trim(after_echo.data), "after");

    paused_get.join();
    std::cout << "[ numbers ] a GET made at the end of the pause was answered "
              << std::chrono::duration<double>(paused_get_done - resumed).count()
              << " s after resume with "
              << (paused_page.find(marker) != std::string::npos ? "the page"
                                                                : "'" + trim(paused_page) + "'")
              << "\n";
    EXPECT_FALSE(answered_while_paused) << "a paused guest answered: '" << paused_page << "'";
    EXPECT_NE(paused_page.find(marker), std::string::npos)
        << "the GET held through the pause was not answered after resume\n--- host agent\n"
        << hostagent_log_tail(vm);

    // The page published before the pause answers again, without any user action.
    prober.join();
    std::cout << "[ numbers ] the port published before the pause served the page "
              << page_after.load() << " s after resume (" << page_attempts.load()
              << " attempt(s))\n";
    ASSERT_GE(page_after.load(), 0)
        << "127.0.0.1:" << web_port << " did not serve the page within 120 s of resume\n"
        << "--- host agent\n"
        << hostagent_log_tail(vm);
    EXPECT_LT(page_after.load(), 30.0) << hostagent_log_tail(vm);

    // Docker without user action.
    const double back = wait_for_docker(vm, 120s);
    std::cout << "[ numbers ] docker answered " << back << " s after the port check\n";
    ASSERT_GE(back, 0);
    auto run_r = vm.docker({"run", "--rm", vm.test_image(), "true"});
    EXPECT_TRUE(run_r.ok()) << describe(run_r);

    // A port published after the resume is forwarded too: the ports watch came back.
    const std::uint16_t new_port = unused_loopback_port(web_port);
    ASSERT_NE(new_port, 0);
    auto web2 = vm.docker({"run", "-d", "--name", "rel-web2", "-p",
                           "127.0.0.1:" + std::to_string(new_port) + ":80", vm.test_image(), "sh",
                           "-c", web_and_echo_command("cordon-after-resume")});
    ASSERT_TRUE(web2.ok()) << describe(web2);
    const double new_page = wait_for_page(new_port, "cordon-after-resume", 120s);
    std::cout << "[ numbers ] a port published after resume served its page " << new_page
              << " s after docker run -d returned\n";
    EXPECT_GE(new_page, 0) << "127.0.0.1:" << new_port
                           << " (published after resume) never served the page\n"
                           << "--- host agent\n"
                           << hostagent_log_tail(vm);
    // And the old one still does.
    EXPECT_NE(http_get(web_port, 30s).find(marker), std::string::npos);
    vm.docker({"rm", "-f", "rel-web", "rel-web2"}, 120s);
}

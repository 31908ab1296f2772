// The host Docker client against a real unix-socket server that plays the
// engine's part with fixed replies (error paths: refusals, bad bodies,
// timeouts, a dead socket).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "cordon/error.hpp"
#include "cordon/host/docker/client.hpp"
#include "gui_test_main.hpp"

using cordon::host::docker::Client;
namespace fs = std::filesystem;

namespace {

// Accepts connections on a unix socket and answers each with `reply`
// (or holds the connection silent when reply is empty).
class FakeEngine {
  public:
    FakeEngine(fs::path path, std::string reply)
        : path_(std::move(path)), reply_(std::move(reply)) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
        ::unlink(path_.c_str());
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 4) != 0) {
            throw std::runtime_error("bind failed");
        }
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeEngine() {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    std::string lastRequest() const { return last_; }

  private:
    void serve() {
        while (!stop_) {
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0)
                return;
            std::string req;
            char buf[4096];
            while (req.find("\r\n\r\n") == std::string::npos) {
                ssize_t n = ::read(c, buf, sizeof buf);
                if (n <= 0)
                    break;
                req.append(buf, static_cast<std::size_t>(n));
            }
            last_ = req;
            if (reply_.empty()) {
                while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            } else {
                (void)::write(c, reply_.data(), reply_.size());
            }
            ::close(c);
        }
    }
    fs::path path_;
    std::string reply_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::string last_;
};

std::string http(int status, const std::string& body, const std::string& extra = {}) {
    return "HTTP/1.1 " + std::to_string(status) +
           " X\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

}  // namespace

TEST(DockerClient, ListsContainers) {
    auto dir = cordon::gui::test::tempDir("docker-list");
    FakeEngine engine(
        dir / "d.sock",
        http(200, R"([{"Id":"abc123","Names":["/web"],"Image":"nginx","State":"running",)"
                  R"("Status":"Up 1 minute","Created":5},{"Id":"def456789012345","Names":[],)"
                  R"("Image":"busybox","State":"exited"}])"));
    Client c(dir / "d.sock");
    auto list = c.list_containers(true);
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0].name, "web");
    EXPECT_EQ(list[0].image, "nginx");
    EXPECT_EQ(list[0].state, "running");
    EXPECT_EQ(list[0].created, 5);
    EXPECT_EQ(list[1].name, "def456789012");
    EXPECT_NE(engine.lastRequest().find("GET /containers/json?all=1 HTTP/1.1"), std::string::npos);
}

TEST(DockerClient, ChunkedReply) {
    auto dir = cordon::gui::test::tempDir("docker-chunked");
    const std::string body = R"([{"Id":"x1","Names":["/a"],"State":"running"}])";
    char len[16];
    std::snprintf(len, sizeof len, "%zx", body.size());
    FakeEngine engine(dir / "d.sock", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                          std::string(len) + "\r\n" + body + "\r\n0\r\n\r\n");
    auto list = Client(dir / "d.sock").list_containers(true);
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].name, "a");
}

TEST(DockerClient, PolicyRefusalCarriesTheEngineMessage) {
    auto dir = cordon::gui::test::tempDir("docker-403");
    FakeEngine engine(
        dir / "d.sock",
        http(403, R"({"message":"cordon policy: privileged containers are refused"})"));
    try {
        Client(dir / "d.sock").list_containers(true);
        FAIL() << "expected an error";
    } catch (const cordon::Error& e) {
        EXPECT_NE(e.failure().find("HTTP 403"), std::string::npos) << e.what();
        EXPECT_NE(e.failure().find("privileged containers are refused"), std::string::npos)
            << e.what();
        EXPECT_NE(e.hint().find("Audit"), std::string::npos);
    }
}

TEST(DockerClient, BadBodiesAreErrorsNotCrashes) {
    auto dir = cordon::gui::test::tempDir("docker-bad");
    {
        FakeEngine engine(dir / "d.sock", http(200, "<html>"));
        EXPECT_THROW(Client(dir / "d.sock").list_containers(true), cordon::Error);
    }
    {
        FakeEngine engine(dir / "d.sock", http(200, R"({"Id":"x"})"));
        EXPECT_THROW(Client(dir / "d.sock").list_containers(true), cordon::Error);
    }
    {
        FakeEngine engine(dir / "d.sock", http(200, R"([{"Names":["/x"]}])"));
        EXPECT_THROW(Client(dir / "d.sock").list_containers(true), cordon::Error);
    }
    {
        FakeEngine engine(dir / "d.sock", "garbage that is not HTTP\r\n\r\n");
        EXPECT_THROW(Client(dir / "d.sock").list_containers(true), cordon::Error);
    }
}

TEST(DockerClient, MissingSocketSaysStartTheVm) {
    auto dir = cordon::gui::test::tempDir("docker-missing");
    try {
        Client(dir / "nope.sock").list_containers(true);
        FAIL();
    } catch (const cordon::Error& e) {
        EXPECT_NE(e.failure().find("does not exist"), std::string::npos);
        EXPECT_EQ(e.subject(), (dir / "nope.sock").string());
        EXPECT_NE(e.hint().find("start the VM"), std::string::npos);
    }
}

TEST(DockerClient, DeadSocketIsRefused) {
    auto dir = cordon::gui::test::tempDir("docker-dead");
    { FakeEngine engine(dir / "d.sock", http(200, "[]")); }  // closed: the socket file stays
    ASSERT_TRUE(fs::exists(dir / "d.sock"));
    try {
        Client(dir / "d.sock").list_containers(true);
        FAIL();
    } catch (const cordon::Error& e) {
        EXPECT_NE(e.failure().find("cannot connect"), std::string::npos) << e.what();
        EXPECT_NE(e.hint().find("nothing listens"), std::string::npos) << e.what();
    }
}

TEST(DockerClient, SilentEngineTimesOut) {
    auto dir = cordon::gui::test::tempDir("docker-silent");
    FakeEngine engine(dir / "d.sock", "");
    const auto t0 = std::chrono::steady_clock::now();
    try {
        Client(dir / "d.sock", std::chrono::milliseconds(300)).list_containers(true);
        FAIL();
    } catch (const cordon::Error& e) {
        EXPECT_NE(e.failure().find("no answer within 300 ms"), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

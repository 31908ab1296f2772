// An isolation switch killed half-way, finished by the next guest agent. An "earlier agent"
// (a forked process) brings up two real services under a real Supervisor (`sleep` stands in
// for containerd and dockerd), starts a real switch on real volumes (rename + chown in a
// temp dir; the tests run as root) and is killed with SIGKILL after its second volume. The
// new agent (this process, a child subreaper as init is in the VM) runs EngineService as the
// agent does: prepare_boot, then start_services, which must stop the leftovers, finish the
// switch before "dockerd" starts, and load the saved images once dockerd answers (a small
// HTTP responder on the unix socket plays dockerd's API and keeps what it was sent).
// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "cordon/atomic_file.hpp"
#include "cordon/engine/isolation_switch.hpp"
#include "cordon/engine/switch_journal.hpp"
#include "cordon/guest/leftovers.hpp"
#include "cordon/guest/service_record.hpp"
#include "cordon/unique_fd.hpp"
#include "engine_fixture.hpp"
#include "engine_service.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cordon::agent::EngineService;
using cordon::guest::ServiceSpec;
using cordon::guest::ServiceState;
using cordon::guest::Supervisor;
using cordon::agent::test::alive_not_zombie;
using cordon::agent::test::run_until;
using namespace cordon::engine;

namespace {


// dockerd's API as far as the agent uses it here: /_ping, and POST /images/load whose
// body it keeps. One request per connection, answered after the whole body is read.
class FakeDockerd {
  public:
    explicit FakeDockerd(const std::string& path) {
        ::unlink(path.c_str());
        fd_ = cordon::UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        EXPECT_EQ(::listen(fd_.get(), 8), 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeDockerd() {
        ::shutdown(fd_.get(), SHUT_RDWR);
        thread_.join();
    }
    std::vector<std::string> loaded() {
        std::lock_guard<std::mutex> l(mu_);
        return loaded_;
    }

  private:
    void serve() {
        for (;;) {
            cordon::UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!c)
                return;
            std::string in;
            char buf[4096];
            std::size_t head_end = std::string::npos;
            std::size_t want = 0;
            for (;;) {
                const ssize_t n = ::read(c.get(), buf, sizeof buf);
                if (n <= 0)
                    break;
                in.append(buf, static_cast<std::size_t>(n));
                if (head_end == std::string::npos) {
                    head_end = in.find("\r\n\r\n");
                    if (head_end == std::string::npos)
                        continue;
                    const auto cl = in.find("Content-Length: ");
                    if (cl != std::string::npos && cl < head_end)
                        want = std::stoul(in.substr(cl + 16));
                }
                if (in.size() >= head_end + 4 + want)
                    break;
            }
            if (head_end == std::string::npos)
                continue;
            std::string body = "OK";
            std::string type = "text/plain";
            if (in.rfind("POST /images/load", 0) == 0) {
                std::lock_guard<std::mutex> l(mu_);
                loaded_.push_back(in.substr(head_end + 4));
                body = "{\"stream\":\"Loaded image: busybox:latest\\n\"}\n";
                type = "application/json";
            }
            const std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: " + type +
                                      "\r\nContent-Length: " + std::to_string(body.size()) +
                                      "\r\nConnection: close\r\n\r\n" + body;
            [[maybe_unused]] auto w = ::write(c.get(), reply.data(), reply.size());
        }
    }
    cordon::UniqueFd fd_;
    std::thread thread_;
    std::mutex mu_;
    std::vector<std::string> loaded_;
};

struct FakeApi : DockerApi {
    bool ping() override { return true; }
    std::string version() override { return "20.10.24"; }
    std::vector<ContainerSummary> running_containers() override { return {}; }
    void stop_container(const std::string&, std::chrono::seconds) override {}
    std::vector<std::string> image_tags() override { return {"busybox:latest"}; }
    void save_images(const std::vector<std::string>&, const std::string& p) override {
        cordon::write_file_atomically(p, "image archive");
    }
    void load_images(const std::string&) override {}
};

// The earlier agent's engine control: its services keep running (the kill comes before
// the switch would have restarted them), which the new agent must cope with.
struct IdleControl : EngineControl {
    void stop_engine() override {}
    void start_engine() override {}
    void wait_ready(std::chrono::seconds) override {}
};

const IdMapping kRemap{{100000, 65536}, {100000, 65536}};

class EngineRecovery : public cordon::agent::test::EngineAgentFixture {
  protected:
    void SetUp() override {
        if (::geteuid() != 0)
            GTEST_SKIP() << "moving and re-owning volumes needs root (CI runs as root)";
        make_layout("cordon-engine-recovery", {"611", "612"});
        IsolationStore(paths_.state_dir + "/isolation.json").save({false, 1, false});
        for (const char* v : {"cache", "db", "web"}) {
            const fs::path data = plain_volumes() / v / "_data";
            fs::create_directories(data / "sub");
            std::ofstream(data / "file") << v;
            std::ofstream(data / "sub" / "owned") << v;
            ASSERT_EQ(::lchown((data / "sub" / "owned").c_str(), 1000, 1001), 0);
        }
    }
    fs::path plain_volumes() const { return fs::path(paths_.docker_root) / "volumes"; }
    fs::path remap_volumes() const {
        return fs::path(paths_.docker_root) / "100000.100000" / "volumes";
    }
    // The earlier agent: brings the engine up, starts switching isolation on, and is killed
    // by SIGKILL once `kill_after` volumes are moved. Returns its services' pids.
    std::pair<pid_t, pid_t> run_killed_agent(std::size_t kill_after) {
        const auto [agent, pids] = fork_earlier_agent([&](asio::io_context&, Supervisor&) {
            std::ofstream(paths_.daemon_json + ".switching")
                << "started by agent pid " << ::getpid();
            IsolationStore store(paths_.state_dir + "/isolation.json");
            FakeApi api;
            IdleControl control;
            IsolationSwitch sw(paths_, RemapUser{}, store, api, control);
            sw.set_step_hook([kill_after](const std::string& step, const SwitchJournal& j) {
                if (step == "volume moved" && j.done.size() == kill_after)
                    ::raise(SIGKILL);
            });
            try {
                sw.apply({true, true, {}}, {}, [](const std::string&) {});
            } catch (...) {
            }
        });
        int status = 0;
        EXPECT_EQ(::waitpid(agent, &status, 0), agent);
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
        return pids;
    }

    static struct stat st(const fs::path& p) {
        struct stat s {};
        EXPECT_EQ(::lstat(p.c_str(), &s), 0) << p;
        return s;
    }
};

}  // namespace

TEST_F(EngineRecovery, ASwitchKilledMidwayIsFinishedBeforeTheEngineStartsAndItsImagesLoad) {
    const auto [containerd, dockerd] = run_killed_agent(2);
    // What the kill left: the old mode saved, volumes split between the roots.
    EXPECT_FALSE(IsolationStore(paths_.state_dir + "/isolation.json").load().enabled);
    EXPECT_TRUE(fs::exists(remap_volumes() / "db"));
    EXPECT_TRUE(fs::exists(plain_volumes() / "web"));
    ASSERT_TRUE(fs::exists(switch_journal_path(paths_)));

    asio::io_context io;
    FakeDockerd dockerd_api(paths_.dockerd_socket);
    Supervisor sup(io);
    std::unique_ptr<EngineService> engine;
    const auto p = start_new_agent(io, sup, engine);
    EXPECT_TRUE(engine->isolation());
    EXPECT_EQ(p.path, "restarted");
    EXPECT_EQ(
        p.reason.rfind("finished an interrupted isolation switch: 3 volumes (1 moved now)", 0), 0u)
        << p.reason;
    EXPECT_NE(p.reason.find("stopped containerd pid " + std::to_string(containerd)),
              std::string::npos)
        << p.reason;
    EXPECT_EQ(p.summary, "engine restarted (finished an interrupted isolation switch)");
    EXPECT_EQ(engine->recovery().state, "finished");
    // The leftovers were stopped and the new services run.
    EXPECT_FALSE(alive_not_zombie(containerd));
    EXPECT_FALSE(alive_not_zombie(dockerd));
    EXPECT_EQ(sup.status("dockerd").state, ServiceState::running);
    // Every volume is in the remapped root, re-owned; the mode is saved; no journal.
    for (const char* v : {"cache", "db", "web"}) {
        const fs::path data = remap_volumes() / v / "_data";
        EXPECT_FALSE(fs::exists(plain_volumes() / v)) << v;
        EXPECT_EQ(cordon::read_file((data / "file").string()), v);
        EXPECT_EQ(st(data).st_uid, kRemap.uids.start) << v;
        EXPECT_EQ(st(data / "file").st_gid, kRemap.gids.start) << v;
        EXPECT_EQ(st(data / "sub" / "owned").st_uid, kRemap.uids.start + 1000) << v;
        EXPECT_EQ(st(data / "sub" / "owned").st_gid, kRemap.gids.start + 1001) << v;
    }
    EXPECT_TRUE(IsolationStore(paths_.state_dir + "/isolation.json").load().enabled);
    EXPECT_FALSE(fs::exists(switch_journal_path(paths_)));
    EXPECT_NE(cordon::read_file(paths_.daemon_json).find("userns-remap"), std::string::npos);
    // The images the killed switch saved are loaded once dockerd answers, then deleted.
    EXPECT_TRUE(run_until(io, [&] { return engine->recovery().images == "loaded"; }, 20s))
        << engine->recovery().images;
    EXPECT_EQ(dockerd_api.loaded(), std::vector<std::string>{"image archive"});
    EXPECT_FALSE(fs::exists(switch_images_archive(paths_)));
    EXPECT_FALSE(fs::exists(switch_images_note(paths_)));
    EXPECT_FALSE(engine->switching());
}

TEST_F(EngineRecovery, AfterAPowerLossTheFirstStartFinishesTheSwitch) {
    // A journal and no leftovers, records or marker (a new boot): killed after one volume.
    const auto [containerd, dockerd] = run_killed_agent(1);
    for (pid_t pid : {containerd, dockerd}) ::kill(pid, SIGKILL);
    fs::remove_all(run_dir());
    fs::create_directories(run_dir());
    asio::io_context io;
    FakeDockerd dockerd_api(paths_.dockerd_socket);
    Supervisor sup(io);
    std::unique_ptr<EngineService> engine;
    const auto p = start_new_agent(io, sup, engine);
    EXPECT_EQ(p.path, "started");
    EXPECT_EQ(p.reason,
              "finished an interrupted isolation switch: 3 volumes (2 moved now), isolation on; "
              "its images load once the engine answers")
        << p.reason;
    for (const char* v : {"cache", "db", "web"})
        EXPECT_EQ(st(remap_volumes() / v / "_data" / "sub" / "owned").st_uid,
                  kRemap.uids.start + 1000);
    EXPECT_TRUE(run_until(io, [&] { return engine->recovery().images == "loaded"; }, 20s));
}

TEST_F(EngineRecovery, ACorruptJournalIsSetAsideTheVolumesStayAndTheSavedModeHolds) {
    const std::string journal = switch_journal_path(paths_);
    std::ofstream(journal) << "{\"version\": 1, \"kind\": \"switch\", \"volumes\": [\"db\"";
    asio::io_context io;
    FakeDockerd dockerd_api(paths_.dockerd_socket);
    Supervisor sup(io);
    std::unique_ptr<EngineService> engine;
    const auto p = start_new_agent(io, sup, engine);
    EXPECT_FALSE(engine->isolation());  // the saved mode: off
    EXPECT_EQ(engine->recovery().state, "set_aside");
    EXPECT_EQ(p.path, "started");
    EXPECT_NE(p.reason.find("kept as " + journal + ".bad"), std::string::npos) << p.reason;
    EXPECT_NE(p.reason.find("no volume was touched"), std::string::npos) << p.reason;
    EXPECT_FALSE(fs::exists(journal));
    EXPECT_TRUE(fs::exists(journal + ".bad"));
    for (const char* v : {"cache", "db", "web"}) {
        EXPECT_EQ(st(plain_volumes() / v / "_data" / "sub" / "owned").st_uid, 1000u) << v;
        EXPECT_EQ(st(plain_volumes() / v / "_data").st_uid, 0u) << v;
    }
    EXPECT_FALSE(fs::exists(remap_volumes()));
    EXPECT_EQ(cordon::read_file(paths_.daemon_json).find("userns-remap"), std::string::npos);
    EXPECT_FALSE(IsolationStore(paths_.state_dir + "/isolation.json").load().enabled);
}

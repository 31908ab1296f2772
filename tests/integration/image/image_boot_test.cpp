// Boots the Cordon image with plain QEMU under TCG and checks it from the host side of the
// channel: info, docker through the "docker" service, clean shutdown, persistence of the
// data disk across boots, and a clear error (not a hang) for a missing or corrupt disk.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "cordon/error.hpp"
#include "qemu_vm.hpp"

using namespace std::chrono_literals;
using cordon::harness::json;
using cordon::harness::QemuVm;
using cordon::harness::VmConfig;
namespace fs = std::filesystem;

namespace {

class ImageBoot : public ::testing::Test {
  protected:
    void SetUp() override {
        image_ = cordon::harness::image_dir();
        const std::string missing = cordon::harness::image_missing(image_);
        if (!missing.empty()) {
            GTEST_SKIP() << "the VM image is not built (" << missing
                         << " is missing): build it with cmake --build build --target cordon_image";
        }
        std::string tmpl = (fs::temp_directory_path() / "cordon-image-test-XXXXXX").string();
        work_ = ::mkdtemp(tmpl.data());
    }
    void TearDown() override {
        if (!work_.empty() && !HasFailure())
            fs::remove_all(work_);
        else if (!work_.empty())
            std::cerr << "kept " << work_ << " (console.log, qemu.log)\n";
    }
    VmConfig config(std::optional<std::string> disk) const {
        VmConfig c;
        c.image_dir = image_;
        c.work_dir = work_;
        c.data_disk = std::move(disk);
        return c;
    }
    // Boots, connects (the agent must answer within `answer`), returns info once the init
    // has reported on the data disk (it checks it in the background).
    json boot(QemuVm& vm, std::chrono::seconds answer = 120s) {
        vm.start();
        vm.connect(answer);
        EXPECT_EQ(vm.call("ping")["pong"], true);
        return vm.wait_data_disk(300s);
    }
    void shutdown_cleanly(QemuVm& vm) {
        auto r = vm.call("shutdown");
        EXPECT_TRUE(r.value("shutting_down", false)) << r.dump();
        auto status = vm.wait_exit(90s);
        ASSERT_TRUE(status.has_value())
            << "QEMU did not exit within 90 s after shutdown; console:\n"
            << vm.console();
        EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
            << "QEMU ended with wait status " << *status;
    }
    static std::string docker_cli() {
        const char* e = std::getenv("CORDON_DOCKER_CLI");
        if (e && *e)
            return e;
        return fs::exists("/usr/local/bin/docker") ? "/usr/local/bin/docker" : "/usr/bin/docker";
    }
    // A one-file image: the host's static busybox.
    std::string make_busybox_tar() const {
        const std::string root = work_ + "/bb-root";
        fs::create_directories(root + "/bin");
        fs::copy_file("/bin/busybox", root + "/bin/busybox", fs::copy_options::overwrite_existing);
        const std::string tar = work_ + "/busybox.tar";
        const std::string cmd = "tar -C " + root + " -cf " + tar + " .";
        EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
        return tar;
    }
    std::string image_;
    std::string work_;
};

}  // namespace

TEST_F(ImageBoot, BootsServesDockerShutsDownAndKeepsTheDataDisk) {
    const std::string disk = work_ + "/data.img";
    cordon::harness::make_blank_disk(disk, 2ull << 30);
    std::ifstream mf(image_ + "/manifest.json");
    const json manifest = json::parse(mf);

    {
        QemuVm vm(config(disk));
        json info = boot(vm);
        EXPECT_EQ(info["kernel"]["release"], manifest["kernel_release"]) << info.dump(2);
        EXPECT_GT(info["memory"]["total_kib"].get<std::uint64_t>(), 500'000u);
        EXPECT_GT(info["uptime_s"].get<double>(), 0.0);
        EXPECT_EQ(info["agent_version"], manifest["version"]);
        EXPECT_EQ(info["data_disk"]["state"], "ok") << info.dump(2);
        EXPECT_TRUE(info["data_disk"]["formatted_this_boot"].get<bool>())
            << "a blank disk is formatted on first boot";
        EXPECT_EQ(info["boot_count"], 1);
        ASSERT_TRUE(info["boot"]["kernel_to_init_s"].is_number()) << info.dump(2);
        ASSERT_TRUE(info["boot"]["init_to_agent_s"].is_number()) << info.dump(2);
        EXPECT_EQ(vm.call("ping")["pong"], true);

        // The engine: containerd then dockerd, supervised by the agent, reached through the
        // "docker" service of the channel.
        info = vm.wait_engine_ready(240s);
        ASSERT_TRUE(info["boot"]["agent_to_dockerd_s"].is_number()) << info.dump(2);
        EXPECT_EQ(vm.docker_get("/_ping"), "HTTP/1.0 200 OK");
        const std::string version = vm.docker_get("/version");
        EXPECT_EQ(version, "HTTP/1.0 200 OK");
        std::map<std::string, json> services;
        for (auto& s : info["services"]) services[s["name"]] = s;
        ASSERT_TRUE(services.count("containerd") && services.count("dockerd")) << info.dump(2);
        EXPECT_EQ(services["dockerd"]["state"], "running");
        EXPECT_EQ(services["dockerd"]["restarts"], 0);
        info = vm.call("info");
        EXPECT_EQ(info["network"]["state"], "up") << info.dump(2);
        EXPECT_EQ(info["network"]["firewall"]["state"], "ok") << info.dump(2);

        // The real docker CLI through a host socket bridged to "docker" streams: import a
        // busybox image (no registry here), run a container (runc, pivot_root on the overlay
        // root), and reach the host from inside it (bridge network, NAT by the static firewall).
        if (fs::exists(docker_cli())) {
            const std::string sock = work_ + "/docker.sock";
            vm.serve_docker_socket(sock);
            const std::string host = "unix://" + sock;
            const std::string tar = make_busybox_tar();
            auto imp = vm.run_host_command(
                {docker_cli(), "-H", host, "import", tar, "cordon-test/busybox:1"}, 180s);
            ASSERT_EQ(imp.status, 0) << imp.output;
            auto run = vm.run_host_command(
                {docker_cli(), "-H", host, "run", "--rm", "cordon-test/busybox:1", "/bin/busybox",
                 "echo", "hello-from-a-container"},
                180s);
            ASSERT_EQ(run.status, 0) << run.output;
            EXPECT_NE(run.output.find("hello-from-a-container"), std::string::npos) << run.output;
            const int port = vm.serve_http_on_loopback("cordon-net-ok");
            auto net = vm.run_host_command(
                {docker_cli(), "-H", host, "run", "--rm", "cordon-test/busybox:1", "/bin/busybox",
                 "wget", "-q", "-O", "-", "http://10.0.2.2:" + std::to_string(port) + "/"},
                180s);
            EXPECT_EQ(net.status, 0) << net.output;
            EXPECT_NE(net.output.find("cordon-net-ok"), std::string::npos)
                << "a container could not reach the host through the VM's NAT:\n"
                << net.output;
            // Everything went through the policy proxy, which refuses what breaks isolation.
            auto priv =
                vm.run_host_command({docker_cli(), "-H", host, "run", "--rm", "--privileged",
                                     "cordon-test/busybox:1", "/bin/busybox", "true"},
                                    180s);
            EXPECT_NE(priv.status, 0) << "a privileged container was allowed:\n" << priv.output;
            auto pinfo = vm.call("info")["proxy"];
            EXPECT_TRUE(pinfo.value("running", false)) << pinfo.dump();
            EXPECT_GE(pinfo.value("requests", 0), 4) << pinfo.dump();
            EXPECT_GE(pinfo.value("denied", 0), 1) << pinfo.dump();
        } else {
            std::cerr << "no docker CLI at " << docker_cli() << ": container checks skipped\n";
        }

        auto logs = vm.call("logs", {{"service", "dockerd"}});
        ASSERT_TRUE(logs["lines"].is_array());
        bool api_listen = false;
        for (auto& l : logs["lines"]) {
            if (l.get<std::string>().find("API listen on /run/cordon/dockerd.sock") !=
                std::string::npos)
                api_listen = true;
        }
        EXPECT_TRUE(api_listen) << "dockerd must listen only on /run/cordon/dockerd.sock:\n"
                                << logs.dump(2);
        EXPECT_THROW(vm.call("logs", {{"service", "no-such-service"}}), cordon::Error);
        EXPECT_THROW(vm.call("no-such-method"), cordon::Error);

        shutdown_cleanly(vm);
    }
    {
        // Second boot: the same disk, checked (not formatted), with the counter the agent
        // wrote on the first boot.
        QemuVm vm(config(disk));
        json info = boot(vm);
        EXPECT_EQ(info["data_disk"]["state"], "ok") << info.dump(2);
        EXPECT_FALSE(info["data_disk"]["formatted_this_boot"].get<bool>());
        EXPECT_EQ(info["boot_count"], 2) << "the data disk lost what the first boot wrote";
        shutdown_cleanly(vm);
    }
}

TEST_F(ImageBoot, MissingDataDiskIsAClearError) {
    QemuVm vm(config(std::nullopt));
    json info = boot(vm);
    EXPECT_EQ(info["data_disk"]["state"], "missing") << info.dump(2);
    EXPECT_NE(info["data_disk"]["message"].get<std::string>().find("cordon-data"),
              std::string::npos);
    EXPECT_TRUE(info["boot_count"].is_null());
    EXPECT_EQ(info["engine"]["state"], "unavailable");
    EXPECT_NE(info["engine"]["message"].get<std::string>().find("data disk"), std::string::npos);
    EXPECT_TRUE(info["services"].empty());
    // The docker service says why instead of hanging.
    try {
        vm.docker_get("/_ping", 30s);
        ADD_FAILURE() << "docker must not answer without a data disk";
    } catch (const cordon::Error& e) {
        EXPECT_NE(std::string(e.what()).find("docker"), std::string::npos) << e.what();
    }
    shutdown_cleanly(vm);
}

TEST_F(ImageBoot, CorruptDataDiskIsAClearErrorAndIsNotFormatted) {
    const std::string disk = work_ + "/corrupt.img";
    std::vector<char> junk(4 << 20);
    std::mt19937 rng(42);
    for (auto& c : junk) c = static_cast<char>(rng());
    {
        std::ofstream out(disk, std::ios::binary);
        out.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    fs::resize_file(disk, 256 << 20);
    QemuVm vm(config(disk));
    json info = boot(vm);
    EXPECT_EQ(info["data_disk"]["state"], "corrupt") << info.dump(2);
    EXPECT_NE(info["data_disk"]["message"].get<std::string>().find("refusing to format"),
              std::string::npos)
        << info.dump(2);
    EXPECT_EQ(info["engine"]["state"], "unavailable");
    shutdown_cleanly(vm);
    // Not one byte of the disk was changed.
    std::ifstream in(disk, std::ios::binary);
    std::vector<char> after(junk.size());
    in.read(after.data(), static_cast<std::streamsize>(after.size()));
    EXPECT_TRUE(after == junk) << "the corrupt disk was modified";
}

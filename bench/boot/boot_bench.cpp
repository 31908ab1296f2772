// Boot benchmark: QEMU start -> the guest agent's first RPC reply, and -> dockerd's first
// answer to GET /_ping through the channel's "docker" service; median of N boots, printed
// beside the boot floor measured in the same run (the image's own kernel booting a one-file
// busybox initramfs to its first userspace line, as shared/anchors/boot-floor.sh does).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cordon/error.hpp"
#include "cordon/guest/child_process.hpp"
#include "cordon/log.hpp"
#include "cordon/quiet_asio.hpp"  // GCC 12 false positive in Asio (see the header)
#include "qemu_vm.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using cordon::harness::Clock;
using cordon::harness::json;

namespace {

double num(const json& j, const char* key) {
    return j.contains(key) && j[key].is_number() ? j[key].get<double>() : -1.0;
}

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

void sh(const std::string& cmd) {
    if (std::system(cmd.c_str()) != 0)
        throw cordon::Error("command failed", cmd);
}

struct FloorRun {
    double wall = 0;   // QEMU start -> "T-user" line on the console
    double guest = 0;  // guest uptime printed by the init
};

// The floor initramfs: the busybox binary from the image's initramfs and the same /init
// as boot-floor.sh.
std::string make_floor_initramfs(const std::string& image, const std::string& work) {
    const std::string root = work + "/floor-root";
    fs::create_directories(root + "/proc");
    sh("cd " + root + " && cpio -idm --quiet bin/busybox < " + image + "/initramfs.img");
    std::ofstream(root + "/init")
        << "#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\n"
           "/bin/busybox echo \"T-user $(/bin/busybox cut -d\" \" -f1 /proc/uptime)\"\n"
           "/bin/busybox poweroff -f\n";
    ::chmod((root + "/init").c_str(), 0755);
    const std::string out = work + "/floor.gz";
    sh("cd " + root + " && find . | cpio -o -H newc --quiet | gzip -1 > " + out);
    return out;
}

FloorRun boot_floor(const std::string& image, const std::string& initrd, const std::string& accel) {
    int fds[2];
    if (pipe(fds) != 0)
        cordon::throw_errno("pipe");
    cordon::UniqueFd rd(fds[0]), wr(fds[1]);
    cordon::guest::SpawnOptions o;
    o.argv = {"qemu-system-x86_64",
              "-accel",
              accel,
              "-cpu",
              accel == "kvm" ? "host" : "qemu64",
              "-smp",
              "2",
              "-m",
              "512",
              "-nographic",
              "-no-reboot",
              "-kernel",
              image + "/vmlinuz",
              "-initrd",
              initrd,
              "-append",
              "console=ttyS0 quiet panic=-1"};
    o.output_fd = wr.get();
    const auto t0 = Clock::now();
    auto child = cordon::guest::ChildProcess::spawn(o);
    wr.reset();
    std::string out;
    char buf[4096];
    FloorRun r;
    for (;;) {
        const ssize_t n = ::read(rd.get(), buf, sizeof buf);
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
        const auto p = out.find("T-user ");
        if (p != std::string::npos && out.find('\n', p) != std::string::npos) {
            r.wall = seconds_since(t0);
            r.guest = std::atof(out.c_str() + p + 7);
            break;
        }
    }
    child.wait();
    if (r.wall == 0)
        throw cordon::Error("the floor VM printed no T-user line", "qemu", out.substr(0, 2000));
    return r;
}

struct CordonRun {
    double agent = 0;    // QEMU start -> first RPC reply (ping)
    double dockerd = 0;  // QEMU start -> GET /_ping 200 through the docker service
    json boot;           // the guest's own timings (info.boot)
};

CordonRun boot_cordon(const std::string& image, const std::string& work, const std::string& disk,
                      const std::string& accel) {
    cordon::harness::VmConfig c;
    c.image_dir = image;
    c.work_dir = work;
    c.data_disk = disk;
    c.accel = accel;
    cordon::harness::QemuVm vm(c);
    CordonRun r;
    vm.start();
    vm.connect(180s);
    vm.call("ping");
    r.agent = seconds_since(vm.start_time());
    const auto deadline = Clock::now() + 300s;
    for (;;) {
        try {
            if (vm.docker_get("/_ping", 30s).find(" 200 ") != std::string::npos)
                break;
        } catch (const cordon::Error&) {
            // not listening yet
        }
        if (Clock::now() > deadline)
            throw cordon::Error("dockerd never answered /_ping", work);
        std::this_thread::sleep_for(50ms);
    }
    r.dockerd = seconds_since(vm.start_time());
    r.boot = vm.call("info")["boot"];
    vm.call("shutdown");
    auto st = vm.wait_exit(120s);
    if (!st || !WIFEXITED(*st) || WEXITSTATUS(*st) != 0) {
        throw cordon::Error("the VM did not power off cleanly", work, vm.console().substr(0, 2000));
    }
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 3;
    std::string accel = "tcg";
    std::string image = cordon::harness::image_dir();
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--runs" && i + 1 < argc)
            runs = std::max(1, std::atoi(argv[++i]));
        else if (a == "--accel" && i + 1 < argc)
            accel = argv[++i];
        else if (a == "--image-dir" && i + 1 < argc)
            image = fs::absolute(argv[++i]).lexically_normal().string();  // QEMU runs elsewhere
        else {
            std::cerr
                << "usage: cordon-boot-bench [--runs N] [--accel tcg|kvm] [--image-dir DIR]\n";
            return 2;
        }
    }
    cordon::log::set_level(cordon::log::Level::warn);
    try {
        if (auto missing = cordon::harness::image_missing(image); !missing.empty()) {
            throw cordon::Error("the image is not built", missing,
                                "cmake --build build --target cordon_image");
        }
        std::string tmpl = (fs::temp_directory_path() / "cordon-boot-bench-XXXXXX").string();
        const std::string work = ::mkdtemp(tmpl.data());
        const std::string floor_initrd = make_floor_initramfs(image, work);
        const std::string disk = work + "/data.img";
        cordon::harness::make_blank_disk(disk, 8ull << 30);

        std::ifstream mf(image + "/manifest.json");
        const json manifest = json::parse(mf);
        std::uint64_t image_bytes = 0;
        for (auto& f : manifest["files"]) image_bytes += f["bytes"].get<std::uint64_t>();
        std::printf(
            "image: %s, kernel %s, squashfs %s; files %.1f MiB (root %.1f MiB uncompressed); accel "
            "%s\n",
            image.c_str(), manifest.value("kernel_release", "?").c_str(),
            manifest.value("squashfs_compressor", "?").c_str(), image_bytes / 1048576.0,
            manifest.value("root_bytes_uncompressed", 0.0) / 1048576.0, accel.c_str());

        // First boot formats the data disk: shown, not counted.
        std::printf("first boot (formats the data disk, not counted)...\n");
        std::fflush(stdout);
        auto first = boot_cordon(image, work, disk, accel);
        std::printf("  agent %.2f s, dockerd %.2f s\n", first.agent, first.dockerd);

        std::vector<double> floor_wall, floor_guest, agent, dockerd;
        for (int i = 1; i <= runs; ++i) {
            auto f = boot_floor(image, floor_initrd, accel);
            auto c = boot_cordon(image, work, disk, accel);
            floor_wall.push_back(f.wall);
            floor_guest.push_back(f.guest);
            agent.push_back(c.agent);
            dockerd.push_back(c.dockerd);
            std::printf(
                "run %d: floor %.2f s (guest %.2f s) | agent %.2f s, dockerd %.2f s | guest: init "
                "%.2f, "
                "init->agent %.2f, agent->dockerd %.2f\n",
                i, f.wall, f.guest, c.agent, c.dockerd, num(c.boot, "kernel_to_init_s"),
                num(c.boot, "init_to_agent_s"), num(c.boot, "agent_to_dockerd_s"));
            std::fflush(stdout);
        }
        const double fl = median(floor_wall), ag = median(agent), dk = median(dockerd);
        std::printf("\nmedian of %d (wall, from QEMU start):\n", runs);
        std::printf(
            "  floor (busybox initramfs, first userspace line): %6.2f s  (guest uptime %.2f s)\n",
            fl, median(floor_guest));
        std::printf(
            "  agent first RPC reply:                           %6.2f s  = %.2fx floor (target "
            "1.3x)\n",
            ag, ag / fl);
        std::printf(
            "  dockerd first /_ping through the channel:        %6.2f s  = %.2fx floor (target "
            "2x)\n",
            dk, dk / fl);
        fs::remove_all(work);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cordon-boot-bench: %s\n", e.what());
        return 1;
    }
    return 0;
}

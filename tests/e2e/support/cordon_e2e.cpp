#include "cordon_e2e.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "cordon/atomic_file.hpp"

namespace cordon::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string vmctl_path() {
    return CORDON_E2E_VMCTL;
}
std::string image_dir() {
    return CORDON_E2E_IMAGE_DIR;
}

std::string describe(const ProcessResult& r) {
    std::string s = "exit " + std::to_string(r.exit_code);
    if (r.signal)
        s += " signal " + std::to_string(r.signal);
    if (r.timed_out)
        s += " (timed out)";
    s += "\n--- stdout\n" + r.out + "\n--- stderr\n" + r.err;
    return s;
}

namespace {
VmEnvironment* g_env = nullptr;

// Function-local statics: the suites register from their own static initialisers.
std::vector<std::function<void(VmEnvironment&)>>& start_hooks() {
    static std::vector<std::function<void(VmEnvironment&)>> hooks;
    return hooks;
}
std::vector<std::function<void()>>& stop_hooks() {
    static std::vector<std::function<void()>> hooks;
    return hooks;
}
}  // namespace

bool before_vm_start(std::function<void(VmEnvironment&)> hook) {
    start_hooks().push_back(std::move(hook));
    return true;
}

bool after_vm_stop(std::function<void()> hook) {
    stop_hooks().push_back(std::move(hook));
    return true;
}

VmEnvironment& VmEnvironment::get() {
    return *g_env;
}

void VmEnvironment::SetUp() {
    g_env = this;
    for (const auto& hook : start_hooks()) {
        hook(*this);
        if (::testing::Test::HasFatalFailure())
            return;
    }
    if (!fs::exists(fs::path(image_dir()) / "manifest.json")) {
        skip_reason_ = "the VM image is not built (" + image_dir() +
                       "/manifest.json is missing): build the cordon_image target";
        return;
    }
    char tmpl[] = "/tmp/cordon-e2e-XXXXXX";
    base_ = ::mkdtemp(tmpl);
    // QEMU runs as libvirt's unprivileged user under qemu:///system: it must reach the data disk.
    ::chmod(base_.c_str(), 0755);
    // A short runtime path: unix socket paths are limited to 108 bytes.
    env_ = {"CORDON_STATE_DIR=" + base_ + "/state",
            "CORDON_RUNTIME_DIR=" + base_ + "/run",
            "CORDON_CACHE_DIR=" + base_ + "/cache",
            "CORDON_IMAGE_DIR=" + image_dir(),
            "XDG_CONFIG_HOME=" + base_ + "/config",
            "CORDON_ADMIN_SETTINGS=" + base_ + "/admin-settings.json"};
    // A unique VM name per run, so a leftover domain of a crashed run never collides.
    const std::string name = "cordon-e2e-" + std::to_string(::getpid());
    auto set = vmctl({"settings", "set", "vm_name", name}, 30s);
    if (!set.ok()) {
        ADD_FAILURE() << "vmctl settings set vm_name failed: " << describe(set);
        return;
    }
    for (const auto& args : before_start) {
        auto r = vmctl(args, 30s);
        if (!r.ok()) {
            ADD_FAILURE() << "vmctl before start failed: " << describe(r);
            return;
        }
    }
    auto start = vmctl({"start"}, 600s);
    if (!start.ok()) {
        ADD_FAILURE() << "vmctl start failed: " << describe(start) << "\n--- console\n"
                      << vmctl({"logs", "console"}, 30s).out;
        return;
    }
    auto envr = vmctl({"docker-env"}, 30s);
    const auto pos = envr.out.find("unix://");
    if (!envr.ok() || pos == std::string::npos) {
        ADD_FAILURE() << "vmctl docker-env gave no unix socket: " << describe(envr);
        return;
    }
    docker_host_ = envr.out.substr(pos, envr.out.find_first_of("\"'\n", pos) - pos);
    // `vmctl start` returns when the agent answers; dockerd comes up a few seconds later.
    const auto deadline = std::chrono::steady_clock::now() + 240s;
    ProcessResult version;
    do {
        version = docker({"version", "--format", "{{.Server.Version}}"}, 30s);
        if (version.ok())
            break;
        std::this_thread::sleep_for(1s);
    } while (std::chrono::steady_clock::now() < deadline);
    if (!version.ok()) {
        ADD_FAILURE() << "dockerd did not answer through the proxy within 240 s: "
                      << describe(version) << "\n--- engine log\n"
                      << vmctl({"logs", "engine"}, 30s).out;
        return;
    }
    ready_ = true;
}

void VmEnvironment::TearDown() {
    stop_and_delete();
    for (const auto& hook : stop_hooks()) hook();
}

void VmEnvironment::stop_and_delete() {
    if (base_.empty())
        return;
    // A failed suite leaves the evidence before its folder goes: the host agent's log and
    // the serial console (the guest agent's log, the kernel's) end up in the CI output.
    // CORDON_E2E_KEEP_LOGS=DIR also copies both there, failed or not.
    const bool failed = ::testing::UnitTest::GetInstance()->failed_test_count() > 0;
    const char* keep = std::getenv("CORDON_E2E_KEEP_LOGS");
    if (failed || (keep && *keep)) {
        for (const char* source : {"hostagent", "console"}) {
            auto log = vmctl({"logs", source, "-n", failed ? "150" : "0"}, 60s);
            if (failed)
                std::cerr << "--- " << source << " log (last 150 lines)\n"
                          << log.out << log.err << std::endl;
            if (keep && *keep) {
                std::error_code ec;
                fs::create_directories(keep, ec);
                std::ofstream(fs::path(keep) / (std::to_string(::getpid()) + "-" + source + ".log"))
                    << log.out;
            }
        }
    }
    auto stop = vmctl({"stop"}, 300s);
    if (!stop.ok())
        ADD_FAILURE() << "vmctl stop failed: " << describe(stop);
    auto del = vmctl({"delete", "--yes"}, 120s);
    if (!del.ok())
        ADD_FAILURE() << "vmctl delete failed: " << describe(del);
    std::error_code ec;
    fs::remove_all(base_, ec);
}

ProcessResult VmEnvironment::vmctl(const std::vector<std::string>& args,
                                   std::chrono::seconds timeout) const {
    std::vector<std::string> argv{vmctl_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    SpawnOptions o;
    o.env_overrides = env_;
    return run(argv, timeout, o);
}

ProcessResult VmEnvironment::vmctl(const std::vector<std::string>& args,
                                   std::chrono::seconds timeout, const SpawnOptions& extra) const {
    std::vector<std::string> argv{vmctl_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    SpawnOptions o = extra;
    o.env_overrides.insert(o.env_overrides.end(), env_.begin(), env_.end());
    return run(argv, timeout, o);
}

void VmEnvironment::apply_env() const {
    for (const auto& kv : env_) {
        const auto eq = kv.find('=');
        if (eq != std::string::npos)
            ::setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
    }
}

ProcessResult VmEnvironment::docker(const std::vector<std::string>& args,
                                    std::chrono::seconds timeout, const SpawnOptions& extra) const {
    std::vector<std::string> argv{"docker"};
    argv.insert(argv.end(), args.begin(), args.end());
    SpawnOptions o = extra;
    o.env_overrides.push_back("DOCKER_HOST=" + docker_host_);
    o.env_overrides.push_back("DOCKER_CONFIG=" + base_ + "/docker-config");
    return run(argv, timeout, o);
}

ProcessResult VmEnvironment::vm_exec(const std::string& shell_command) const {
    return vmctl({"exec", "--", "sh", "-c", shell_command}, 120s);
}

std::string host_docker_cli() {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    std::size_t at = 0;
    while (at <= dirs.size()) {
        const std::size_t end = std::min(dirs.find(':', at), dirs.size());
        const fs::path candidate = fs::path(dirs.substr(at, end - at)) / "docker";
        if (::access(candidate.c_str(), X_OK) == 0)
            return candidate.string();
        at = end + 1;
    }
    return {};
}

namespace {

// Quotes one word for the guest's sh.
std::string sh_quote(const std::string& word) {
    std::string q = "'";
    for (char c : word)
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

}  // namespace

std::string VmEnvironment::guest_docker_cli() const {
    constexpr const char* kGuestCli = "/run/cordon-e2e-docker";
    if (vm_exec(std::string("test -x ") + kGuestCli).ok())
        return kGuestCli;
    const std::string cli = host_docker_cli();
    if (cli.empty())
        throw std::runtime_error("no docker CLI on PATH to copy into the VM");
    SpawnOptions o;
    o.stdin_data = read_file(cli);
    auto copied = vmctl({"shell", "-T", "--", "sh", "-c",
                         std::string("cat > ") + kGuestCli + ".part && chmod 755 " + kGuestCli +
                             ".part && mv " + kGuestCli + ".part " + kGuestCli},
                        300s, o);
    if (!copied.ok())
        throw std::runtime_error("cannot copy " + cli + " into the VM: " + describe(copied));
    return kGuestCli;
}

std::string VmEnvironment::engine_package_cli() const {
    const std::string out = base_ + "/engine-package-cli";
    const std::string cli = out + "/usr/bin/docker";
    if (fs::exists(cli))
        return cli;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(CORDON_E2E_DEB_CACHE, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("docker.io_", 0) != 0 || entry.path().extension() != ".deb")
            continue;
        fs::create_directories(out);
        if (run({"dpkg-deb", "-x", entry.path().string(), out}, 120s).ok() && fs::exists(cli))
            return cli;
    }
    return {};
}

ProcessResult VmEnvironment::docker_direct(const std::vector<std::string>& args,
                                           std::chrono::seconds timeout) const {
    std::string command = "DOCKER_CONFIG=/run/cordon-e2e-docker-config " + guest_docker_cli() +
                          " -H unix:///run/cordon/dockerd.sock";
    for (const auto& a : args)
        command += " " + sh_quote(a);
    return vmctl({"exec", "--", "sh", "-c", command}, timeout);
}

void VmEnvironment::ensure_test_image() const {
    if (docker({"image", "inspect", test_image_}, 60s).ok())
        return;
    // A root folder holding busybox and its applet links, as a tar stream for `docker import`.
    const std::string root = base_ + "/busybox-root";
    fs::create_directories(root + "/bin");
    fs::create_directories(root + "/tmp");
    fs::create_directories(root + "/data");
    fs::copy_file("/bin/busybox", root + "/bin/busybox", fs::copy_options::overwrite_existing);
    for (const char* applet :
         {"sh", "cat", "ls", "id", "stat", "touch", "echo", "sleep", "true", "wget", "httpd",
          "mkdir", "rm", "nc", "head", "seq", "date", "hostname", "grep"}) {
        std::error_code ec;
        fs::create_symlink("busybox", root + "/bin/" + applet, ec);
    }
    auto tar = run({"tar", "-C", root, "-cf", base_ + "/busybox.tar", "."}, 60s);
    ASSERT_TRUE(tar.ok()) << describe(tar);
    auto imp = docker({"import", "--change", "CMD [\"/bin/sh\"]", "--change", "ENV PATH=/bin",
                       base_ + "/busybox.tar", test_image_},
                      300s);
    ASSERT_TRUE(imp.ok()) << "docker import failed: " << describe(imp);
}

}  // namespace cordon::e2e

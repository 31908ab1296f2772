#include "cordon/host/accel.hpp"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cordon/host/paths.hpp"
#include "cordon/log.hpp"
#include "cordon/subprocess.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace cordon::host {
namespace {

std::string file_identity(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0)
        return p.string() + ":missing";
    return p.string() + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec);
}

std::string cache_key(const fs::path& qemu, const fs::path& kernel) {
    utsname u{};
    ::uname(&u);
    return std::string(u.nodename) + "|" + u.release + "|" + file_identity(qemu) + "|" +
           file_identity(kernel);
}

}  // namespace

KvmProbe run_kvm_probe(const fs::path& qemu, const fs::path& kernel,
                       std::chrono::milliseconds timeout) {
    KvmProbe r;
    if (::access("/dev/kvm", R_OK | W_OK) != 0) {
        r.detail = ::access("/dev/kvm", F_OK) == 0 ? "/dev/kvm is not accessible to this user"
                                                   : "no /dev/kvm";
        return r;
    }
    const auto t0 = std::chrono::steady_clock::now();
    cordon::ProcessResult p =
        cordon::run({qemu.string(),
                     "-accel",
                     "kvm",
                     "-cpu",
                     "host",
                     "-machine",
                     "q35",
                     "-m",
                     "256",
                     "-smp",
                     "1",
                     "-nodefaults",
                     "-no-user-config",
                     "-display",
                     "none",
                     "-serial",
                     "stdio",
                     "-no-reboot",
                     "-kernel",
                     kernel.string(),
                     "-append",
                     "console=ttyS0 panic=-1 root=/dev/cordon-kvm-probe loglevel=1"},
                    timeout);
    const std::string output = p.out + p.err;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (output.find("Kernel panic") != std::string::npos) {
        r.usable = true;
        r.detail =
            fmt::format("KVM booted the kernel to its root-mount panic in {:.1f} s", r.seconds);
    } else if (p.timed_out) {
        r.detail =
            fmt::format("a KVM boot of the kernel did not get anywhere in {:.0f} s", r.seconds);
    } else {
        std::string tail = output.size() > 300 ? output.substr(output.size() - 300) : output;
        while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
        auto nl = tail.rfind('\n');
        if (nl != std::string::npos)
            tail = tail.substr(nl + 1);
        r.detail = "a KVM boot of the kernel failed" + (tail.empty() ? std::string() : ": " + tail);
    }
    return r;
}

KvmProbe probe_kvm(const fs::path& kernel, const fs::path& cache_file,
                   std::chrono::milliseconds timeout) {
    fs::path qemu = cordon::find_program("qemu-system-x86_64");
    if (qemu.empty())
        return {false, false, 0, "qemu-system-x86_64 is not installed"};
    const std::string key = cache_key(qemu, kernel);
    json cache = json::object();
    try {
        cache = json::parse(read_file(cache_file));
        if (!cache.is_object())
            cache = json::object();
    } catch (const std::exception&) {
        cache = json::object();  // absent or damaged: probe again
    }
    if (auto it = cache.find(key); it != cache.end() && it->is_object() && it->contains("usable")) {
        KvmProbe r;
        r.usable = it->value("usable", false);
        r.detail = it->value("detail", std::string());
        r.cached = true;
        return r;
    }
    KvmProbe r = run_kvm_probe(qemu, kernel, timeout);
    cache[key] = {{"usable", r.usable}, {"detail", r.detail}, {"seconds", r.seconds}};
    try {
        write_file_atomic(cache_file, cache.dump(2) + "\n", 0644);
    } catch (const std::exception& e) {
        log::warn("accel", "cannot cache the KVM probe result: {}", e.what());
    }
    return r;
}

}  // namespace cordon::host

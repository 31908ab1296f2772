#include "cordon/host/paths.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "cordon/atomic_file.hpp"
#include "cordon/host/host_error.hpp"
#include "cordon/unique_fd.hpp"

namespace fs = std::filesystem;

namespace cordon::host {
namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

fs::path home() {
    std::string h = env("HOME");
    if (h.empty()) {
        throw HostError(ErrorKind::config, "HOME is not set", {},
                        "set HOME or the XDG_* variables so Cordon can find its folders");
    }
    return h;
}

bool is_root() {
    return ::geteuid() == 0;
}

fs::path xdg(const char* var, const char* fallback_under_home) {
    std::string v = env(var);
    if (!v.empty() && v.front() == '/')
        return v;
    return home() / fallback_under_home;
}

}  // namespace

void validate_vm_name(const std::string& name) {
    bool ok =
        !name.empty() && name.size() <= 48 && std::isalnum(static_cast<unsigned char>(name[0]));
    for (char c : name) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
            ok = false;
    }
    if (!ok) {
        throw HostError(
            ErrorKind::usage, "invalid VM name '" + name + "'", "vm_name",
            "use 1-48 letters, digits, '-', '_' or '.', starting with a letter or digit");
    }
}

VmPaths vm_paths(const std::string& vm_name) {
    validate_vm_name(vm_name);
    VmPaths p;
    p.vm_name = vm_name;
    fs::path state = env("CORDON_STATE_DIR");
    fs::path runtime = env("CORDON_RUNTIME_DIR");
    fs::path cache = env("CORDON_CACHE_DIR");
    if (state.empty())
        state = is_root() ? fs::path("/var/lib/cordon")
                          : xdg("XDG_DATA_HOME", ".local/share") / "cordon";
    if (runtime.empty()) {
        if (is_root()) {
            runtime = "/run/cordon";
        } else if (std::string r = env("XDG_RUNTIME_DIR"); !r.empty()) {
            runtime = fs::path(r) / "cordon";
        } else {
            runtime = fs::path("/tmp") / ("cordon-" + std::to_string(::getuid()));
        }
    }
    if (cache.empty())
        cache =
            is_root() ? fs::path("/var/cache/cordon") : xdg("XDG_CACHE_HOME", ".cache") / "cordon";
    p.state_dir = state / vm_name;
    p.runtime_dir = runtime / vm_name;
    p.cache_dir = cache;
    p.data_disk = p.state_dir / "data.qcow2";
    p.console_log = p.state_dir / "console.log";
    p.hostagent_log = p.state_dir / "hostagent.log";
    p.channel_socket = p.runtime_dir / "channel.sock";
    p.docker_socket = p.runtime_dir / "docker.sock";
    p.control_socket = p.runtime_dir / "control.sock";
    p.shell_socket = p.runtime_dir / "shell.sock";
    p.hostagent_pid = p.runtime_dir / "hostagent.pid";
    p.kvm_probe_cache = p.cache_dir / "kvm-probe.json";
    return p;
}

fs::path user_settings_path() {
    return xdg("XDG_CONFIG_HOME", ".config") / "cordon" / "settings.json";
}

fs::path admin_settings_path() {
    std::string v = env("CORDON_ADMIN_SETTINGS");
    return v.empty() ? fs::path("/etc/cordon/admin-settings.json") : fs::path(v);
}

fs::path default_image_dir() {
    std::string v = env("CORDON_IMAGE_DIR");
    if (!v.empty())
        return v;
    // In a build tree (build/vmctl/cli/vmctl), the image is built to build/images/out.
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        fs::path in_build = self.parent_path().parent_path().parent_path() / "images" / "out";
        if (fs::exists(in_build / "manifest.json", ec))
            return in_build;
    }
    return "/usr/local/share/cordon/image";
}

void make_dirs(const fs::path& dir, unsigned mode) {
    if (dir.empty())
        return;
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            throw HostError(ErrorKind::generic, "not a folder", dir.string(),
                            "remove or rename it");
        }
        return;
    }
    if (dir.has_parent_path() && dir.parent_path() != dir)
        make_dirs(dir.parent_path(), mode);
    if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
        throw_errno("cannot create folder", dir.string());
    }
    ::chmod(dir.c_str(), mode);  // mkdir applies the umask; the caller asked for this mode.
}

void write_file_atomic(const fs::path& path, const std::string& content, unsigned mode) {
    fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    make_dirs(dir, 0755);
    try {
        cordon::write_file_atomically(path.string(), content, static_cast<mode_t>(mode));
    } catch (const cordon::Error& e) {
        throw HostError(ErrorKind::generic, e.failure(), path.string(),
                        "check the free space and the permissions of " + dir.string());
    }
}

std::string read_file(const fs::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        throw_errno("cannot read", path.string());
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw_errno("cannot read", path.string());
        }
        if (n == 0)
            break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

}  // namespace cordon::host

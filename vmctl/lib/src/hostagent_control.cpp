#include "cordon/host/hostagent_control.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "cordon/host/host_error.hpp"
#include "cordon/host/process.hpp"
#include "cordon/subprocess.hpp"
#include "cordon/unique_fd.hpp"

namespace fs = std::filesystem;

namespace cordon::host {

HostAgentState hostagent_state(const VmPaths& paths) {
    HostAgentState s;
    s.pid = read_pid_file(paths.hostagent_pid);
    s.alive = process_alive(s.pid, kHostAgentName);
    if (!s.alive)
        s.pid = 0;
    return s;
}

fs::path find_hostagent() {
    if (const char* env = std::getenv("CORDON_HOSTAGENT"); env && *env) {
        if (::access(env, X_OK) == 0)
            return env;
        throw HostError(ErrorKind::generic, "CORDON_HOSTAGENT does not name an executable", env);
    }
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        for (fs::path p :
             {self.parent_path() / kHostAgentName,
              self.parent_path().parent_path() / "hostagent" / kHostAgentName,
              self.parent_path().parent_path() / "libexec" / "cordon" / kHostAgentName}) {
            if (::access(p.c_str(), X_OK) == 0)
                return p;
        }
    }
    std::string p = cordon::find_program(kHostAgentName);
    if (!p.empty())
        return p;
    throw HostError(
        ErrorKind::generic, "cannot find the host agent program", kHostAgentName,
        "build it (cmake --build build --target cordon-hostagent) or set CORDON_HOSTAGENT");
}

pid_t start_hostagent(const VmPaths& paths, const fs::path& exe, const std::string& libvirt_uri) {
    make_dirs(paths.runtime_dir, 0700);
    make_dirs(paths.state_dir, 0755);
    std::vector<std::string> argv = {exe.string(),
                                     "--vm",
                                     paths.vm_name,
                                     "--channel",
                                     paths.channel_socket.string(),
                                     "--docker-socket",
                                     paths.docker_socket.string(),
                                     "--control-socket",
                                     paths.control_socket.string(),
                                     "--pid-file",
                                     paths.hostagent_pid.string()};
    if (!libvirt_uri.empty()) {
        argv.push_back("--libvirt-uri");
        argv.push_back(libvirt_uri);
    }
    try {
        return spawn_detached(argv, paths.hostagent_log);
    } catch (const cordon::Error& e) {
        throw HostError(ErrorKind::generic, "cannot start the host agent: " + e.failure(),
                        exe.string(), e.hint());
    }
}

bool remove_stale_socket(const fs::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
        return false;
    if (!S_ISSOCK(st.st_mode))
        return false;
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd)
        return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string p = path.string();
    if (p.size() >= sizeof addr.sun_path)
        return false;
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
        return false;  // alive
    if (errno != ECONNREFUSED)
        return false;
    return ::unlink(p.c_str()) == 0;
}

bool stop_hostagent(const VmPaths& paths, std::chrono::milliseconds grace) {
    HostAgentState s = hostagent_state(paths);
    if (s.alive) {
        ::kill(s.pid, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + grace;
        while (process_alive(s.pid, kHostAgentName) &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (process_alive(s.pid, kHostAgentName)) {
            ::kill(s.pid, SIGKILL);
            for (int i = 0; i < 100 && process_alive(s.pid, kHostAgentName); ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        }
    }
    // Whatever a dead agent left behind.
    remove_stale_socket(paths.docker_socket);
    remove_stale_socket(paths.control_socket);
    remove_stale_socket(paths.shell_socket);
    if (!hostagent_state(paths).alive)
        ::unlink(paths.hostagent_pid.c_str());
    return s.alive;
}

}  // namespace cordon::host

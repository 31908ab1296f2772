#include "cordon/guest/leftovers.hpp"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "cordon/atomic_file.hpp"
#include "cordon/guest/service_record.hpp"
#include "cordon/log.hpp"

namespace cordon::guest {
namespace {

constexpr const char* kLeftoversLog = "supervisor";

bool gone(int pid) {
    const auto id = read_proc_identity(pid);
    return !id || id->gone();
}

}  // namespace

std::string service_pid_file(const std::string& run_dir, const std::string& name) {
    return run_dir + "/services/" + name + ".pid";
}

void record_service_pid(const std::string& run_dir, const std::string& name, int pid) {
    try {
        std::error_code ec;
        std::filesystem::create_directories(run_dir + "/services", ec);
        write_file_atomically(service_pid_file(run_dir, name), std::to_string(pid) + "\n", 0644);
    } catch (const std::exception& e) {
        log::warn(kLeftoversLog, "cannot record the pid of {}: {}", name, e.what());
    }
}

std::vector<Leftover> stop_leftover_services(
    const std::string& run_dir,
    const std::vector<std::pair<std::string, std::string>>& name_and_program,
    std::chrono::milliseconds grace) {
    std::vector<Leftover> found;
    for (const auto& [name, program] : name_and_program) {
        const std::string file = service_pid_file(run_dir, name);
        std::ifstream in(file);
        long long pid = 0;
        if (!(in >> pid) || pid <= 1 || pid == ::getpid())
            continue;
        in.close();
        ::unlink(file.c_str());
        const std::string want = std::filesystem::path(program).filename().string().substr(0, 15);
        const auto id = read_proc_identity(static_cast<int>(pid));
        if (!id || id->comm != want || id->gone())
            continue;
        log::warn(kLeftoversLog, "{} (pid {}) was left running by a previous agent: stopping it", name, pid);
        ::kill(static_cast<pid_t>(pid), SIGKILL);
        found.push_back({name, static_cast<int>(pid), false});
    }
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (auto& l : found) {
        while (!(l.stopped = gone(l.pid)) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (!l.stopped)
            log::error(kLeftoversLog, "{} (pid {}) did not die within {} ms", l.name, l.pid, grace.count());
    }
    return found;
}

}  // namespace cordon::guest

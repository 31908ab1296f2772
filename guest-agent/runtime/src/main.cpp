// cordon-runc: the OCI runtime dockerd uses in the "exclusive ranges" isolation
// mode. It gives each container its own 64K ID range: on `create` it allocates
// a range, stages ID-mapped mounts of the container's layers and volumes, edits
// the bundle's config.json (user namespace + mappings) and execs runc; on
// `delete` it runs runc, then unmounts and frees the range. Every other command
// goes straight to runc.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cordon/atomic_file.hpp"
#include "cordon/error.hpp"
#include "cordon/runtime/container_stage.hpp"
#include "cordon/runtime/idmap_mount.hpp"
#include "cordon/runtime/range_allocator.hpp"
#include "cordon/runtime/runc_args.hpp"
#include "cordon/runtime/spec_rewrite.hpp"
#include "probe.hpp"

namespace {

using namespace cordon;
using namespace cordon::runtime;

constexpr const char* kRunc = "/usr/sbin/runc";
constexpr const char* kTable = "/var/lib/cordon/idmap-ranges.json";

[[noreturn]] void exec_runc(char** argv) {
    argv[0] = const_cast<char*>("runc");
    ::execv(kRunc, argv);
    std::cerr << "cordon-runc: cannot run " << kRunc << ": " << std::strerror(errno) << "\n";
    ::_exit(127);
}

// The shim reads runc's --log (JSON lines) to explain a failed create.
void report(const RuncCall& call, const std::string& message) {
    std::cerr << "cordon-runc: " << message << "\n";
    if (call.log.empty())
        return;
    const UniqueFd fd(::open(call.log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd)
        return;
    // runc's JSON log format: containerd's go-runc reads "time" as an RFC 3339 string (a
    // number makes it drop the message: "unable to retrieve OCI runtime error").
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
    const std::string line =
        nlohmann::json{{"level", "error"}, {"msg", "cordon-runc: " + message}, {"time", stamp}}
            .dump() +
        "\n";
    (void)!::write(fd.get(), line.data(), line.size());
}

RangeAllocator make_allocator() {
    return RangeAllocator(kTable, RangePool{}, current_boot_id(), [](const RangeEntry& e) {
        struct stat st {};
        return e.state_root.empty() || ::stat((e.state_root + "/" + e.container).c_str(), &st) == 0;
    });
}

int create(const RuncCall& call, char** argv) {
    ContainerStage stage;
    RangeAllocator ranges = make_allocator();
    bool allocated = false;
    try {
        const std::string config = call.bundle + "/config.json";
        const std::string original =
            config + ".cordon-orig";  // a retried create starts from the engine's spec
        struct stat st {};
        if (::stat(original.c_str(), &st) != 0)
            write_file_atomically(original, read_file(config), 0600);
        const nlohmann::json spec = nlohmann::json::parse(read_file(original), nullptr, false);
        if (spec.is_discarded())
            throw Error("the bundle's config is not valid JSON", original);
        const IdRange range = ranges.allocate(call.container, call.root);
        allocated = true;
        const UniqueFd userns = make_userns_fd(range, range);
        const StagedContainer staged = stage.prepare(call.container, spec, range, userns.get());
        write_file_atomically(
            config, rewrite_spec(spec, range, range, staged.root_path, staged.sources).dump(),
            0600);
    } catch (const std::exception& e) {
        try {
            stage.teardown(call.container);
            if (allocated)
                ranges.release(call.container);
        } catch (const std::exception& cleanup) {
            std::cerr << "cordon-runc: cleanup after a failed create: " << cleanup.what() << "\n";
        }
        report(call, std::string("cannot give container ") + call.container +
                         " its own ID range: " + e.what());
        return 1;
    }
    exec_runc(argv);
}

int remove(const RuncCall& call, char** argv) {
    const pid_t pid = ::fork();
    if (pid < 0) {
        report(call, std::string("fork failed: ") + std::strerror(errno));
        return 1;
    }
    if (pid == 0)
        exec_runc(argv);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    struct stat st {};
    const bool gone = ::stat((call.root + "/" + call.container).c_str(), &st) != 0;
    if (gone && !call.container.empty()) {
        try {
            ContainerStage().teardown(call.container);
            make_allocator().release(call.container);
        } catch (const std::exception& e) {
            // Not fatal for the caller: the next allocation reclaims ranges of gone containers.
            std::cerr << "cordon-runc: releasing " << call.container << ": " << e.what() << "\n";
        }
    }
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "--cordon-probe") == 0)
        return run_probe(argv[2]);
    RuncCall call;
    try {
        call = parse_runc_args(std::vector<std::string>(argv + 1, argv + argc));
    } catch (const std::exception& e) {
        std::cerr << "cordon-runc: " << e.what() << "\n";
        return 1;
    }
    // Run as "runc" (the shim folder first in containerd's and dockerd's PATH, exclusive
    // mode only): a container whose recorded runtime is plain runc, i.e. created by the
    // plain engine (isolation off) and never checked by the policy, or BuildKit's executor.
    // Neither may start, confined or not: its configuration may hold anything.
    if (const auto refusal = shim_refusal(argv[0], call.command); !refusal.empty()) {
        report(call, refusal);
        return 1;
    }
    if (call.command == "create" && !call.container.empty())
        return create(call, argv);
    if (call.command == "delete" && !call.container.empty())
        return remove(call, argv);
    if (call.command == "run") {
        report(call,
               "`runc run` is not supported in the exclusive-ranges mode; containerd uses create + "
               "start");
        return 1;
    }
    exec_runc(argv);
}

// cordon-runc: the OCI runtime wrapper of both isolation modes.
//  - As "cordon-runc", dockerd's runtime in the "exclusive ranges" mode, it gives each
//    container its own 64K ID range: on `create` it allocates a range, stages ID-mapped
//    mounts of the container's layers and volumes, edits the bundle's config.json (user
//    namespace + mappings) and execs runc; on `delete` it runs runc, then unmounts and
//    frees the range.
//  - As "runc" (the runc shim first in containerd's and dockerd's PATH whenever isolation
//    is on) it refuses a bundle without a user namespace of its own, and otherwise only
//    pins bind sources before runc.
// In both, `create` opens each bind source in a shared folder once, without following
// symlinks, and hands runc a staged mount of that open file (bind_pinning.hpp). Every
// other command goes straight to runc.
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
#include "cordon/engine/engine_config.hpp"
#include "cordon/error.hpp"
#include "cordon/mountinfo.hpp"
#include "cordon/runtime/bind_pinning.hpp"
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
// The proxy's container-facing Docker socket (the guest agent's run dir +
// "/docker-containers.sock", proxy::PolicyConfig::container_socket_path): the one VM
// socket an allowlisted image may have bound.
constexpr const char* kContainerSocket = "/run/cordon/docker-containers.sock";

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

// The engine's spec for a create: config.json as dockerd wrote it, kept aside as
// config.json.cordon-orig the first time so that a retried create starts from it.
nlohmann::json engine_spec(const RuncCall& call) {
    const std::string config = call.bundle + "/config.json";
    const std::string original = config + ".cordon-orig";
    struct stat st {};
    if (::stat(original.c_str(), &st) != 0)
        write_file_atomically(original, read_file(config), 0600);
    nlohmann::json spec = nlohmann::json::parse(read_file(original), nullptr, false);
    if (spec.is_discarded())
        throw Error("the bundle's config is not valid JSON", original);
    return spec;
}

// Bind sources in shared folders pinned under the container's stage folder, and the
// sources dockerd mounted itself checked (bind_pinning.hpp).
std::map<std::size_t, std::string> pin_binds(const ContainerStage& stage, const RuncCall& call,
                                             const nlohmann::json& spec) {
    const std::vector<MountEntry> mounts = read_mountinfo();
    const std::vector<std::string> roots = shared_folder_roots(mounts);
    const auto pinned = pin_shared_binds(spec, roots, stage.make_dir_for(call.container));
    check_bind_landings(spec, pinned, mounts);
    check_bind_sources(spec, pinned, roots, engine::EnginePaths{}.docker_root, kContainerSocket);
    return pinned;
}

// Through the runc shim: a user-namespaced container (dockerd's userns-remap).
int shim_create(const RuncCall& call, const nlohmann::json& spec, char** argv) {
    const ContainerStage stage;
    try {
        stage.teardown(call.container);  // a previous attempt's leftovers
        const auto pinned = pin_binds(stage, call, spec);
        write_file_atomically(call.bundle + "/config.json", replace_sources(spec, pinned).dump(),
                              0600);
    } catch (const std::exception& e) {
        try {
            stage.teardown(call.container);
        } catch (const std::exception& cleanup) {
            std::cerr << "cordon-runc: cleanup after a failed create: " << cleanup.what() << "\n";
        }
        report(call, std::string("cannot start container ") + call.container + ": " + e.what());
        return 1;
    }
    exec_runc(argv);
}

int create(const RuncCall& call, const nlohmann::json& spec, char** argv) {
    ContainerStage stage;
    RangeAllocator ranges = make_allocator();
    bool allocated = false;
    try {
        stage.teardown(call.container);  // a previous attempt's leftovers
        const auto pinned = pin_binds(stage, call, spec);
        const IdRange range = ranges.allocate(call.container, call.root);
        allocated = true;
        const UniqueFd userns = make_userns_fd(range, range);
        StagedContainer staged =
            stage.prepare(call.container, replace_sources(spec, pinned), range, userns.get());
        for (const auto& [index, source] : pinned)
            staged.sources.emplace(index, source);  // kept plain where no ID map was possible
        write_file_atomically(
            call.bundle + "/config.json",
            rewrite_spec(spec, range, range, staged.root_path, staged.sources).dump(), 0600);
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
    const bool creates = (call.command == "create" || call.command == "run") &&
                         !call.container.empty();
    nlohmann::json spec;
    if (creates) {
        try {
            spec = call.command == "create"
                       ? engine_spec(call)
                       : nlohmann::json::parse(read_file(call.bundle + "/config.json"));
        } catch (const std::exception& e) {
            report(call, std::string("cannot read the bundle's config: ") + e.what());
            return 1;
        }
    }
    // Run as "runc" (the shim folder first in containerd's and dockerd's PATH with isolation
    // on): a bundle without a user namespace of its own would run as VM root. That is a
    // container the plain engine created (isolation off) and the policy never checked, or
    // BuildKit's executor in the exclusive-ranges mode. Neither may start.
    if (const auto refusal = shim_refusal(argv[0], call.command, creates && user_namespaced(spec));
        !refusal.empty()) {
        report(call, refusal);
        return 1;
    }
    const bool as_shim = started_as_shim(argv[0]);
    if (call.command == "create" && !call.container.empty())
        return as_shim ? shim_create(call, spec, argv) : create(call, spec, argv);
    if (call.command == "delete" && !call.container.empty())
        return remove(call, argv);
    if (call.command == "run" && !as_shim) {
        report(call,
               "`runc run` is not supported in the exclusive-ranges mode; containerd uses create + "
               "start");
        return 1;
    }
    exec_runc(argv);
}

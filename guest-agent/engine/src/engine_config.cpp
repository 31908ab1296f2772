#include "cordon/engine/engine_config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "cordon/error.hpp"

namespace cordon::engine {

nlohmann::json make_daemon_config(const nlohmann::json& base, bool isolation,
                                  const EnginePaths& paths, const RemapUser& user,
                                  bool exclusive_ranges) {
    nlohmann::json cfg = base.is_object() ? base : nlohmann::json::object();
    cfg["hosts"] = {"unix://" + paths.dockerd_socket};
    cfg["group"] = "root";
    cfg["data-root"] = paths.docker_root;
    cfg.erase("tls");
    cfg.erase("tlsverify");
    cfg.erase("default-runtime");
    if (cfg.contains("runtimes") && cfg["runtimes"].is_object())
        cfg["runtimes"].erase(kExclusiveRuntimeName);
    if (cfg.contains("runtimes") && cfg["runtimes"].empty())
        cfg.erase("runtimes");
    if (isolation && !exclusive_ranges) {
        cfg["userns-remap"] = user.name + ":" + user.name;
    } else {
        cfg.erase("userns-remap");
    }
    if (isolation && exclusive_ranges) {
        cfg["runtimes"][kExclusiveRuntimeName] = {{"path", kExclusiveRuntimePath}};
        cfg["default-runtime"] = kExclusiveRuntimeName;
    }
    if (isolation) {
        // BuildKit's own entitlements (moby 20.10 daemon/config/builder.go): RUN
        // --network=host and --security=insecure are refused by the engine itself, whatever
        // the request (the proxy refuses networkmode=host and /grpc too). Other builder keys
        // of the base (gc) are kept.
        if (!cfg.contains("builder") || !cfg["builder"].is_object())
            cfg["builder"] = nlohmann::json::object();
        cfg["builder"]["entitlements"] = {{"network-host", false}, {"security-insecure", false}};
    }
    return cfg;
}

std::string engine_path_env(const std::string& runc_shim_dir) {
    return "PATH=" + runc_shim_dir +
           ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

void write_runc_shim(const std::string& dir, bool install, const std::string& target) {
    if (dir.empty())
        return;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        throw_errno("cannot create the runc shim folder", dir, "is /run/cordon writable?");
    const std::string link = dir + "/runc";
    if (!install) {
        if (::unlink(link.c_str()) != 0 && errno != ENOENT)
            throw_errno("cannot remove the runc shim", link, "remove it by hand");
        return;
    }
    const std::string tmp = link + ".new";
    ::unlink(tmp.c_str());
    if (::symlink(target.c_str(), tmp.c_str()) != 0)
        throw_errno("cannot create the runc shim", tmp, "is /run/cordon writable?");
    if (::rename(tmp.c_str(), link.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        errno = err;
        throw_errno("cannot install the runc shim", link, "is /run/cordon writable?");
    }
}

std::string data_root_for(bool isolation, const EnginePaths& paths, const RemapUser& user) {
    if (!isolation)
        return paths.docker_root;
    return paths.docker_root + "/" + std::to_string(user.uids.start) + "." +
           std::to_string(user.gids.start);
}

}  // namespace cordon::engine

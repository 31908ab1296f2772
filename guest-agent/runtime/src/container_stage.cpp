#include "cordon/runtime/container_stage.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <vector>

#include "cordon/error.hpp"
#include "cordon/mountinfo.hpp"
#include "cordon/log.hpp"
#include "cordon/runtime/idmap_mount.hpp"
#include "cordon/runtime/overlay_rootfs.hpp"
#include "cordon/runtime/spec_rewrite.hpp"
#include "cordon/unique_fd.hpp"

namespace cordon::runtime {
namespace fs = std::filesystem;
namespace {

constexpr const char* kContainerStageLog = "idmap";

void make_dir(const std::string& path, mode_t mode) {
    if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
        throw_errno("cannot create a folder", path);
    ::chmod(path.c_str(), mode);  // whatever the umask
}

void make_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    if (!fd)
        throw_errno("cannot create a mount point", path);
}

// Mount points at or under `dir`, deepest first.
std::vector<std::string> mounts_under(const std::string& dir) {
    std::vector<std::string> out;
    for (auto& m : read_mountinfo())
        if (m.mount_point == dir || m.mount_point.rfind(dir + "/", 0) == 0)
            out.push_back(std::move(m.mount_point));
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.size() > b.size(); });
    return out;
}

}  // namespace

std::string ContainerStage::dir_for(const std::string& container) const {
    if (container.empty() || container.find('/') != std::string::npos || container == "." ||
        container == "..")
        throw Error("invalid container id \"" + container + "\"", "cordon-runc");
    return base_ + "/" + container;
}

std::string ContainerStage::make_dir_for(const std::string& container) const {
    const std::string dir = dir_for(container);
    make_dir(base_, 0711);
    make_dir(dir, 0711);
    return dir;
}

StagedContainer ContainerStage::prepare(const std::string& container, const nlohmann::json& spec,
                                        const IdRange& range, int userns_fd) const {
    const std::string dir = make_dir_for(container);
    StagedContainer staged;
    try {
        const std::string merged = spec.at("root").at("path").get<std::string>();
        const OverlayLayers layers = docker_overlay_layers(merged);
        std::vector<std::string> lower;
        for (std::size_t i = 0; i < layers.lower.size(); ++i) {
            const std::string name = "l" + std::to_string(i);
            make_dir(dir + "/" + name, 0700);
            idmap_bind(layers.lower[i], dir + "/" + name, userns_fd);
            lower.push_back(name);
        }
        make_dir(dir + "/u", 0700);
        idmap_bind(layers.layer_dir, dir + "/u", userns_fd);
        make_dir(dir + "/root", 0755);
        mount_overlay_as(overlay_options(lower, "u/diff", "u/work"), dir + "/root", range.start,
                         range.start, dir);
        // overlayfs holds private clones of its layers: the staged ones can go.
        for (const auto& name : lower) {
            ::umount2((dir + "/" + name).c_str(), MNT_DETACH);
            ::rmdir((dir + "/" + name).c_str());
        }
        ::umount2((dir + "/u").c_str(), MNT_DETACH);
        ::rmdir((dir + "/u").c_str());
        staged.root_path = dir + "/root";

        for (const std::size_t index : bind_mounts_to_idmap(spec)) {
            const std::string src = spec["mounts"][index]["source"].get<std::string>();
            struct stat st {};
            if (::stat(src.c_str(), &st) != 0)
                continue;  // runc reports a missing source itself
            const std::string target = dir + "/m" + std::to_string(index);
            if (S_ISDIR(st.st_mode)) {
                make_dir(target, 0700);
            } else {
                make_file(target);
            }
            try {
                idmap_bind(src, target, userns_fd);
                staged.sources[index] = target;
            } catch (const Error& e) {
                // tmpfs (e.g. /dev/shm's source) cannot be ID-mapped before Linux 6.3: keep the
                // plain bind.
                log::info(kContainerStageLog, "{}: mounted without an ID map ({})", src, e.failure());
                ::remove(target.c_str());
            }
        }
    } catch (...) {
        teardown(container);
        throw;
    }
    return staged;
}

void ContainerStage::teardown(const std::string& container) const {
    const std::string dir = dir_for(container);
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0)
        return;
    for (const auto& point : mounts_under(dir)) {
        if (::umount2(point.c_str(), MNT_DETACH) != 0)
            log::warn(kContainerStageLog, "cannot unmount {}: {}", point, errno_string(errno));
    }
    // Remove only what is no longer a mount: rmdir/unlink, never a recursive delete.
    const auto still_mounted = mounts_under(dir);
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string p = entry.path().string();
        if (std::find(still_mounted.begin(), still_mounted.end(), p) != still_mounted.end())
            continue;
        ::remove(p.c_str());
    }
    if (still_mounted.empty())
        ::rmdir(dir.c_str());
}

}  // namespace cordon::runtime

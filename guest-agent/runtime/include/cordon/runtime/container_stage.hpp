#pragma once
// The mounts a container in its own ID range needs, staged under
// /run/cordon-idmap/<container id>/ (0711, so container root can reach them):
//   root/   an overlay of dockerd's layers for this container, each layer an
//           ID-mapped mount (the image's files, stored as 0..65535, appear as
//           the container's range; what the container writes is stored 0-based);
//   m<N>/   ID-mapped views of bind-mount sources (named volumes, the
//           container's hosts/hostname/resolv.conf) where the filesystem allows it;
//   p<N>/   bind sources in shared folders, pinned (bind_pinning.hpp); in both
//           isolation modes.
#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "cordon/engine/subid.hpp"

namespace cordon::runtime {

using engine::IdRange;

struct StagedContainer {
    std::string root_path;
    std::map<std::size_t, std::string> sources;  // mount index -> ID-mapped source
};

class ContainerStage {
  public:
    explicit ContainerStage(std::string base = "/run/cordon-idmap") : base_(std::move(base)) {}

    std::string dir_for(const std::string& container) const;
    // Creates the container's stage folder (and the base) if missing; returns it.
    std::string make_dir_for(const std::string& container) const;
    // Throws cordon::Error (naming the step, the path and errno) and leaves nothing
    // mounted when a step fails. The caller tears down a previous attempt first.
    StagedContainer prepare(const std::string& container, const nlohmann::json& spec,
                            const IdRange& range, int userns_fd) const;
    // Unmounts and removes what prepare staged; never follows into a mount it
    // could not unmount. Safe to call when nothing is staged.
    void teardown(const std::string& container) const;

  private:
    std::string base_;
};

}  // namespace cordon::runtime

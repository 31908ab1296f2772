#pragma once
// A container's root filesystem as seen through ID-mapped layers.
//
// Linux 6.1 cannot ID-map an overlayfs mount itself (overlayfs lacks
// FS_ALLOW_IDMAP until 6.x later; mount_setattr gives EINVAL), but since 5.19
// overlayfs accepts ID-mapped *layers*. So the rootfs dockerd prepared
// (overlay2: <root>/overlay2/<id>/merged over <id>/diff and the image's layers)
// is rebuilt as a new overlay whose lower layers and upper folder are each an
// ID-mapped bind mount of the same folders on the data disk.
#include <string>
#include <vector>

namespace cordon::runtime {

struct OverlayLayers {
    std::vector<std::string> lower;  // top first, absolute paths
    std::string layer_dir;           // <root>/overlay2/<id>: holds diff/ (upper) and work/
};

// Reads dockerd's overlay2 layout for a rootfs path ".../overlay2/<id>/merged":
// <id>/lower holds "l/SHORT:l/SHORT..." relative to the overlay2 folder. Throws
// cordon::Error naming the path when the layout is not overlay2's.
OverlayLayers docker_overlay_layers(const std::string& merged);

// Builds the overlay mount options from staged (ID-mapped) paths.
std::string overlay_options(const std::vector<std::string>& lower, const std::string& upper,
                            const std::string& work);

}  // namespace cordon::runtime

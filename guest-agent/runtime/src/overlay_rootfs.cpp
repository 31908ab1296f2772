#include "cordon/runtime/overlay_rootfs.hpp"

#include <filesystem>

#include "cordon/atomic_file.hpp"
#include "cordon/error.hpp"

namespace cordon::runtime {
namespace fs = std::filesystem;

OverlayLayers docker_overlay_layers(const std::string& merged) {
    const fs::path m = fs::path(merged).lexically_normal();
    const std::string hint = "exclusive ID ranges need dockerd's overlay2 storage driver";
    if (m.filename() != "merged" || !m.has_parent_path())
        throw Error("the container's rootfs is not an overlay2 \"merged\" folder", merged, hint);
    OverlayLayers out;
    out.layer_dir = m.parent_path().string();
    const fs::path overlay2 = m.parent_path().parent_path();
    std::error_code ec;
    if (!fs::is_directory(fs::path(out.layer_dir) / "diff", ec) ||
        !fs::is_directory(fs::path(out.layer_dir) / "work", ec))
        throw Error("the container's layer has no diff/ and work/ folders", out.layer_dir, hint);
    std::string text = read_file(out.layer_dir + "/lower");
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (text.empty())
        throw Error("the container's layer lists no lower layers", out.layer_dir + "/lower", hint);
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const auto colon = text.find(':', pos);
        const std::string part =
            text.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
        if (part.empty() || part.find("..") != std::string::npos || part.front() == '/')
            throw Error("malformed lower layer entry \"" + part + "\"", out.layer_dir + "/lower",
                        hint);
        out.lower.push_back((overlay2 / part).string());
        if (colon == std::string::npos)
            break;
        pos = colon + 1;
    }
    return out;
}

std::string overlay_options(const std::vector<std::string>& lower, const std::string& upper,
                            const std::string& work) {
    if (lower.empty())
        throw Error("an overlay needs at least one lower layer");
    std::string o = "lowerdir=";
    for (std::size_t i = 0; i < lower.size(); ++i) {
        if (lower[i].find_first_of(":,") != std::string::npos)
            throw Error("a layer path holds ':' or ',', which overlay options cannot carry",
                        lower[i]);
        if (i)
            o += ':';
        o += lower[i];
    }
    o += ",upperdir=" + upper + ",workdir=" + work + ",index=off";
    return o;
}

}  // namespace cordon::runtime

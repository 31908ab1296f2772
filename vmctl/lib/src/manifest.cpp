#include "cordon/host/manifest.hpp"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cordon/host/host_error.hpp"
#include "cordon/host/paths.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace cordon::host {
namespace {

const char* kBuildHint =
    "build the image (cmake --build build --target cordon_image) or set image_dir "
    "(vmctl settings set image_dir FOLDER, or vmctl start --image-dir FOLDER)";

std::string string_key(const json& doc, const fs::path& file, const char* key, bool required) {
    auto it = doc.find(key);
    if (it == doc.end()) {
        if (!required)
            return {};
        throw HostError(ErrorKind::image,
                        std::string("the image manifest has no '") + key + "' key", file.string(),
                        "the manifest must name kernel, initrd and cmdline; rebuild the image");
    }
    if (!it->is_string()) {
        throw HostError(ErrorKind::image,
                        std::string("key '") + key + "' must be a string, not " + it->dump(),
                        file.string(), "rebuild the image");
    }
    return it->get<std::string>();
}

fs::path existing_file(const fs::path& dir, const fs::path& file, const std::string& rel,
                       const char* key) {
    if (rel.empty()) {
        throw HostError(ErrorKind::image, std::string("key '") + key + "' is empty", file.string(),
                        "rebuild the image");
    }
    fs::path p = fs::path(rel).is_absolute() ? fs::path(rel) : dir / rel;
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        throw HostError(ErrorKind::image,
                        std::string("the image's ") + key + " named in manifest.json is missing",
                        p.string(), kBuildHint);
    }
    return p;
}

}  // namespace

ImageManifest load_manifest(const fs::path& image_dir_in) {
    std::error_code ec;
    fs::path image_dir = fs::absolute(image_dir_in, ec);
    if (ec)
        image_dir = image_dir_in;
    struct stat st {};
    if (::stat(image_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw HostError(ErrorKind::image, "the VM image folder does not exist", image_dir.string(),
                        kBuildHint);
    }
    const fs::path file = image_dir / "manifest.json";
    if (::stat(file.c_str(), &st) != 0) {
        throw HostError(ErrorKind::image, "the VM image folder has no manifest.json", file.string(),
                        kBuildHint);
    }
    json doc;
    try {
        doc = json::parse(read_file(file));
    } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
        throw HostError(ErrorKind::image,
                        std::string("manifest.json is not valid JSON: ") + e.what(), file.string(),
                        "rebuild the image");
    } catch (const cordon::Error& e) {
        throw HostError(ErrorKind::image, e.failure(), file.string(),
                        "fix the permissions of the image folder");
    }
    if (!doc.is_object()) {
        throw HostError(ErrorKind::image, "manifest.json must hold a JSON object", file.string(),
                        "rebuild the image");
    }
    ImageManifest m;
    m.dir = image_dir;
    m.kernel = existing_file(image_dir, file, string_key(doc, file, "kernel", true), "kernel");
    m.initrd = existing_file(image_dir, file, string_key(doc, file, "initrd", true), "initrd");
    m.cmdline = string_key(doc, file, "cmdline", true);
    if (doc.contains("rootfs") && !doc["rootfs"].is_null()) {
        m.rootfs = existing_file(image_dir, file, string_key(doc, file, "rootfs", true), "rootfs");
    }
    if (std::string f = string_key(doc, file, "rootfs_format", false); !f.empty()) {
        if (f != "raw" && f != "qcow2") {
            throw HostError(ErrorKind::image,
                            "key 'rootfs_format' must be \"raw\" or \"qcow2\", not \"" + f + "\"",
                            file.string(), "rebuild the image");
        }
        m.rootfs_format = f;
    }
    m.version = string_key(doc, file, "version", false);
    return m;
}

}  // namespace cordon::host

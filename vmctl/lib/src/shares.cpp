#include "cordon/host/shares.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "cordon/host/host_error.hpp"
#include "cordon/host/paths.hpp"
#include "cordon/log.hpp"
#include "cordon/subprocess.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace cordon::host {

bool IdMap::maps_root() const {
    return std::any_of(entries.begin(), entries.end(),
                       [](const IdMapEntry& e) { return e.inner == 0; });
}

std::string IdMap::text() const {
    std::string s;
    for (const auto& e : entries)
        s += (s.empty() ? "" : ",") + std::to_string(e.inner) + ":" + std::to_string(e.outer) +
             ":" + std::to_string(e.count);
    return s;
}

std::string IdMap::kernel_text() const {
    std::string s;
    for (const auto& e : entries)
        s += std::to_string(e.inner) + " " + std::to_string(e.outer) + " " +
             std::to_string(e.count) + "\n";
    return s;
}

namespace {

bool parse_u32(const std::string& s, std::uint32_t& out) {
    if (s.empty() || s.size() > 10 ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    const unsigned long long v = std::stoull(s);
    if (v > 0xffffffffull)
        return false;
    out = static_cast<std::uint32_t>(v);
    return true;
}

bool overlaps(std::uint64_t a, std::uint64_t an, std::uint64_t b, std::uint64_t bn) {
    return a < b + bn && b < a + an;
}

}  // namespace

IdMap parse_id_map(const std::string& text) {
    IdMap m;
    const std::string hint = "write inner:outer:count[,inner:outer:count...], e.g. 0:1000:1";
    if (text.empty())
        throw cordon::Error("an ID map is empty", "ID map", hint);
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        const std::string item = text.substr(start, comma - start);
        const auto c1 = item.find(':');
        const auto c2 = c1 == std::string::npos ? std::string::npos : item.find(':', c1 + 1);
        IdMapEntry e;
        if (c2 == std::string::npos || !parse_u32(item.substr(0, c1), e.inner) ||
            !parse_u32(item.substr(c1 + 1, c2 - c1 - 1), e.outer) ||
            !parse_u32(item.substr(c2 + 1), e.count))
            throw cordon::Error("bad ID map entry \"" + item + "\"", text, hint);
        if (e.count == 0)
            throw cordon::Error("an ID map entry maps no ids (count 0)", item, hint);
        if (std::uint64_t(e.inner) + e.count > 0x100000000ull ||
            std::uint64_t(e.outer) + e.count > 0x100000000ull)
            throw cordon::Error("an ID map entry runs past the last id", item, hint);
        for (const auto& o : m.entries) {
            if (overlaps(e.inner, e.count, o.inner, o.count) ||
                overlaps(e.outer, e.count, o.outer, o.count))
                throw cordon::Error("ID map entries overlap", text,
                                    "each id may appear once inside and once outside");
        }
        m.entries.push_back(e);
        if (m.entries.size() > 5)
            throw cordon::Error("an ID map has more than 5 entries", text,
                                "the kernel accepts 5 without CAP_SYS_ADMIN in older kernels");
        start = comma + 1;
        if (comma == text.size())
            break;
    }
    return m;
}

IdMap share_id_map(std::uint32_t owner, bool isolation) {
    IdMap m;
    if (!isolation) {
        m.entries.push_back({0, owner, 1});
        return m;
    }
    // virtiofsd must be root of its namespace (it needs its capabilities there): VM id 0
    // is somebody, and "nobody" owns nothing of the user's. If the owner is nobody itself,
    // the next free id stands in.
    std::uint32_t stand_in = owner == kOverflowId ? kOverflowId - 1 : kOverflowId;
    m.entries.push_back({0, stand_in, 1});
    m.entries.push_back({kRemapBase, owner, 1});
    return m;
}

ShareOwner resolve_share_owner(const std::string& setting) {
    ShareOwner o;
    auto home_of = [](uid_t uid) -> std::string {
        if (const passwd* pw = ::getpwuid(uid); pw && pw->pw_dir)
            return pw->pw_dir;
        return {};
    };
    if (setting.empty()) {
        o.uid = ::getuid();
        o.gid = ::getgid();
        const char* su = std::getenv("SUDO_UID");
        const char* sg = std::getenv("SUDO_GID");
        std::uint32_t u = 0, g = 0;
        if (o.uid == 0 && su && sg && parse_u32(su, u) && parse_u32(sg, g)) {
            o.uid = u;
            o.gid = g;
            o.home = home_of(u);
        } else if (const char* h = std::getenv("HOME"); h && *h) {
            o.home = h;
        } else {
            o.home = home_of(o.uid);
        }
        return o;
    }
    const auto colon = setting.find(':');
    if (colon != std::string::npos) {
        if (!parse_u32(setting.substr(0, colon), o.uid) ||
            !parse_u32(setting.substr(colon + 1), o.gid))
            throw HostError(ErrorKind::usage, "share_owner must be a user name or UID:GID",
                            setting, "e.g. vmctl settings set share_owner 1000:1000");
        o.home = home_of(o.uid);
        return o;
    }
    const passwd* pw = ::getpwnam(setting.c_str());
    if (!pw)
        throw HostError(ErrorKind::usage, "share_owner names no user of this host", setting,
                        "give an existing user name, UID:GID, or unset it");
    o.uid = pw->pw_uid;
    o.gid = pw->pw_gid;
    o.home = pw->pw_dir ? pw->pw_dir : "";
    return o;
}

std::string share_path_problem(const std::string& path) {
    if (path.empty() || path[0] != '/')
        return "it must be an absolute path";
    if (path.size() > 1 && path.back() == '/')
        return "it must not end with '/'";
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] != '/')
            continue;
        const auto j = std::min(path.find('/', i + 1), path.size());
        const std::string seg = path.substr(i + 1, j - i - 1);
        if ((seg.empty() && path != "/") || seg == "." || seg == "..")
            return "it must be a clean path (no '.', '..' or '//')";
    }
    if (path.size() > 1024)
        return "it is longer than 1024 bytes";
    for (unsigned char c : path)
        if (c < 0x20 || c == 0x7f)
            return "it holds a control character";
    // Folders the VM itself lives in: a share there would hide the VM's own files.
    static const char* const kSystem[] = {"/proc", "/sys", "/dev", "/run", "/etc", "/usr",
                                          "/bin",  "/sbin", "/lib", "/lib32", "/lib64",
                                          "/libx32", "/boot", "/var", "/opt/cordon"};
    if (path == "/")
        return "it is the root folder (the VM would lose its own)";
    for (const char* s : kSystem) {
        const std::string p = s;
        if (path == p || path.compare(0, p.size() + 1, p + "/") == 0)
            return "it is inside " + p + ", a folder the VM needs for itself";
    }
    if (path == "/tmp")
        return "it is /tmp itself (share a folder inside it instead)";
    return {};
}

std::string check_shared_folders(const json& v) {
    const std::string expected =
        "an array of {\"path\": \"/absolute/folder\", \"readonly\": false} objects";
    if (!v.is_array())
        return expected;
    if (v.size() > 16)
        return expected + " (at most 16)";
    for (const auto& e : v) {
        if (!e.is_object() || !e.contains("path") || !e["path"].is_string())
            return expected;
        for (auto it = e.begin(); it != e.end(); ++it) {
            if (it.key() == "readonly" && !it.value().is_boolean())
                return expected + " (\"readonly\" is true or false)";
            if (it.key() != "path" && it.key() != "readonly")
                return expected + " (unknown key \"" + it.key() + "\")";
        }
        std::string p = e["path"].get<std::string>();
        if (p == "~")
            continue;
        if (p.rfind("~/", 0) == 0)
            p = "/home/user" + p.substr(1);  // checked as if under a home folder
        if (std::string why = share_path_problem(p); !why.empty())
            return expected + " (\"" + e["path"].get<std::string>() + "\": " + why + ")";
    }
    return {};
}

std::vector<SharedFolder> shared_folders_from_json(const json& v, const std::string& home) {
    if (std::string why = check_shared_folders(v); !why.empty())
        throw HostError(ErrorKind::config, "shared_folders must be " + why, v.dump());
    std::vector<SharedFolder> out;
    for (const auto& e : v) {
        SharedFolder f;
        f.path = e["path"].get<std::string>();
        f.readonly = e.value("readonly", false);
        if (f.path == "~" || f.path.rfind("~/", 0) == 0) {
            if (home.empty()) {  // an owner given as UID:GID without an account
                log::warn("settings", "shared_folders: skipping {}: the share owner has no home "
                          "folder", f.path);
                continue;
            }
            f.path = home + f.path.substr(1);
            if (std::string why = share_path_problem(f.path); !why.empty())
                throw HostError(ErrorKind::config, "the shared folder " + f.path + " is refused: " + why,
                                e["path"].get<std::string>(),
                                "remove it from shared_folders (vmctl shares remove)");
        }
        const bool dup = std::any_of(out.begin(), out.end(),
                                     [&](const SharedFolder& o) { return o.path == f.path; });
        if (!dup)
            out.push_back(f);
    }
    return out;
}

json shared_folders_to_json(const std::vector<SharedFolder>& folders) {
    json a = json::array();
    for (const auto& f : folders) a.push_back({{"path", f.path}, {"readonly", f.readonly}});
    return a;
}

json parse_shared_folders_text(const std::string& text) {
    if (!text.empty() && text[0] == '[') {
        try {
            return json::parse(text);
        } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
            throw HostError(ErrorKind::usage, std::string("not valid JSON: ") + e.what(), text);
        }
    }
    json a = json::array();
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        std::string item = text.substr(start, comma - start);
        bool ro = false;
        if (item.size() > 3 && item.compare(item.size() - 3, 3, ":ro") == 0) {
            ro = true;
            item.resize(item.size() - 3);
        } else if (item.size() > 3 && item.compare(item.size() - 3, 3, ":rw") == 0) {
            item.resize(item.size() - 3);
        }
        if (!item.empty())
            a.push_back({{"path", item}, {"readonly", ro}});
        start = comma + 1;
    }
    return a;
}

std::string share_tag(std::size_t index, bool isolation) {
    return "cordon-share-" + std::to_string(index) + (isolation ? "-on" : "-off");
}

std::string percent_encode(const std::string& s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '/' || c == '.' || c == '_' ||
                           c == '~' || c == '-';
        if (plain) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string share_cmdline(const std::vector<SharedFolder>& folders) {
    std::string s;
    for (std::size_t i = 0; i < folders.size(); ++i)
        s += " cordon.share=" + std::to_string(i) + "," + (folders[i].readonly ? "ro" : "rw") +
             "," + percent_encode(folders[i].path);
    return s;
}

fs::path virtiofs_wrapper_path(const fs::path& dir, std::size_t index, bool isolation) {
    return dir / ("virtiofsd-" + std::to_string(index) + (isolation ? "-on" : "-off"));
}

namespace {
std::string sh_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}
}  // namespace

void write_virtiofs_wrappers(const fs::path& dir, const std::vector<SharedFolder>& folders,
                             const ShareOwner& owner, const fs::path& wrapper_exe) {
    make_dirs(dir, 0755);
    for (std::size_t i = 0; i < folders.size(); ++i) {
        for (bool iso : {false, true}) {
            const std::string script =
                "#!/bin/sh\n"
                "# Written by Cordon at every VM start: virtiofsd for shared folder " +
                std::to_string(i) + " with isolation " + (iso ? "on" : "off") +
                ", in a user namespace\n# that makes container root the host user " +
                owner.text() + ".\nexec " + sh_quote(wrapper_exe.string()) + " --uid-map " +
                share_id_map(owner.uid, iso).text() + " --gid-map " +
                share_id_map(owner.gid, iso).text() +
                (folders[i].readonly ? " --read-only" : "") + " --virtiofsd " + kVirtiofsdPath +
                " -- \"$@\"\n";
            write_file_atomic(virtiofs_wrapper_path(dir, i, iso), script, 0755);
        }
    }
}

fs::path find_virtiofs_wrapper() {
    constexpr const char* kName = "cordon-virtiofsd";
    if (const char* env = std::getenv("CORDON_VIRTIOFSD_WRAPPER"); env && *env) {
        if (::access(env, X_OK) == 0)
            return env;
        throw HostError(ErrorKind::generic, "CORDON_VIRTIOFSD_WRAPPER does not name an executable",
                        env);
    }
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        for (fs::path p : {self.parent_path() / kName,
                           self.parent_path().parent_path() / "virtiofs" / kName,
                           self.parent_path().parent_path() / "vmctl" / "virtiofs" / kName,
                           self.parent_path().parent_path() / "libexec" / "cordon" / kName}) {
            if (::access(p.c_str(), X_OK) == 0)
                return fs::absolute(p);
        }
    }
    const std::string p = cordon::find_program(kName);
    if (!p.empty())
        return p;
    throw HostError(ErrorKind::generic, "cannot find the shared-folder helper program", kName,
                    "build it (cmake --build build --target cordon-virtiofsd), set "
                    "CORDON_VIRTIOFSD_WRAPPER, or set shared_folders to []");
}

}  // namespace cordon::host

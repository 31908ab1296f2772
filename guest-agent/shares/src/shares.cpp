#include "cordon/shares/shares.hpp"

#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <sstream>

#include "cordon/error.hpp"
#include "cordon/mountinfo.hpp"
#include "cordon/log.hpp"
#include "cordon/subprocess.hpp"

namespace cordon::shares {
namespace {
constexpr const char* kSharesLog = "shares";
constexpr const char* kPrefix = "cordon.share=";

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

std::string percent_decode(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size() || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
            throw Error("bad percent escape", s, "the host writes %XX with two hex digits");
        const char c = static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
        if (c == '\0') throw Error("a NUL byte in a shared folder path", s);
        out += c;
        i += 2;
    }
    return out;
}

std::string guest_path_problem(const std::string& path) {
    if (path.empty() || path[0] != '/') return "not an absolute path";
    if (path == "/") return "it is the VM's root folder";
    if (path.back() == '/') return "it ends with '/'";
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] != '/') continue;
        const auto j = std::min(path.find('/', i + 1), path.size());
        const std::string seg = path.substr(i + 1, j - i - 1);
        if (seg.empty() || seg == "." || seg == "..") return "not a clean path";
    }
    for (const char* s : {"/proc", "/sys", "/dev", "/run", "/etc", "/usr", "/bin", "/sbin", "/lib",
                          "/lib32", "/lib64", "/libx32", "/boot", "/var"}) {
        const std::string p = s;
        if (path == p || path.compare(0, p.size() + 1, p + "/") == 0)
            return "it is inside " + p + ", which the VM needs for itself";
    }
    if (path == "/tmp") return "it is /tmp itself";
    return {};
}

std::string share_tag(int index, bool isolation) {
    return "cordon-share-" + std::to_string(index) + (isolation ? "-on" : "-off");
}

std::vector<GuestShare> parse_share_cmdline(const std::string& cmdline, std::vector<std::string>* problems) {
    std::vector<GuestShare> out;
    std::istringstream words(cmdline);
    std::string word;
    auto bad = [&](const std::string& why) {
        if (problems) problems->push_back(word + ": " + why);
    };
    while (words >> word) {
        if (word.rfind(kPrefix, 0) != 0) continue;
        const std::string v = word.substr(std::string(kPrefix).size());
        const auto c1 = v.find(',');
        const auto c2 = c1 == std::string::npos ? std::string::npos : v.find(',', c1 + 1);
        if (c2 == std::string::npos) {
            bad("expected INDEX,rw|ro,PATH");
            continue;
        }
        const std::string idx = v.substr(0, c1), mode = v.substr(c1 + 1, c2 - c1 - 1);
        if (idx.empty() || idx.size() > 2 || !std::all_of(idx.begin(), idx.end(), ::isdigit)) {
            bad("the index must be a number below 100");
            continue;
        }
        if (mode != "rw" && mode != "ro") {
            bad("the mode must be rw or ro");
            continue;
        }
        GuestShare s;
        s.index = std::stoi(idx);
        s.readonly = mode == "ro";
        try {
            s.path = percent_decode(v.substr(c2 + 1));
        } catch (const std::exception& e) {
            bad(e.what());
            continue;
        }
        if (std::string why = guest_path_problem(s.path); !why.empty()) {
            bad(why);
            continue;
        }
        const bool dup = std::any_of(out.begin(), out.end(), [&](const GuestShare& o) {
            return o.index == s.index || o.path == s.path;
        });
        if (dup) {
            bad("the same index or path twice");
            continue;
        }
        out.push_back(s);
    }
    return out;
}

MountOps MountOps::system() {
    MountOps o;
    o.mount = [](const std::string& tag, const std::string& path, bool readonly) {
        const unsigned long flags = MS_NOSUID | MS_NODEV | (readonly ? MS_RDONLY : 0);
        return ::mount(tag.c_str(), path.c_str(), "virtiofs", flags, nullptr) == 0 ? 0 : errno;
    };
    o.unmount = [](const std::string& path) { return ::umount2(path.c_str(), MNT_DETACH) == 0 ? 0 : errno; };
    o.make_dirs = [](const std::string& path) {
        for (std::size_t i = 1; i <= path.size(); ++i) {
            if (i != path.size() && path[i] != '/') continue;
            const std::string p = path.substr(0, i);
            if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) return errno;
        }
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) return errno;
        return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    };
    o.mounted_tag = [](const std::string& path) {
        std::string tag;  // the last match is the mount on top
        for (const auto& m : read_mountinfo())
            if (m.fs_type == "virtiofs" && m.mount_point == path)
                tag = m.source;
        return tag;
    };
    o.load_module = [] {
        auto r = cordon::run({"modprobe", "virtiofs"}, std::chrono::seconds(30));
        if (!r.ok()) log::warn(kSharesLog, "modprobe virtiofs failed: {}{}", r.err, r.out);
    };
    return o;
}

ShareMounter::ShareMounter(std::vector<GuestShare> shares, MountOps ops)
    : shares_(std::move(shares)), state_(shares_.size()), ops_(std::move(ops)) {}

void ShareMounter::apply(bool isolation) {
    bool module_tried = false;
    if (!probed_ && ops_.mounted_tag) {
        // A restarted guest agent: the VM keeps the mounts the previous one made. Take them
        // over instead of stacking a second mount on each folder.
        probed_ = true;
        for (std::size_t i = 0; i < shares_.size(); ++i) {
            const std::string tag = ops_.mounted_tag(shares_[i].path);
            if (tag == share_tag(shares_[i].index, true) ||
                tag == share_tag(shares_[i].index, false)) {
                state_[i] = {true, tag, ""};
                log::info(kSharesLog, "{} is already mounted ({}, by an earlier agent)",
                          shares_[i].path, tag);
            }
        }
    }
    for (std::size_t i = 0; i < shares_.size(); ++i) {
        const GuestShare& s = shares_[i];
        State& st = state_[i];
        const std::string tag = share_tag(s.index, isolation);
        if (st.mounted && st.tag == tag) continue;
        if (st.mounted) {
            if (int e = ops_.unmount(s.path); e != 0 && e != EINVAL) {
                st.error = "cannot unmount " + st.tag + ": " + errno_string(e);
                log::error(kSharesLog, "{}: {}", s.path, st.error);
                continue;
            }
            st.mounted = false;
        }
        if (int e = ops_.make_dirs(s.path); e != 0) {
            st.error = "cannot create the mount point: " + errno_string(e);
            log::error(kSharesLog, "{}: {}", s.path, st.error);
            continue;
        }
        int e = ops_.mount(tag, s.path, s.readonly);
        if (e == ENODEV && !module_tried) {  // the filesystem type is a module not loaded yet
            module_tried = true;
            ops_.load_module();
            e = ops_.mount(tag, s.path, s.readonly);
        }
        if (e != 0) {
            st.error = "cannot mount virtiofs " + tag + ": " + errno_string(e);
            log::error(kSharesLog, "{}: {}", s.path, st.error);
            continue;
        }
        st = {true, tag, ""};
        log::info(kSharesLog, "{} mounted ({}, {})", s.path, tag, s.readonly ? "read-only" : "read-write");
    }
}

std::vector<std::string> ShareMounter::paths() const {
    std::vector<std::string> p;
    for (const auto& s : shares_) p.push_back(s.path);
    return p;
}

nlohmann::json ShareMounter::status() const {
    nlohmann::json a = nlohmann::json::array();
    for (std::size_t i = 0; i < shares_.size(); ++i) {
        nlohmann::json e = {{"path", shares_[i].path},
                            {"readonly", shares_[i].readonly},
                            {"mounted", state_[i].mounted},
                            {"tag", state_[i].tag}};
        if (!state_[i].error.empty()) e["error"] = state_[i].error;
        a.push_back(e);
    }
    return a;
}

}  // namespace cordon::shares

#pragma once
// Shared host folders in the VM. The host lists them on the kernel command line, one
// word each: "cordon.share=INDEX,rw|ro,PERCENT-ENCODED-PATH" (vmctl/lib shares.hpp),
// and exports each folder twice over virtiofs: tag "cordon-share-INDEX-on" is served
// with the ID map for isolation on (VM uid 100000 is the host user), "-off" with the map
// for isolation off (VM uid 0 is the host user). The agent mounts the device of the
// mode in force at the folder's own path, and swaps it when the mode changes.
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cordon::shares {

struct GuestShare {
    int index = 0;
    bool readonly = false;
    std::string path;
    bool operator==(const GuestShare&) const = default;
};

// Reads every cordon.share word. Bad words are skipped and described in problems.
std::vector<GuestShare> parse_share_cmdline(const std::string& cmdline,
                                            std::vector<std::string>* problems = nullptr);

// Decodes %XX escapes; throws cordon::Error on a bad escape or a NUL byte.
std::string percent_decode(const std::string& s);

// Why the VM refuses to mount a share at path (empty: it does not): not a clean absolute
// path, or one of the VM's own folders (/, /proc, /etc, /usr, /var, ...).
std::string guest_path_problem(const std::string& path);

std::string share_tag(int index, bool isolation);

// The system calls the mounter makes, replaceable in tests.
struct MountOps {
    std::function<int(const std::string& tag, const std::string& path, bool readonly)> mount;
    std::function<int(const std::string& path)> unmount;
    std::function<int(const std::string& path)> make_dirs;  // mkdir -p, 0755
    std::function<void()> load_module;                        // modprobe virtiofs
    // The tag of the virtiofs mount on top at `path` ("" if none): a restarted agent finds
    // the mounts of the one before it. May be empty (nothing is ever mounted before).
    std::function<std::string(const std::string& path)> mounted_tag;
    static MountOps system();
};

class ShareMounter {
public:
    explicit ShareMounter(std::vector<GuestShare> shares, MountOps ops = MountOps::system());

    // Mounts each share's device for this isolation mode at its path, replacing the other
    // mode's mount. Failures are logged and reported by status(), never thrown.
    void apply(bool isolation);

    const std::vector<GuestShare>& shares() const { return shares_; }
    // The VM paths of the shares (what the policy lets containers bind with isolation on).
    std::vector<std::string> paths() const;
    // [{"path", "readonly", "mounted", "tag", "error"}]
    nlohmann::json status() const;

private:
    struct State {
        bool mounted = false;
        std::string tag;
        std::string error;
    };
    std::vector<GuestShare> shares_;
    std::vector<State> state_;
    MountOps ops_;
    bool probed_ = false;  // the mounts an earlier agent left were looked up
};

}  // namespace cordon::shares

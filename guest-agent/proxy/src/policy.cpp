#include "cordon/proxy/policy.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <set>

#include "cordon/error.hpp"
#include "cordon/proxy/gojson.hpp"
#include "cordon/proxy/hex.hpp"
#include "cordon/proxy/http.hpp"
#include "cordon/proxy/volume_options.hpp"

namespace cordon::policy {

using gojson::Type;
using gojson::Value;

const char* role_name(Role r) {
    return r == Role::host ? "host" : "container";
}

namespace {

// A refusal raised anywhere in a check; caught in check_head/check_body.
struct Denied {
    std::string rule;
    std::string message;
};

[[noreturn]] void deny(std::string rule, std::string message) {
    throw Denied{std::move(rule), std::move(message)};
}

// ---------------------------------------------------------------- routes

// How a response may leave HTTP: not at all, after a 101, or also by dockerd's
// 200-then-hijack (see Route::hijack).
enum class Tunnel { no, upgrade, hijack };

struct RouteDef {
    const char* method;
    const char* pattern;  // segments; "{}" = one segment, "{*}" = one or more
    const char* operation;
    BodyMode body;
    Tunnel tunnel = Tunnel::no;
};

constexpr BodyMode kNone = BodyMode::none;
constexpr BodyMode kStream = BodyMode::stream;
constexpr BodyMode kInspect = BodyMode::inspect;
constexpr BodyMode kDiscard = BodyMode::discard;

// Docker Engine API 1.41 (dockerd 20.10): every endpoint allowed under isolation.
// Anything not listed here is refused (deny by default).
const RouteDef kRoutes[] = {
    {"GET", "_ping", "system.ping", kNone},
    {"HEAD", "_ping", "system.ping", kNone},
    {"GET", "version", "system.version", kNone},
    {"GET", "info", "system.info", kNone},
    {"GET", "events", "system.events", kNone},
    {"GET", "system/df", "system.df", kNone},
    {"POST", "auth", "system.auth", kStream},
    {"GET", "containers/json", "container.list", kNone},
    {"POST", "containers/create", "container.create", kInspect},
    {"POST", "containers/prune", "container.prune", kNone},
    {"GET", "containers/{}/json", "container.inspect", kNone},
    {"GET", "containers/{}/top", "container.top", kNone},
    {"GET", "containers/{}/logs", "container.logs", kNone},
    {"GET", "containers/{}/changes", "container.diff", kNone},
    {"GET", "containers/{}/export", "container.export", kNone},
    {"GET", "containers/{}/stats", "container.stats", kNone},
    {"POST", "containers/{}/resize", "container.resize", kNone},
    {"POST", "containers/{}/start", "container.start", kInspect},
    {"POST", "containers/{}/stop", "container.stop", kNone},
    {"POST", "containers/{}/restart", "container.restart", kNone},
    {"POST", "containers/{}/kill", "container.kill", kNone},
    {"POST", "containers/{}/update", "container.update", kInspect},
    {"POST", "containers/{}/rename", "container.rename", kNone},
    {"POST", "containers/{}/pause", "container.pause", kNone},
    {"POST", "containers/{}/unpause", "container.unpause", kNone},
    {"POST", "containers/{}/attach", "container.attach", kDiscard, Tunnel::hijack},
    {"GET", "containers/{}/attach/ws", "container.attach", kDiscard, Tunnel::upgrade},
    {"POST", "containers/{}/wait", "container.wait", kNone},
    {"DELETE", "containers/{}", "container.remove", kNone},
    {"HEAD", "containers/{}/archive", "container.archive.stat", kNone},
    {"GET", "containers/{}/archive", "container.archive.get", kNone},
    {"PUT", "containers/{}/archive", "container.archive.put", kStream},
    {"POST", "containers/{}/exec", "exec.create", kInspect},
    {"POST", "exec/{}/start", "exec.start", kInspect, Tunnel::hijack},
    {"POST", "exec/{}/resize", "exec.resize", kNone},
    {"GET", "exec/{}/json", "exec.inspect", kNone},
    {"GET", "images/json", "image.list", kNone},
    {"POST", "build", "image.build", kStream},
    {"POST", "build/prune", "image.build.prune", kNone},
    {"POST", "build/cancel", "image.build.cancel", kNone},
    {"POST", "session", "image.build.session", kDiscard, Tunnel::upgrade},
    {"POST", "images/create", "image.pull", kStream},
    {"GET", "images/search", "image.search", kNone},
    {"POST", "images/prune", "image.prune", kNone},
    {"GET", "images/get", "image.save", kNone},
    {"POST", "images/load", "image.load", kStream},
    {"POST", "commit", "image.commit", kInspect},
    {"GET", "images/{*}/json", "image.inspect", kNone},
    {"GET", "images/{*}/history", "image.history", kNone},
    {"POST", "images/{*}/push", "image.push", kNone},
    {"POST", "images/{*}/tag", "image.tag", kNone},
    {"GET", "images/{*}/get", "image.save", kNone},
    {"DELETE", "images/{*}", "image.remove", kNone},
    {"GET", "distribution/{*}/json", "image.distribution", kNone},
    {"GET", "networks", "network.list", kNone},
    {"POST", "networks/create", "network.create", kInspect},
    {"POST", "networks/prune", "network.prune", kNone},
    {"GET", "networks/{}", "network.inspect", kNone},
    {"POST", "networks/{}/connect", "network.connect", kInspect},
    {"POST", "networks/{}/disconnect", "network.disconnect", kStream},
    {"DELETE", "networks/{}", "network.remove", kNone},
    {"GET", "volumes", "volume.list", kNone},
    {"POST", "volumes/create", "volume.create", kInspect},
    {"POST", "volumes/prune", "volume.prune", kNone},
    {"GET", "volumes/{}", "volume.inspect", kNone},
    {"DELETE", "volumes/{}", "volume.remove", kNone},
    {"GET", "plugins", "plugin.list", kNone},
    {"GET", "plugins/{*}/json", "plugin.inspect", kNone},
    // Swarm: read-only queries only. Every swarm write is refused (kGroupDenies), so the
    // node never joins a swarm while isolation is on and dockerd answers these itself
    // (503 "This node is not a swarm manager", as a dockerd outside a swarm does).
    // Leaving a swarm (one joined while isolation was off) only takes privileges away.
    {"GET", "swarm", "swarm.inspect", kNone},
    {"POST", "swarm/leave", "swarm.leave", kNone},
    {"GET", "nodes", "swarm.node.list", kNone},
    {"GET", "nodes/{}", "swarm.node.inspect", kNone},
    {"GET", "services", "swarm.service.list", kNone},
    {"GET", "services/{}", "swarm.service.inspect", kNone},
    {"GET", "services/{}/logs", "swarm.service.logs", kNone},
    {"GET", "tasks", "swarm.task.list", kNone},
    {"GET", "tasks/{}", "swarm.task.inspect", kNone},
    {"GET", "tasks/{}/logs", "swarm.task.logs", kNone},
    {"GET", "secrets", "swarm.secret.list", kNone},
    {"GET", "secrets/{}", "swarm.secret.inspect", kNone},
    {"GET", "configs", "swarm.config.list", kNone},
    {"GET", "configs/{}", "swarm.config.inspect", kNone},
};

// Endpoints refused as a group (a clearer message than "unknown endpoint").
struct GroupDeny {
    const char* prefix;
    const char* rule;
    const char* what;
};
const GroupDeny kGroupDenies[] = {
    {"plugins", "plugin",
     "plugins run with host privileges: installing, enabling or configuring them"},
    {"swarm", "swarm",
     "creating, joining, changing or unlocking a swarm is refused: a swarm's services run "
     "containers from specs with privileges, capabilities and mounts that the container "
     "checks never see, and a desktop VM needs no swarm; read-only queries are forwarded"},
    {"services", "swarm",
     "creating, changing or removing swarm services is refused: a service spec carries "
     "privileges, capabilities and mounts that would bypass the container checks"},
    {"nodes", "swarm", "changing or removing swarm nodes is refused (swarm mode is off)"},
    {"tasks", "swarm", "only reading swarm tasks is allowed (swarm mode is off)"},
    {"secrets", "swarm",
     "creating, changing or removing swarm secrets is refused (swarm mode is off)"},
    {"configs", "swarm",
     "creating, changing or removing swarm configs is refused (swarm mode is off)"},
    {"grpc", "build.grpc", "BuildKit's raw gRPC API (it can grant build entitlements)"},
};

std::vector<std::string> split_segments(std::string_view path) {
    std::vector<std::string> out;
    std::size_t i = 1;  // path starts with '/'
    while (i <= path.size()) {
        auto j = path.find('/', i);
        if (j == std::string_view::npos)
            j = path.size();
        out.emplace_back(path.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

bool match_segments(const std::vector<std::string>& pat, std::size_t pi,
                    const std::vector<std::string>& seg, std::size_t si,
                    std::vector<std::string>& params) {
    if (pi == pat.size())
        return si == seg.size();
    if (si >= seg.size())
        return false;
    const auto& p = pat[pi];
    if (p == "{}") {
        params.push_back(seg[si]);
        if (match_segments(pat, pi + 1, seg, si + 1, params))
            return true;
        params.pop_back();
        return false;
    }
    if (p == "{*}") {
        // one or more segments, longest match first (image names hold '/')
        for (std::size_t n = seg.size() - si; n >= 1; --n) {
            std::string joined;
            for (std::size_t k = si; k < si + n; ++k) joined += (k > si ? "/" : "") + seg[k];
            params.push_back(joined);
            if (match_segments(pat, pi + 1, seg, si + n, params))
                return true;
            params.pop_back();
        }
        return false;
    }
    if (p != seg[si])
        return false;
    return match_segments(pat, pi + 1, seg, si + 1, params);
}

// ---------------------------------------------------------------- Go-JSON helpers

// The single value of a struct field, or nullptr. Two keys selecting the same field
// (e.g. "Binds" and "binds") are refused: Go would decode both into the same field
// (merging objects), which a last-wins reading could misjudge.
const Value* field(const Value& obj, std::string_view name) {
    auto hits = gojson::lookup(obj, name);
    if (hits.empty())
        return nullptr;
    if (hits.size() > 1)
        deny("json.duplicate-key",
             "the request body names the field \"" + std::string(name) +
                 "\" more than once (keys are matched case-insensitively, as dockerd does)");
    return hits.front();
}

[[noreturn]] void bad_type(const std::string& name, const char* want) {
    deny("json.type",
         "the field \"" + name + "\" must be " + want + " (dockerd would refuse this request too)");
}

std::string get_string(const Value* v, const std::string& name) {
    if (!v || v->is_null())
        return {};
    if (!v->is_string())
        bad_type(name, "a string");
    return v->text;
}

bool get_bool(const Value* v, const std::string& name) {
    if (!v || v->is_null())
        return false;
    if (!v->is_bool())
        bad_type(name, "true or false");
    return v->boolean;
}

const Value* get_object(const Value* v, const std::string& name) {
    if (!v || v->is_null())
        return nullptr;
    if (!v->is_object())
        bad_type(name, "an object");
    return v;
}

// []string (null allowed). Returns the elements' values.
std::vector<const Value*> get_string_array(const Value* v, const std::string& name) {
    std::vector<const Value*> out;
    if (!v || v->is_null())
        return out;
    if (!v->is_array())
        bad_type(name, "an array of strings");
    for (const auto& item : v->items) {
        if (!item.is_string())
            bad_type(name, "an array of strings");
        out.push_back(&item);
    }
    return out;
}

// strslice.StrSlice: a string or an array of strings.
std::vector<std::string> get_strslice(const Value* v, const std::string& name) {
    std::vector<std::string> out;
    if (!v || v->is_null())
        return out;
    if (v->is_string()) {
        out.push_back(v->text);
        return out;
    }
    for (const auto* item : get_string_array(v, name)) out.push_back(item->text);
    return out;
}

bool number_negative(const Value* v) {
    return v && v->is_number() && v->text.size() > 1 && v->text[0] == '-' && !gojson::is_zero(*v);
}

bool number_nonzero(const Value* v) {
    return v && v->is_number() && !gojson::is_zero(*v);
}

// ---------------------------------------------------------------- field lists (moby 20.10)

const std::initializer_list<const char*> kConfigFields = {
    "Hostname",     "Domainname",   "User",        "AttachStdin",     "AttachStdout",
    "AttachStderr", "ExposedPorts", "Tty",         "OpenStdin",       "StdinOnce",
    "Env",          "Cmd",          "Healthcheck", "ArgsEscaped",     "Image",
    "Volumes",      "WorkingDir",   "Entrypoint",  "NetworkDisabled", "MacAddress",
    "OnBuild",      "Labels",       "StopSignal",  "StopTimeout",     "Shell"};

const std::initializer_list<const char*> kResourcesFields = {"CpuShares",
                                                             "Memory",
                                                             "NanoCpus",
                                                             "CgroupParent",
                                                             "BlkioWeight",
                                                             "BlkioWeightDevice",
                                                             "BlkioDeviceReadBps",
                                                             "BlkioDeviceWriteBps",
                                                             "BlkioDeviceReadIOps",
                                                             "BlkioDeviceWriteIOps",
                                                             "CpuPeriod",
                                                             "CpuQuota",
                                                             "CpuRealtimePeriod",
                                                             "CpuRealtimeRuntime",
                                                             "CpusetCpus",
                                                             "CpusetMems",
                                                             "Devices",
                                                             "DeviceCgroupRules",
                                                             "DeviceRequests",
                                                             "KernelMemory",
                                                             "KernelMemoryTCP",
                                                             "MemoryReservation",
                                                             "MemorySwap",
                                                             "MemorySwappiness",
                                                             "OomKillDisable",
                                                             "PidsLimit",
                                                             "Ulimits",
                                                             "CpuCount",
                                                             "CpuPercent",
                                                             "IOMaximumIOps",
                                                             "IOMaximumBandwidth"};

const std::initializer_list<const char*> kHostConfigFields = {
    "Binds",          "ContainerIDFile", "LogConfig",    "NetworkMode",   "PortBindings",
    "RestartPolicy",  "AutoRemove",      "VolumeDriver", "VolumesFrom",   "CapAdd",
    "CapDrop",        "Capabilities",    "CgroupnsMode", "Dns",           "DnsOptions",
    "DnsSearch",      "ExtraHosts",      "GroupAdd",     "IpcMode",       "Cgroup",
    "Links",          "OomScoreAdj",     "PidMode",      "Privileged",    "PublishAllPorts",
    "ReadonlyRootfs", "SecurityOpt",     "StorageOpt",   "Tmpfs",         "UTSMode",
    "UsernsMode",     "ShmSize",         "Sysctls",      "Runtime",       "ConsoleSize",
    "Isolation",      "Mounts",          "MaskedPaths",  "ReadonlyPaths", "Init"};

const std::initializer_list<const char*> kEndpointFields = {"IPAMConfig",
                                                            "Links",
                                                            "Aliases",
                                                            "NetworkID",
                                                            "EndpointID",
                                                            "Gateway",
                                                            "IPAddress",
                                                            "IPPrefixLen",
                                                            "IPv6Gateway",
                                                            "GlobalIPv6Address",
                                                            "GlobalIPv6PrefixLen",
                                                            "MacAddress",
                                                            "DriverOpts"};

const std::set<std::string> kDefaultCaps = {
    "CHOWN",   "DAC_OVERRIDE", "FSETID",           "FOWNER",
    "MKNOD",   "NET_RAW",      "SETGID",           "SETUID",
    "SETFCAP", "SETPCAP",      "NET_BIND_SERVICE", "SYS_CHROOT",
    "KILL",    "AUDIT_WRITE"};

const char* const kDefaultMasked[] = {
    "/proc/asound",        "/proc/acpi",       "/proc/kcore",       "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi",          "/sys/firmware"};
const char* const kDefaultReadonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                        "/proc/sysrq-trigger"};

// ---------------------------------------------------------------- the checker

struct Replacement {
    std::size_t begin, end;
    std::string text;
};

struct Checker {
    const Policy& policy;
    const PolicyConfig& cfg;
    const Lookups* lookups;
    std::vector<Replacement> replacements;
    std::vector<LookupRequest> missing;
    bool socket_mount = false;
    std::string image_name;           // the image of a create that mounts the socket
    std::vector<std::string> removed;  // fields dockerd would ignore, stripped from the body

    // Members that match none of `known` (Go's case-insensitive, Unicode-folding match) are
    // ignored by dockerd 20.10's decoder; they are removed from the forwarded body, so
    // nothing the policy does not model ever reaches dockerd. Each run of removed members
    // is cut with its separating comma, leaving the kept members' bytes untouched.
    void check_unknown(const Value& obj,
                       std::initializer_list<std::initializer_list<const char*>> known,
                       const std::string& where) {
        const auto& m = obj.members;
        std::vector<bool> drop(m.size(), false);
        for (std::size_t i = 0; i < m.size(); ++i) {
            bool hit = false;
            for (const auto& list : known)
                for (const char* k : list)
                    if (gojson::key_matches_field(m[i].first, k))
                        hit = true;
            if (!hit) {
                drop[i] = true;
                removed.push_back(where + ": \"" + m[i].first + "\"");
            }
        }
        for (std::size_t a = 0; a < m.size();) {
            if (!drop[a]) {
                ++a;
                continue;
            }
            std::size_t b = a;
            while (b + 1 < m.size() && drop[b + 1]) ++b;
            if (b + 1 < m.size())
                replacements.push_back({m[a].second.key_begin, m[b + 1].second.key_begin, ""});
            else if (a > 0)
                replacements.push_back({m[a - 1].second.end, m[b].second.end, ""});
            else
                replacements.push_back({m[a].second.key_begin, m[b].second.end, ""});
            a = b + 1;
        }
    }

    void cap(const std::string& raw, const std::string& where) {
        for (char c : raw)
            if (static_cast<unsigned char>(c) >= 0x80)
                deny("capabilities",
                     "the capability \"" + raw + "\" in HostConfig." + where +
                         " is not ASCII (dockerd upper-cases it the Go way: U+017F becomes "
                         "\"S\", so it could name a capability outside the default set)");
        std::string up = raw;
        for (auto& c : up)
            if (c >= 'a' && c <= 'z')
                c = static_cast<char>(c - 32);
        if (up.rfind("CAP_", 0) == 0)
            up = up.substr(4);
        if (!kDefaultCaps.count(up))
            deny("capabilities", "adding the capability " + up + " (HostConfig." + where +
                                     ") goes beyond Docker's default set: it would act on "
                                     "the VM kernel");
    }

    void ns_mode(const Value* v, const char* name, const char* rule, bool allow_container,
                 std::initializer_list<const char*> allowed) {
        std::string s = get_string(v, name);
        if (s.empty())
            return;
        for (const char* a : allowed)
            if (s == a)
                return;
        if (allow_container && s.rfind("container:", 0) == 0 && s.size() > 10)
            return;
        if (s == "host")
            deny(rule,
                 std::string(name) + "=host would share the VM's namespace with the container");
        deny(rule, std::string(name) + "=\"" + s + "\" is not an allowed mode");
    }

    void network_name(const std::string& name, const std::string& where) {
        if (name == "host")
            deny("namespace.network", where + " joins the VM's network namespace (host)");
        if (name.empty() || name == "bridge" || name == "default" || name == "none")
            return;
        if (name.rfind("container:", 0) == 0)
            return;
        // A user-defined name (or an ID, or an ID prefix): ask dockerd what it is.
        if (!lookups || !lookups->networks.count(name)) {
            missing.push_back({LookupRequest::Kind::network, name});
            return;
        }
        const auto& n = lookups->networks.at(name);
        if (n.found && (n.driver == "host" || n.name == "host"))
            deny("namespace.network", where + " \"" + name + "\" is the VM's host network");
    }

    // Returns the source to write back (empty: unchanged).
    std::string bind_source(const std::string& src, const std::string& where, bool socket_ok) {
        // dockerd may clean a source lexically before the kernel resolves it; the two
        // readings of "a/../b" can differ when "a" is a symlink, so only clean paths pass.
        bool clean = !src.empty() && src[0] == '/' && (src == "/" || src.back() != '/');
        for (std::size_t i = 0; clean && i < src.size(); ++i) {
            if (src[i] != '/')
                continue;
            auto j = src.find('/', i + 1);
            std::string seg = src.substr(i + 1, (j == std::string::npos ? src.size() : j) - i - 1);
            if ((seg.empty() && src != "/") || seg == "." || seg == "..")
                clean = false;
        }
        if (!clean)
            deny("bind-mount.syntax", "the bind source " + src + " (" + where +
                                          ") must be a clean absolute path (no '.', '..' or '//')");
        std::string resolved, why;
        auto cls = policy.classify_bind_source(src, resolved, why);
        if (cls == Policy::PathClass::sensitive)
            deny("bind-mount.sensitive", "bind mount of " + src + " (" + where + "): " + why);
        if (cls == Policy::PathClass::outside_shares)
            deny("bind-mount.outside-shares", "bind mount of " + src + " (" + where + "): " + why);
        if (cls == Policy::PathClass::docker_socket) {
            if (!socket_ok)
                deny("bind-mount.docker-socket",
                     "mounting the Docker socket (" + src + ", " + where + ") is not allowed here");
            socket_mount = true;
            return cfg.container_socket_path;
        }
        return resolved != src ? resolved : std::string();
    }

    void propagation(const std::string& p, const std::string& where) {
        if (p == "shared" || p == "rshared")
            deny("bind-mount.propagation",
                 where + " asks for " + p +
                     " mount propagation (container mounts would reach the VM)");
    }

    void bind_string(const Value& v) {
        const std::string& s = v.text;
        std::vector<std::string> parts;
        std::size_t i = 0;
        while (true) {
            auto j = s.find(':', i);
            parts.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
            if (j == std::string::npos)
                break;
            i = j + 1;
        }
        if (parts.size() > 3)
            deny("bind-mount.syntax", "the bind \"" + s + "\" has too many ':' fields");
        if (parts.size() == 1)
            return;  // anonymous volume at a container path
        if (parts.size() == 3) {
            std::size_t k = 0;
            const std::string& mode = parts[2];
            while (k <= mode.size()) {
                auto e = mode.find(',', k);
                propagation(mode.substr(k, e == std::string::npos ? std::string::npos : e - k),
                            "the bind \"" + s + "\"");
                if (e == std::string::npos)
                    break;
                k = e + 1;
            }
        }
        if (parts[0].empty() || parts[0][0] != '/') {
            named_volume(parts[0], "Binds");
            return;
        }
        std::string repl = bind_source(parts[0], "Binds", true);
        if (!repl.empty()) {
            std::string out = repl + s.substr(parts[0].size());
            replacements.push_back({v.begin, v.end, gojson::quote(out)});
        }
    }

    // The local driver's options, wherever dockerd will mount with them (volume create,
    // inline Mounts DriverConfig, the stored options of an existing volume).
    void local_options(const VolumeOptions& opts, const std::string& where) {
        auto r = check_local_volume_options(opts, cfg.vm_subnets, where);
        if (r.refusal)
            deny(r.refusal->rule, r.refusal->message);
        if (!r.bind_device)
            return;
        const std::string& device = *r.bind_device;
        if (device.empty() || device[0] != '/')
            deny("volume.bind", "a bind volume (" + where +
                                    ") needs an absolute device path, not \"" + device +
                                    "\" (dockerd would resolve it from its own directory)");
        bind_source(device, where + " (o=bind, device=" + device + ")", false);
    }

    void local_driver_opts(const Value* opts, const std::string& where) {
        if (!get_object(opts, where))
            return;
        VolumeOptions list;
        for (const auto& [k, v] : opts->members) {
            if (!v.is_string() && !v.is_null())
                bad_type(where + "." + k, "a string");
            list.emplace_back(k, v.text);
        }
        local_options(list, where);
    }

    // A named volume a container uses: if it exists, dockerd mounts it with the options it
    // was created with (perhaps while isolation was off), so they are checked the same way.
    void named_volume(const std::string& name, const std::string& where) {
        if (name.empty())
            return;
        if (!lookups || !lookups->volumes.count(name)) {
            missing.push_back({LookupRequest::Kind::volume, name});
            return;
        }
        const auto& v = lookups->volumes.at(name);
        if (!v.found)
            return;  // dockerd creates it plain (or from inline options checked here)
        if (!v.driver.empty() && v.driver != "local")
            deny("volume.driver", "the existing volume \"" + name + "\" (" + where +
                                      ") uses the driver \"" + v.driver + "\", a plugin");
        local_options(v.options, "the existing volume \"" + name + "\" (" + where + ")");
    }

    void mount(const Value& m, std::size_t index) {
        std::string where = "Mounts[" + std::to_string(index) + "]";
        if (!m.is_object())
            bad_type(where, "an object");
        check_unknown(m,
                      {{"Type", "Source", "Target", "ReadOnly", "Consistency", "BindOptions",
                        "VolumeOptions", "TmpfsOptions"}},
                      where);
        std::string type = get_string(field(m, "Type"), where + ".Type");
        const Value* src = field(m, "Source");
        std::string source = get_string(src, where + ".Source");
        if (const Value* bo = get_object(field(m, "BindOptions"), where + ".BindOptions")) {
            check_unknown(*bo, {{"Propagation", "NonRecursive"}}, where + ".BindOptions");
            propagation(get_string(field(*bo, "Propagation"), where), where);
        }
        if (const Value* to = get_object(field(m, "TmpfsOptions"), where + ".TmpfsOptions")) {
            check_unknown(*to, {{"SizeBytes", "Mode"}}, where + ".TmpfsOptions");
            field(*to, "SizeBytes");
            field(*to, "Mode");
        }
        if (const Value* vo = get_object(field(m, "VolumeOptions"), where + ".VolumeOptions")) {
            check_unknown(*vo, {{"NoCopy", "Labels", "DriverConfig"}}, where + ".VolumeOptions");
            if (const Value* dc = get_object(field(*vo, "DriverConfig"), where)) {
                check_unknown(*dc, {{"Name", "Options"}}, where + ".VolumeOptions.DriverConfig");
                std::string drv = get_string(field(*dc, "Name"), where);
                if (!drv.empty() && drv != "local")
                    deny("volume.driver", "the volume driver \"" + drv + "\" (" + where +
                                              ") is a plugin, which is not allowed");
                local_driver_opts(field(*dc, "Options"),
                                  where + ".VolumeOptions.DriverConfig.Options");
            }
        }
        if (type == "bind") {
            if (source.empty() || source[0] != '/')
                deny("bind-mount.syntax", where + " is a bind mount without an absolute Source");
            std::string repl = bind_source(source, where, true);
            if (!repl.empty())
                replacements.push_back({src->begin, src->end, gojson::quote(repl)});
        } else if (type == "volume") {
            named_volume(source, where);
        } else if (type == "tmpfs") {
        } else {
            deny("mount.type",
                 where + " has the mount type \"" + type + "\", which is not allowed");
        }
    }

    void resources(const Value& hc, const std::string& where) {
        if (!get_string(field(hc, "CgroupParent"), "CgroupParent").empty())
            deny("cgroup-parent",
                 "CgroupParent would place the container outside its cgroup (" + where + ")");
        auto nonempty = [&](const char* name, const char* rule, const char* what) {
            const Value* v = field(hc, name);
            if (v && !v->is_null() && !v->is_array())
                bad_type(name, "an array");
            if (v && v->is_array() && !v->items.empty())
                deny(rule, std::string(what) + " (" + where + "." + name + ")");
        };
        nonempty("Devices", "devices", "VM devices cannot be passed into containers");
        nonempty("DeviceCgroupRules", "devices", "device cgroup rules would open VM devices");
        nonempty("DeviceRequests", "devices", "device requests (GPUs) need host driver hooks");
        if (number_nonzero(field(hc, "CpuRealtimePeriod")) ||
            number_nonzero(field(hc, "CpuRealtimeRuntime")))
            deny("realtime", "real-time CPU scheduling can starve the VM (" + where + ")");
        if (get_bool(field(hc, "OomKillDisable"), "OomKillDisable"))
            deny("oom", "OomKillDisable lets a container freeze the VM under memory pressure (" +
                            where + ")");
    }

    void host_config(const Value* hcv) {
        const Value* hc = get_object(hcv, "HostConfig");
        if (!hc)
            return;
        check_unknown(*hc, {kHostConfigFields, kResourcesFields}, "HostConfig");
        // Touch every known field once so duplicates are refused even where the value
        // itself is harmless.
        for (const char* f : kHostConfigFields) field(*hc, f);
        for (const char* f : kResourcesFields) field(*hc, f);

        if (get_bool(field(*hc, "Privileged"), "Privileged"))
            deny("privileged",
                 "privileged containers would have full access to the VM (HostConfig.Privileged "
                 "is true: all capabilities, all devices, no seccomp or AppArmor)");
        for (const auto* b : get_string_array(field(*hc, "Binds"), "Binds")) bind_string(*b);
        if (const Value* mounts = field(*hc, "Mounts"); mounts && !mounts->is_null()) {
            if (!mounts->is_array())
                bad_type("Mounts", "an array");
            for (std::size_t i = 0; i < mounts->items.size(); ++i) mount(mounts->items[i], i);
        }
        if (const Value* tm = get_object(field(*hc, "Tmpfs"), "Tmpfs"))
            for (const auto& [path, opts] : tm->members) {
                if (!opts.is_string() && !opts.is_null())
                    bad_type("Tmpfs." + path, "a string");
                if (auto r = check_tmpfs_options(opts.text, "Tmpfs[" + path + "]"))
                    deny(r->rule, r->message);
            }
        std::string vd = get_string(field(*hc, "VolumeDriver"), "VolumeDriver");
        if (!vd.empty() && vd != "local")
            deny("volume.driver",
                 "the volume driver \"" + vd + "\" is a plugin, which is not allowed");

        ns_mode(field(*hc, "PidMode"), "PidMode", "namespace.pid", true, {});
        ns_mode(field(*hc, "IpcMode"), "IpcMode", "namespace.ipc", true,
                {"private", "shareable", "none"});
        ns_mode(field(*hc, "UTSMode"), "UTSMode", "namespace.uts", false, {});
        ns_mode(field(*hc, "UsernsMode"), "UsernsMode", "namespace.user", false, {});
        ns_mode(field(*hc, "CgroupnsMode"), "CgroupnsMode", "namespace.cgroup", false, {"private"});
        ns_mode(field(*hc, "Cgroup"), "Cgroup", "namespace.cgroup", false, {});
        network_name(get_string(field(*hc, "NetworkMode"), "NetworkMode"), "NetworkMode");

        for (const auto& c : get_strslice(field(*hc, "CapAdd"), "CapAdd")) cap(c, "CapAdd");
        for (const auto* c : get_string_array(field(*hc, "Capabilities"), "Capabilities"))
            cap(c->text, "Capabilities");
        get_strslice(field(*hc, "CapDrop"), "CapDrop");

        for (const auto* so : get_string_array(field(*hc, "SecurityOpt"), "SecurityOpt"))
            security_opt(so->text);

        std::string rt = get_string(field(*hc, "Runtime"), "Runtime");
        // The isolation mode picks the runtime (runc, or cordon-runc with exclusive ID
        // ranges); naming "runc" there would run the container without a user namespace.
        if (!rt.empty())
            deny("runtime", "the runtime \"" + rt +
                                "\" (HostConfig.Runtime) replaces the one the isolation mode "
                                "chose; leave --runtime unset");
        std::string iso = get_string(field(*hc, "Isolation"), "Isolation");
        if (!iso.empty() && iso != "default")
            deny("isolation-mode", "HostConfig.Isolation=\"" + iso +
                                       "\" is not allowed (only \"default\": the isolation "
                                       "mode is the VM's, not the container's)");

        if (const Value* sc = get_object(field(*hc, "Sysctls"), "Sysctls"))
            for (const auto& [k, v] : sc->members) sysctl(k);

        if (number_negative(field(*hc, "OomScoreAdj")))
            deny("oom",
                 "a negative HostConfig.OomScoreAdj would make the VM's own processes die "
                 "first");

        if (const Value* so = get_object(field(*hc, "StorageOpt"), "StorageOpt"))
            for (const auto& [k, v] : so->members)
                if (k != "size")
                    deny("storage-opt", "the storage option \"" + k +
                                            "\" (HostConfig.StorageOpt) is not allowed (only "
                                            "size, a quota; others tune the VM's storage driver)");

        if (const Value* lc = get_object(field(*hc, "LogConfig"), "LogConfig")) {
            check_unknown(*lc, {{"Type", "Config"}}, "LogConfig");
            std::string t = get_string(field(*lc, "Type"), "LogConfig.Type");
            if (!t.empty() && t != "json-file" && t != "local" && t != "none")
                deny("log-driver", "the log driver \"" + t +
                                       "\" (HostConfig.LogConfig.Type) makes dockerd connect to "
                                       "sockets or hosts on the container's behalf (json-file, "
                                       "local and none are allowed)");
        }

        paths_superset(field(*hc, "MaskedPaths"), "MaskedPaths", std::begin(kDefaultMasked),
                       std::end(kDefaultMasked));
        paths_superset(field(*hc, "ReadonlyPaths"), "ReadonlyPaths", std::begin(kDefaultReadonly),
                       std::end(kDefaultReadonly));
        resources(*hc, "HostConfig");
    }

    template <typename It>
    void paths_superset(const Value* v, const char* name, It first, It last) {
        if (!v || v->is_null())
            return;
        auto got = get_string_array(v, name);
        for (It it = first; it != last; ++it) {
            bool found =
                std::any_of(got.begin(), got.end(), [&](const Value* g) { return g->text == *it; });
            if (!found)
                deny("masked-paths", std::string(name) + " leaves out " + *it +
                                         ", which would unmask part of the VM's /proc or /sys");
        }
    }

    void security_opt(const std::string& opt) {
        std::string key, val;
        auto eq = opt.find('=');
        if (eq != std::string::npos) {
            key = opt.substr(0, eq), val = opt.substr(eq + 1);
        } else if (auto colon = opt.find(':'); colon != std::string::npos) {
            key = opt.substr(0, colon), val = opt.substr(colon + 1);
        } else {
            key = opt;
        }
        if (key == "no-new-privileges")
            return;
        if (key == "apparmor" && val == "docker-default")
            return;
        if (key == "seccomp" && val == "builtin")
            return;
        if (key == "seccomp" || key == "apparmor") {
            if (val == "unconfined")
                deny("security-opt", "HostConfig.SecurityOpt " + key +
                                         "=unconfined removes the container's " + key +
                                         " confinement");
            deny("security-opt", "HostConfig.SecurityOpt \"" + opt + "\": a custom " + key +
                                     " profile could loosen the default one");
        }
        deny("security-opt", "the security option \"" + opt +
                                 "\" (HostConfig.SecurityOpt) would loosen the container's "
                                 "confinement or is not understood by the policy");
    }

    void sysctl(const std::string& raw) {
        std::string k = raw;
        std::replace(k.begin(), k.end(), '/', '.');
        static const std::set<std::string> ipc = {
            "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
            "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
        if (k.rfind("net.", 0) == 0 || k.rfind("fs.mqueue.", 0) == 0 || ipc.count(k))
            return;
        deny("sysctl", "the sysctl \"" + raw +
                           "\" (HostConfig.Sysctls) is not namespaced: it would change the VM "
                           "kernel");
    }

    void networking_config(const Value* v) {
        const Value* nc = get_object(v, "NetworkingConfig");
        if (!nc)
            return;
        check_unknown(*nc, {{"EndpointsConfig"}}, "NetworkingConfig");
        const Value* ec = get_object(field(*nc, "EndpointsConfig"), "EndpointsConfig");
        if (!ec)
            return;
        for (const auto& [name, settings] : ec->members) {
            network_name(name, "NetworkingConfig.EndpointsConfig");
            endpoint_settings(&settings, "EndpointsConfig[" + name + "]");
        }
    }

    void endpoint_settings(const Value* v, const std::string& where) {
        const Value* es = get_object(v, where);
        if (!es)
            return;
        check_unknown(*es, {kEndpointFields}, where);
        if (const Value* d = get_object(field(*es, "DriverOpts"), where + ".DriverOpts");
            d && !d->members.empty())
            deny("network.driver-opts", "endpoint driver options (" + where + ") are not allowed");
    }

    std::string image_ref(const Value& top) { return get_string(field(top, "Image"), "Image"); }

    // allowDerivedImages: compares `info` with each allowlisted image as the engine has it
    // (looked up in the same round as the image). False, with a denial, when none is a
    // base of `info`.
    bool derived_from_allowed(const ImageInfo& info) {
        const auto& allowlist = cfg.socket_image_allowlist;
        if (cfg.socket_allow_derived_images) {
            for (const auto& entry : allowlist) {
                const auto it = lookups->images.find(entry);  // all looked up with the image
                if (it != lookups->images.end() && policy.image_derived_from(info, it->second))
                    return true;
            }
        }
        deny("bind-mount.docker-socket",
             std::string("mounting the Docker socket is allowed only for images on the admin's "
                         "allowlist (matched by digest") +
                 (cfg.socket_allow_derived_images
                      ? ", or built FROM one of them that the engine has"
                      : "") +
                 "); " + image_name + " (" + info.id + ") is not on it");
        return false;
    }

    void container_create(const Value& top, Decision& d) {
        check_unknown(top, {kConfigFields, {"HostConfig", "NetworkingConfig"}},
                      "the container config");
        for (const char* f : kConfigFields) field(top, f);
        host_config(field(top, "HostConfig"));
        networking_config(field(top, "NetworkingConfig"));
        if (socket_mount) {
            const Value* img = field(top, "Image");
            std::string name = image_ref(top);
            if (name.empty())
                deny("bind-mount.docker-socket", "mounting the Docker socket needs an image");
            // One round of lookups: the image, and with allowDerivedImages the allowlisted
            // images it may be built on.
            std::vector<std::string> wanted{name};
            if (cfg.socket_allow_derived_images)
                wanted.insert(wanted.end(), cfg.socket_image_allowlist.begin(),
                              cfg.socket_image_allowlist.end());
            for (const auto& w : wanted)
                if ((!lookups || !lookups->images.count(w)) &&
                    std::none_of(missing.begin(), missing.end(),
                                 [&](const LookupRequest& r) { return r.name == w; }))
                    missing.push_back({LookupRequest::Kind::image, w});
            if (!missing.empty())
                return;
            const auto& info = lookups->images.at(name);
            image_name = name;
            if (!info.found) {
                d.verdict = Verdict::not_found;
                d.image = name;
                return;
            }
            if (!policy.image_allowed_for_socket(info) && !derived_from_allowed(info))
                return;  // refused
            // Pin the checked image: a tag moved after the lookup cannot swap it.
            replacements.push_back({img->begin, img->end, gojson::quote(info.id)});
        }
    }

    void container_update(const Value& top) {
        check_unknown(top, {kResourcesFields, {"RestartPolicy"}}, "the update");
        for (const char* f : kResourcesFields) field(top, f);
        resources(top, "update");
    }

    void exec_create(const Value& top) {
        check_unknown(top,
                      {{"User", "Privileged", "Tty", "AttachStdin", "AttachStderr", "AttachStdout",
                        "Detach", "DetachKeys", "Env", "WorkingDir", "Cmd"}},
                      "the exec config");
        if (get_bool(field(top, "Privileged"), "Privileged"))
            deny("privileged-exec",
                 "a privileged exec would run with full access to the VM (the "
                 "exec config's Privileged is true)");
        field(top, "User");
        field(top, "Cmd");
    }

    void exec_start(const Value& top) {
        check_unknown(top, {{"Detach", "Tty"}}, "the exec start");
        field(top, "Detach");
        field(top, "Tty");
    }

    void volume_create(const Value& top) {
        check_unknown(top, {{"Name", "Driver", "DriverOpts", "Labels"}}, "the volume");
        std::string drv = get_string(field(top, "Driver"), "Driver");
        if (!drv.empty() && drv != "local")
            deny("volume.driver",
                 "the volume driver \"" + drv + "\" is a plugin, which is not allowed");
        local_driver_opts(field(top, "DriverOpts"), "DriverOpts");
    }

    void network_create(const Value& top) {
        check_unknown(
            top,
            {{"Name", "CheckDuplicate", "Driver", "Scope", "EnableIPv6", "IPAM", "Internal",
              "Attachable", "Ingress", "ConfigOnly", "ConfigFrom", "Options", "Labels"}},
            "the network");
        std::string drv = get_string(field(top, "Driver"), "Driver");
        if (!drv.empty() && drv != "bridge")
            deny("network.driver",
                 "the network driver \"" + drv + "\" is not allowed (only bridge networks)");
        std::string scope = get_string(field(top, "Scope"), "Scope");
        if (!scope.empty() && scope != "local")
            deny("network.scope", "the network scope \"" + scope +
                                      "\" (Scope) is not allowed (only local: swarm and "
                                      "global scopes belong to multi-host drivers)");
        if (get_bool(field(top, "Ingress"), "Ingress"))
            deny("swarm", "Ingress=true: ingress networks belong to swarm mode, which is off");
        const Value* config_from = field(top, "ConfigFrom");
        if (get_bool(field(top, "ConfigOnly"), "ConfigOnly") ||
            (config_from && !gojson::is_zero(*config_from)))
            deny("network.config",
                 "ConfigOnly/ConfigFrom: config-only networks are not allowed "
                 "(they exist to feed swarm and multi-host networks)");
        if (const Value* ipam = get_object(field(top, "IPAM"), "IPAM")) {
            check_unknown(*ipam, {{"Driver", "Options", "Config"}}, "IPAM");
            std::string id = get_string(field(*ipam, "Driver"), "IPAM.Driver");
            if (!id.empty() && id != "default")
                deny("network.ipam", "the IPAM driver \"" + id + "\" is a plugin");
            const Value* io = get_object(field(*ipam, "Options"), "IPAM.Options");
            if (io && !io->members.empty())
                deny("network.ipam",
                     "IPAM.Options are not allowed (they are handed to the IPAM "
                     "driver, which the policy does not model)");
            ipam_configs(field(*ipam, "Config"));
        }
        static const std::set<std::string> ok = {"com.docker.network.bridge.enable_icc",
                                                 "com.docker.network.bridge.enable_ip_masquerade",
                                                 "com.docker.network.bridge.host_binding_ipv4",
                                                 "com.docker.network.driver.mtu"};
        if (const Value* opts = get_object(field(top, "Options"), "Options"))
            for (const auto& [k, v] : opts->members)
                if (!ok.count(k))
                    deny("network.options", "the network option \"" + k +
                                                "\" is not allowed (e.g. a bridge name could take "
                                                "over a VM interface)");
    }

    // One address or prefix of a network's IPAM configuration: well formed (dockerd
    // refuses malformed ones too) and not on the VM's own addresses.
    void ipam_address(const std::string& text, bool cidr, const std::string& where) {
        if (text.empty())
            return;
        auto p = cidr ? parse_cidr(text) : parse_ip(text);
        if (!p)
            deny("network.subnet", where + " \"" + text + "\" is not a valid " +
                                       (cidr ? "CIDR prefix (a.b.c.d/n or x::y/n)" : "IP address"));
        if (auto hit = vm_overlap(*p, cfg.vm_subnets))
            deny("network.subnet", where + " " + text + " overlaps the VM's own addresses (" +
                                       *hit +
                                       "); choose another private range, e.g. 172.30.0.0/16");
    }

    void ipam_configs(const Value* v) {
        if (!v || v->is_null())
            return;
        if (!v->is_array())
            bad_type("IPAM.Config", "an array");
        for (std::size_t i = 0; i < v->items.size(); ++i) {
            const Value& c = v->items[i];
            std::string where = "IPAM.Config[" + std::to_string(i) + "]";
            if (!c.is_object())
                bad_type(where, "an object");
            check_unknown(c, {{"Subnet", "IPRange", "Gateway", "AuxiliaryAddresses"}}, where);
            ipam_address(get_string(field(c, "Subnet"), where + ".Subnet"), true,
                         where + ".Subnet");
            ipam_address(get_string(field(c, "IPRange"), where + ".IPRange"), true,
                         where + ".IPRange");
            ipam_address(get_string(field(c, "Gateway"), where + ".Gateway"), false,
                         where + ".Gateway");
            if (const Value* aux =
                    get_object(field(c, "AuxiliaryAddresses"), where + ".AuxiliaryAddresses"))
                for (const auto& [name, addr] : aux->members) {
                    if (!addr.is_string() && !addr.is_null())
                        bad_type(where + ".AuxiliaryAddresses." + name, "a string");
                    ipam_address(addr.text, false, where + ".AuxiliaryAddresses[" + name + "]");
                }
        }
    }

    void network_connect(const Value& top, const std::string& network) {
        check_unknown(top, {{"Container", "EndpointConfig"}}, "the network connect");
        field(top, "Container");
        network_name(network, "the network");
        endpoint_settings(field(top, "EndpointConfig"), "EndpointConfig");
    }

    void commit(const Value& top) {
        check_unknown(top, {kConfigFields}, "the commit config");
        for (const char* f : kConfigFields) field(top, f);
    }
};

bool path_within(const std::string& p, const std::string& dir) {
    if (dir == "/")
        return true;
    return p == dir ||
           (p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && p[dir.size()] == '/');
}

bool unescape(std::string_view in, bool plus_is_space, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size())
                return false;
            int h = hex_digit_value(in[i + 1]), l = hex_digit_value(in[i + 2]);
            if (h < 0 || l < 0)
                return false;
            out.push_back(static_cast<char>(h * 16 + l));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return true;
}

void check_build_query(const std::multimap<std::string, std::string>& q) {
    static const std::set<std::string> known = {
        "dockerfile", "t",          "extrahosts",  "remote",    "q",         "nocache",
        "cachefrom",  "pull",       "rm",          "forcerm",   "memory",    "memswap",
        "cpushares",  "cpusetcpus", "cpuperiod",   "cpuquota",  "buildargs", "shmsize",
        "squash",     "labels",     "networkmode", "platform",  "target",    "outputs",
        "version",    "session",    "buildid",     "isolation", "ulimits",   "cgroupparent",
        "cpusetmems", "securityopt"};
    for (const auto& [k, v] : q) {
        if (!known.count(k))
            deny("build.query", "the build parameter \"" + k +
                                    "\" is not one of API 1.41's /build parameters (dockerd "
                                    "20.10 ignores it; the policy refuses what it cannot "
                                    "check in the query)");
        if (k == "networkmode") {
            if (v == "host")
                deny("build.network",
                     "builds with networkmode=host would use the VM's network namespace");
            if (v.rfind("container:", 0) == 0)
                deny("build.network",
                     "builds may not join another container's network (networkmode=" + v +
                         ": the build would share its namespace)");
        }
        // moby 20.10 hands securityopt to the build steps' containers (seccomp=unconfined,
        // apparmor=unconfined, no-new-privileges=false...): none is checked, so none passes.
        if (k == "securityopt" && !v.empty())
            deny("build.security-opt",
                 "builds may not set security options for their steps (securityopt=" + v +
                     ": e.g. seccomp=unconfined would lift the steps' confinement)");
        if (k == "cgroupparent" && !v.empty())
            deny("cgroup-parent", "builds may not choose their cgroup parent (cgroupparent=" + v +
                                      ": build steps would run outside their cgroup and its "
                                      "limits)");
        if (k == "isolation" && !v.empty() && v != "default")
            deny("isolation-mode",
                 "builds may not choose an isolation mode (isolation=" + v + "; only default)");
    }
}

}  // namespace

// ---------------------------------------------------------------- path and query

bool normalize_path(std::string_view raw, std::string& out, std::string& why) {
    if (raw.empty() || raw[0] != '/') {
        why = "the request target must be an absolute path";
        return false;
    }
    for (char c : raw) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7F || c == '#') {
            why = "the request path holds a character that must be percent-encoded";
            return false;
        }
    }
    if (!unescape(raw, false, out)) {
        why = "the request path holds an invalid percent-escape";
        return false;
    }
    for (char c : out)
        if (c == '\0') {
            why = "the request path holds a NUL byte";
            return false;
        }
    // Refuse what dockerd's router would clean (and redirect): empty, "." and ".." segments.
    auto segs = split_segments(out);
    for (std::size_t i = 0; i < segs.size(); ++i) {
        const auto& s = segs[i];
        if (s == "." || s == "..") {
            why = "the request path holds a dot segment";
            return false;
        }
        if (s.empty() && !(i + 1 == segs.size() && segs.size() == 1)) {
            why = "the request path holds an empty segment";
            return false;
        }
    }
    return true;
}

bool parse_query(std::string_view raw, std::multimap<std::string, std::string>& out,
                 std::string& why) {
    std::size_t i = 0;
    while (i < raw.size()) {
        auto j = raw.find('&', i);
        if (j == std::string_view::npos)
            j = raw.size();
        std::string_view pair = raw.substr(i, j - i);
        i = j + 1;
        if (pair.empty())
            continue;
        if (pair.find(';') != std::string_view::npos) {
            why = "the query holds a ';' separator";
            return false;
        }
        auto eq = pair.find('=');
        std::string k, v;
        if (!unescape(pair.substr(0, eq), true, k) ||
            !unescape(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true,
                      v)) {
            why = "the query holds an invalid percent-escape";
            return false;
        }
        out.emplace(std::move(k), std::move(v));
    }
    return true;
}

std::string denial_body(const Decision& d) {
    nlohmann::json j;
    j["message"] = "cordon: " + d.message + " [rule " + d.rule +
                   "; enhanced container isolation is on, refused by the Docker socket policy]";
    return j.dump() + "\n";
}

// ---------------------------------------------------------------- Policy

Policy::Policy(PolicyConfig config) : cfg_(std::move(config)) {
    // The socket we bind into allowlisted containers is a Docker socket too: a rewritten
    // body must pass the same policy again (found by fuzz_policy).
    if (!cfg_.container_socket_path.empty() &&
        std::find(cfg_.docker_sockets.begin(), cfg_.docker_sockets.end(),
                  cfg_.container_socket_path) == cfg_.docker_sockets.end())
        cfg_.docker_sockets.push_back(cfg_.container_socket_path);
}

void Policy::set_isolation(bool on) {
    if (!on && cfg_.locked)
        throw Error("cannot turn enhanced container isolation off", "the Docker socket policy",
                    "an administrator locked it on; change the admin settings instead");
    cfg_.isolation = on;
}

std::string Policy::resolve(const std::string& path) const {
    std::string root = cfg_.fs_root;
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    if (root == "/")
        root.clear();
    std::vector<std::string> todo;  // components still to walk, in reverse order
    auto push_path = [&](const std::string& p) {
        std::vector<std::string> parts;
        std::size_t i = 0;
        while (i <= p.size()) {
            auto j = p.find('/', i);
            if (j == std::string::npos)
                j = p.size();
            if (j > i)
                parts.push_back(p.substr(i, j - i));
            i = j + 1;
        }
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_back(*it);
    };
    push_path(path);
    std::vector<std::string> done;
    int links = 0;
    bool missing = false;
    while (!todo.empty()) {
        std::string c = todo.back();
        todo.pop_back();
        if (c == ".")
            continue;
        if (c == "..") {
            if (!done.empty())
                done.pop_back();
            continue;
        }
        done.push_back(c);
        if (missing)
            continue;
        std::string cur;
        for (const auto& d : done) cur += "/" + d;
        struct stat st {};
        if (::lstat((root + cur).c_str(), &st) != 0) {
            missing = true;  // the rest is created by dockerd; resolve it lexically
            continue;
        }
        if (S_ISLNK(st.st_mode)) {
            if (++links > 40)
                throw Error("too many symbolic links", path, "");
            std::string target(4096, '\0');
            ssize_t n = ::readlink((root + cur).c_str(), target.data(), target.size());
            if (n < 0)
                throw_errno("cannot read a symbolic link", root + cur);
            target.resize(static_cast<std::size_t>(n));
            done.pop_back();
            if (!target.empty() && target[0] == '/')
                done.clear();
            push_path(target);
        }
    }
    std::string out;
    for (const auto& d : done) out += "/" + d;
    return out.empty() ? "/" : out;
}

Policy::PathClass Policy::classify_bind_source(const std::string& path, std::string& resolved,
                                               std::string& why) const {
    try {
        resolved = resolve(path);
    } catch (const Error& e) {
        why = e.what();
        return PathClass::sensitive;
    }
    std::string root = cfg_.fs_root;
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    if (root == "/")
        root.clear();
    auto same_file = [&](const std::string& a, const std::string& b) {
        struct stat sa {
        }, sb{};
        if (::stat((root + a).c_str(), &sa) != 0 || ::stat((root + b).c_str(), &sb) != 0)
            return false;
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    };
    std::string via = resolved != path ? " (it resolves to " + resolved + ")" : "";
    if (resolved == "/") {
        why = "it is the VM's root filesystem" + via;
        return PathClass::sensitive;
    }
    for (const auto& sock : cfg_.docker_sockets) {
        std::string rs = resolve(sock);
        if (resolved == rs || same_file(resolved, rs)) {
            why = "it is the Docker socket" + via;
            return PathClass::docker_socket;
        }
        if (path_within(rs, resolved)) {
            why = "it contains the Docker socket " + sock + via;
            return PathClass::sensitive;
        }
    }
    // The path itself and each existing ancestor, compared by inode too, so that a bind
    // mount of a sensitive folder elsewhere in the VM is recognised.
    std::vector<std::string> chain;
    for (std::string p = resolved; p.size() > 1;
         p = p.substr(0, std::max<std::size_t>(1, p.rfind('/'))))
        chain.push_back(p);
    for (const auto& s : cfg_.sensitive_paths) {
        std::string rs = resolve(s);
        if (path_within(rs, resolved) || path_within(resolved, rs)) {
            why = (path_within(resolved, rs) ? "it is inside the sensitive VM path "
                                             : "it contains the sensitive VM path ") +
                  s + via;
            return PathClass::sensitive;
        }
        for (const auto& c : chain)
            if (same_file(c, rs)) {
                why = "it reaches the sensitive VM path " + s + " through " + c;
                return PathClass::sensitive;
            }
    }
    if (cfg_.isolation && cfg_.binds_only_from_shares) {
        std::string list;
        for (const auto& f : cfg_.shared_folders) {
            try {
                if (path_within(resolved, resolve(f)))
                    return PathClass::ok;
            } catch (const Error&) {
                // an unresolvable shared folder admits nothing
            }
            list += (list.empty() ? "" : ", ") + f;
        }
        why = "with isolation on, containers may bind only folders inside the shared folders (" +
              (list.empty() ? std::string("none are shared") : list) + ")" + via +
              "; add the folder to the host setting shared_folders (`vmctl shares add " + resolved +
              "`, then restart the VM) or use a named volume";
        return PathClass::outside_shares;
    }
    return PathClass::ok;
}

bool Policy::command_allowed(Role role, const std::string& op) const {
    if (role != Role::container)
        return true;
    bool listed = false;
    for (const auto& c : cfg_.command_list.commands) {
        if (c == "*" || c == op)
            listed = true;
        if (c.size() > 2 && c.compare(c.size() - 2, 2, ".*") == 0 &&
            op.compare(0, c.size() - 1, c, 0, c.size() - 1) == 0)
            listed = true;
    }
    return cfg_.command_list.type == CommandList::Type::allow ? listed : !listed;
}

bool Policy::image_allowed_for_socket(const ImageInfo& image) const {
    auto digest_of = [](const std::string& s) -> std::string {
        auto at = s.find('@');
        return at == std::string::npos ? std::string() : s.substr(at + 1);
    };
    for (const auto& entry : cfg_.socket_image_allowlist) {
        if (entry.rfind("sha256:", 0) == 0) {
            if (image.id == entry)
                return true;
            continue;
        }
        std::string want = digest_of(entry);
        if (want.empty())
            continue;
        for (const auto& rd : image.repo_digests)
            if (digest_of(rd) == want)
                return true;
    }
    return false;
}

bool Policy::image_derived_from(const ImageInfo& image, const ImageInfo& base) const {
    if (!base.found || base.layers.empty() || image.layers.size() < base.layers.size() ||
        !image_allowed_for_socket(base))
        return false;
    return std::equal(base.layers.begin(), base.layers.end(), image.layers.begin());
}

namespace {

// `docker cp` (the archive endpoints): moby 20.10 bind-mounts the container's mount
// sources into its root in dockerd's own mount namespace, as VM root, following symlinks,
// with no runc and so no runtime wrapper. A bind source (or a local volume's o=bind
// device) that a container swapped for a symlink after the create-time check would then
// be read or written as the VM path it now names. Refused for such containers; named
// volumes and tmpfs are not resolved paths. Adds the lookups still needed to `missing`.
void check_archive_mounts(const ContainerInfo& c, const Lookups& lookups,
                          const std::vector<std::string>& vm_subnets,
                          std::vector<LookupRequest>& missing) {
    for (const auto& m : c.mounts) {
        if (m.type == "bind")
            throw Denied{"container.archive",
                         "docker cp is refused for a container with a bind mount (" + m.source +
                             "): dockerd would mount its source itself, as VM root, following "
                             "any symlink a container put in its path since the check; copy "
                             "through the shared folder on the host, or use docker exec"};
        if (m.type != "volume" || (!m.driver.empty() && m.driver != "local"))
            continue;
        const auto v = lookups.volumes.find(m.name);
        if (v == lookups.volumes.end()) {
            missing.push_back({LookupRequest::Kind::volume, m.name});
            continue;
        }
        const auto check = check_local_volume_options(v->second.options, vm_subnets,
                                                      "the volume " + m.name);
        if (check.bind_device || check.refusal)
            throw Denied{"container.archive",
                         "docker cp is refused for a container with the volume " + m.name +
                             (check.bind_device ? " (o=bind, device " + *check.bind_device + ")"
                                                : " (options the policy refuses)") +
                             ": dockerd would mount it itself, as VM root, following any "
                             "symlink a container put in its path since the check; copy "
                             "through the shared folder on the host"};
    }
}

}  // namespace

Decision Policy::check_head(const RequestInfo& req, const Lookups* lookups) const {
    Decision d;
    try {
        auto qpos = req.target.find('?');
        std::string raw_path = req.target.substr(0, qpos);
        std::string raw_query =
            qpos == std::string::npos ? std::string() : req.target.substr(qpos + 1);
        std::string why;
        if (!normalize_path(raw_path, d.route.path, why))
            deny("http.path", why);
        if (!parse_query(raw_query, d.route.query, why))
            deny("http.query", why);
        // API version prefix: /v1.41/...
        std::string& p = d.route.path;
        if (p.size() > 2 && p[1] == 'v' && p[2] >= '0' && p[2] <= '9') {
            auto slash = p.find('/', 1);
            std::string ver = p.substr(2, (slash == std::string::npos ? p.size() : slash) - 2);
            bool digits_dots = std::all_of(
                ver.begin(), ver.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
            if (digits_dots) {
                d.route.api_version = ver;
                p = slash == std::string::npos ? "/" : p.substr(slash);
                if (cfg_.isolation) {
                    int minor = -1;
                    if (ver.size() >= 3 && ver.size() <= 4 && ver.compare(0, 2, "1.") == 0 &&
                        std::all_of(ver.begin() + 2, ver.end(),
                                    [](char c) { return c >= '0' && c <= '9'; }) &&
                        ver[2] != '0')
                        minor = std::stoi(ver.substr(2));
                    if (minor < cfg_.min_api_minor || minor > cfg_.max_api_minor)
                        deny("api-version", "API version " + ver + " is not accepted (1." +
                                                std::to_string(cfg_.min_api_minor) + " to 1." +
                                                std::to_string(cfg_.max_api_minor) + " are)");
                }
            }
        }
        auto segs = split_segments(p);
        static const std::vector<std::vector<std::string>> patterns = [] {
            std::vector<std::vector<std::string>> out;
            for (const auto& r : kRoutes)
                out.push_back(split_segments(std::string("/") + r.pattern));
            return out;
        }();
        const RouteDef* hit = nullptr;
        for (std::size_t ri = 0; ri < std::size(kRoutes); ++ri) {
            const auto& r = kRoutes[ri];
            if (req.method != r.method)
                continue;
            std::vector<std::string> params;
            if (match_segments(patterns[ri], 0, segs, 0, params)) {
                hit = &r;
                d.route.params = std::move(params);
                break;
            }
        }
        if (hit) {
            d.route.operation = hit->operation;
            d.route.body = hit->body;
            d.route.upgrade = hit->tunnel != Tunnel::no;
            d.route.hijack = hit->tunnel == Tunnel::hijack;
        } else {
            d.route.operation = "unknown";
        }
        if (!command_allowed(req.role, d.route.operation))
            deny("command-list", "the operation " + d.route.operation +
                                     " is not allowed for containers that hold the Docker socket");
        if (!cfg_.isolation) {
            // Bodies the policy would read are still buffered whole (and forwarded
            // unchecked, check_body allows them): dockerd answers 101 to an exec start as
            // soon as it has decoded the JSON, before a streamed body's last chunk, and a
            // tunnel never opens over a body still streaming (dockerode's exec hijack).
            if (d.route.body != BodyMode::discard && d.route.body != BodyMode::inspect)
                d.route.body = BodyMode::stream;
            d.route.upgrade = true;
            d.verdict = d.route.body == BodyMode::inspect ? Verdict::inspect : Verdict::allow;
            d.rule = "isolation-off";
            return d;
        }
        if (!hit) {
            for (const auto& g : kGroupDenies)
                if (!segs.empty() && segs[0] == g.prefix)
                    deny(g.rule, std::string(g.what) + " (" + req.method + " " + p + ")");
            deny("endpoint",
                 "the endpoint " + req.method + " " + p + " is not on the policy's allowlist");
        }
        if (http::is_go_form(req.content_type))
            deny("http.form",
                 "form-encoded bodies are refused (Content-Type \"" + req.content_type +
                     "\" is read by dockerd as " + http::go_media_type(req.content_type) +
                     "): dockerd would read parameters such as networkmode from them; send "
                     "parameters in the query");
        if (d.route.operation == "image.build")
            check_build_query(d.route.query);
        if (d.route.operation.rfind("container.archive.", 0) == 0 && !d.route.params.empty()) {
            const std::string& id = d.route.params.front();
            std::vector<LookupRequest> missing;
            if (!lookups || !lookups->containers.count(id)) {
                missing.push_back({LookupRequest::Kind::container, id});
            } else if (lookups->containers.at(id).found) {
                check_archive_mounts(lookups->containers.at(id), *lookups, cfg_.vm_subnets,
                                     missing);
            }  // else: dockerd answers "No such container" itself
            if (!missing.empty()) {
                d.verdict = Verdict::need_lookup;
                d.lookups = std::move(missing);
                d.rule = "lookup";
                return d;
            }
        }
        d.verdict = hit->body == BodyMode::inspect ? Verdict::inspect : Verdict::allow;
        d.rule = "allow";
    } catch (const Denied& x) {
        d.verdict = Verdict::deny;
        d.rule = x.rule;
        d.message = x.message;
    }
    return d;
}

Decision Policy::check_body(const RequestInfo&, const Decision& head, std::string_view body,
                            const Lookups* lookups) const {
    Decision d;
    d.route = head.route;
    d.verdict = Verdict::allow;
    d.rule = "allow";
    if (!cfg_.isolation)
        return d;
    try {
        if (body.size() > cfg_.max_inspect_body)
            deny("body-size", "the request body is larger than the " +
                                  std::to_string(cfg_.max_inspect_body) +
                                  "-byte limit for bodies the policy must read");
        Value top;
        // CVE-2024-41110: a missing or empty body is judged as the empty object.
        bool blank = std::all_of(body.begin(), body.end(), [](char c) {
            return c == ' ' || c == '\t' || c == '\r' || c == '\n';
        });
        try {
            top = gojson::parse(blank ? std::string_view("{}") : body);
        } catch (const gojson::ParseError& e) {
            if (std::string_view(e.what()).rfind("duplicate", 0) == 0)
                deny("json.duplicate-key",
                     std::string("the request body repeats a key: ") + e.what());
            deny("json.syntax", std::string("the request body is not valid JSON: ") + e.what());
        }
        if (top.is_null())
            top = gojson::parse("{}");
        const std::string& op = d.route.operation;
        if (!top.is_object())
            deny("json.type", "the request body must be a JSON object");
        Checker c{*this, cfg_, lookups, {}, {}, false, {}, {}};
        if (op == "container.create") {
            c.container_create(top, d);
        } else if (op == "container.update") {
            c.container_update(top);
        } else if (op == "exec.create") {
            c.exec_create(top);
        } else if (op == "exec.start") {
            c.exec_start(top);
        } else if (op == "volume.create") {
            c.volume_create(top);
        } else if (op == "network.create") {
            c.network_create(top);
        } else if (op == "network.connect") {
            c.network_connect(top, d.route.params.empty() ? std::string() : d.route.params[0]);
        } else if (op == "image.commit") {
            c.commit(top);
        } else if (op == "container.start") {
            if (!gojson::is_zero(top))
                deny("start-body",
                     "starting a container with a configuration body is refused (HostConfig "
                     "belongs to create)");
        } else {
            deny("endpoint", "no body check exists for " + op);
        }
        if (d.verdict == Verdict::not_found)
            return d;
        if (!c.missing.empty()) {
            d.verdict = Verdict::need_lookup;
            d.lookups = std::move(c.missing);
            return d;
        }
        if (!c.replacements.empty()) {
            std::string out(body);
            std::sort(c.replacements.begin(), c.replacements.end(),
                      [](const Replacement& a, const Replacement& b) { return a.begin > b.begin; });
            for (const auto& r : c.replacements) out.replace(r.begin, r.end - r.begin, r.text);
            d.rewritten_body = std::move(out);
            d.rule = c.socket_mount ? "allow.socket-mount" : "allow.rewritten";
            if (!c.removed.empty()) {
                d.message = "removed fields dockerd 20.10 ignores:";
                for (const auto& r : c.removed) d.message += " " + r + ";";
                d.message.pop_back();
            }
        }
    } catch (const Denied& x) {
        d.verdict = Verdict::deny;
        d.rule = x.rule;
        d.message = x.message;
    } catch (const Error& e) {
        d.verdict = Verdict::deny;
        d.rule = "internal";
        d.message = e.what();
    }
    return d;
}

// ---------------------------------------------------------------- admin settings

PolicyConfig load_admin_config(std::string_view text, PolicyConfig cfg) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
        throw Error("the admin settings are not valid JSON", e.what(), "fix the JSON syntax");
    }
    if (!j.is_object())
        throw Error("the admin settings must be a JSON object", "admin settings", "");
    auto need = [](bool ok, const std::string& key, const char* what) {
        if (!ok)
            throw Error("bad admin setting", key, std::string("it must be ") + what);
    };
    for (auto& [key, val] : j.items()) {
        if (key == "isolation") {
            need(val.is_boolean(), key, "true or false");
            cfg.isolation = val.get<bool>();
        } else if (key == "locked") {
            need(val.is_boolean(), key, "true or false");
            cfg.locked = val.get<bool>();
        } else if (key == "maxInspectBody") {
            need(val.is_number_unsigned() && val.get<std::uint64_t>() >= 4096 &&
                     val.get<std::uint64_t>() <= (64u << 20),
                 key, "a byte count between 4096 and 67108864");
            cfg.max_inspect_body = val.get<std::size_t>();
        } else if (key == "socketMountImages") {
            need(val.is_array(), key, "an array of image digests");
            for (auto& e : val) {
                need(e.is_string(), key, "an array of strings");
                auto s = e.get<std::string>();
                bool id = s.rfind("sha256:", 0) == 0 && s.size() == 71;
                auto at = s.find("@sha256:");
                bool digest = at != std::string::npos && at > 0 && s.size() - at == 72;
                if (!id && !digest)
                    throw Error("bad admin setting: an image must be named by digest", s,
                                "write \"sha256:<image id>\" or \"<repository>@sha256:<digest>\" "
                                "(a tag can be moved)");
                cfg.socket_image_allowlist.push_back(s);
            }
        } else if (key == "allowDerivedImages") {
            need(val.is_boolean(), key, "true or false");
            cfg.socket_allow_derived_images = val.get<bool>();
        } else if (key == "commandList") {
            need(val.is_object(), key,
                 "an object {\"type\": \"allow\"|\"deny\", \"commands\": [...]}");
            for (auto& [k, v] : val.items()) {
                if (k == "type") {
                    need(v.is_string() && (v == "allow" || v == "deny"), "commandList.type",
                         "\"allow\" or \"deny\"");
                    cfg.command_list.type =
                        v == "allow" ? CommandList::Type::allow : CommandList::Type::deny;
                } else if (k == "commands") {
                    need(v.is_array(), "commandList.commands", "an array of operation names");
                    for (auto& c : v) {
                        need(c.is_string(), "commandList.commands", "an array of strings");
                        cfg.command_list.commands.push_back(c.get<std::string>());
                    }
                } else {
                    throw Error("unknown admin setting", "commandList." + k,
                                "known keys: type, commands");
                }
            }
        } else {
            throw Error(
                "unknown admin setting", key,
                "known keys: isolation, locked, maxInspectBody, socketMountImages, allowDerivedImages, "
                "commandList");
        }
    }
    if (cfg.locked && !cfg.isolation)
        throw Error("bad admin settings: locked with isolation off", "locked",
                    "lock only an isolation that is on");
    return cfg;
}

// ---------------------------------------------------------------- operation names
// (for the guest agent: an admin's commandList may only name operations of kRoutes)

bool is_operation_pattern(std::string_view name) {
    if (name == "*")
        return true;
    const bool group = name.size() > 2 && name.ends_with(".*");
    const std::string_view stem = group ? name.substr(0, name.size() - 1) : name;  // "image."
    for (const auto& r : kRoutes) {
        const std::string_view op = r.operation;
        if (group ? op.starts_with(stem) : op == name)
            return true;
    }
    return false;
}

}  // namespace cordon::policy

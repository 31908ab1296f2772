#include "cordon/proxy/volume_options.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace cordon::policy {

namespace {

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<IpPrefix> parse_addr(std::string_view text) {
    std::string s(text);
    IpPrefix p;
    in_addr v4{};
    if (s.find(':') == std::string::npos) {
        // glibc's inet_pton takes only four dotted decimal parts without leading zeros,
        // like Go's ParseIP since 1.17.
        if (::inet_pton(AF_INET, s.c_str(), &v4) != 1)
            return std::nullopt;
        p.addr[10] = p.addr[11] = 0xff;
        std::memcpy(&p.addr[12], &v4, 4);
        p.bits = 128;
        return p;
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, s.c_str(), &v6) != 1)
        return std::nullopt;
    std::memcpy(p.addr.data(), &v6, 16);
    p.bits = 128;
    return p;
}

std::vector<std::string> split_commas(std::string_view s) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (true) {
        auto j = s.find(',', i);
        out.emplace_back(s.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
        if (j == std::string_view::npos)
            break;
        i = j + 1;
    }
    return out;
}

// One mount option "key" or "key=value".
struct Opt {
    std::string key;
    std::string value;
    bool has_value = false;
};

Opt split_opt(const std::string& o) {
    auto eq = o.find('=');
    if (eq == std::string::npos)
        return {o, {}, false};
    return {o.substr(0, eq), o.substr(eq + 1), true};
}

// Options that only restrict or describe the mount (mount(2) flags moby parses itself).
const std::set<std::string> kCommonFlags = {"ro",     "rw",       "nosuid",     "nodev",
                                            "noexec", "noatime",  "nodiratime", "relatime",
                                            "atime",  "diratime", "strictatime"};

// tmpfs data options (key=value) and flags.
const std::set<std::string> kTmpfsValues = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"};
const std::set<std::string> kTmpfsFlags = {"exec"};

// Bind volumes: flags besides bind/rbind. Propagation other than shared/rshared is fine.
const std::set<std::string> kBindFlags = {"bind",     "rbind", "private",
                                          "rprivate", "slave", "rslave"};

const std::set<std::string> kNfsValues = {
    "addr",      "vers",      "nfsvers",     "minorversion", "proto",    "port",
    "mountport", "mountvers", "mountproto",  "rsize",        "wsize",    "timeo",
    "retrans",   "actimeo",   "acregmin",    "acregmax",     "acdirmin", "acdirmax",
    "sec",       "nconnect",  "lookupcache", "local_lock"};
const std::set<std::string> kNfsFlags = {
    "soft",   "hard",     "softerr",    "intr",       "nointr",      "lock",
    "nolock", "ac",       "noac",       "cto",        "nocto",       "sync",
    "async",  "resvport", "noresvport", "sharecache", "nosharecache"};

const std::set<std::string> kCifsValues = {
    "addr",  "username", "user",  "password",  "pass",          "domain",    "dom", "workgroup",
    "vers",  "uid",      "gid",   "file_mode", "dir_mode",      "port",      "sec", "iocharset",
    "cache", "actimeo",  "rsize", "wsize",     "echo_interval", "prefixpath"};
const std::set<std::string> kCifsFlags = {
    "forceuid",    "forcegid",   "noforceuid", "noforcegid",   "soft",     "hard",
    "noserverino", "serverino",  "nounix",     "unix",         "nobrl",    "mfsymlinks",
    "nocase",      "seal",       "noperm",     "nostrictsync", "mapchars", "nomapchars",
    "mapposix",    "nomapposix", "sync",       "async"};

// Why an option is refused when it is not on a list (the dangerous ones named).
std::string option_reason(const std::string& fs, const std::string& key) {
    if (key == "credentials" || key == "cred")
        return "it makes the kernel read a VM file as root";
    if (key == "cruid" || key == "multiuser" || key == "upcall_target")
        return "it uses the credentials of VM users";
    if (key == "clientaddr" || key == "mountaddr" || key == "mounthost" || key == "ip" ||
        key == "srcaddr" || key == "unc")
        return "it names another address than addr=";
    if (key == "fsc")
        return "it writes a cache on the VM's disk";
    if (key == "shared" || key == "rshared")
        return "shared propagation lets container mounts reach the VM";
    if (key == "remount" || key == "move")
        return "it would change an existing VM mount";
    return "it is not on the " + fs + " option allowlist";
}

std::optional<Refusal> check_option_list(const std::string& fs,
                                         const std::vector<std::string>& list,
                                         const std::set<std::string>& values,
                                         const std::set<std::string>& flags,
                                         const std::string& where) {
    std::set<std::string> seen;
    for (const auto& raw : list) {
        if (raw.empty())
            return Refusal{"volume.option", "an empty mount option (\"o\" in " + where +
                                                ") is refused; remove the extra comma"};
        Opt o = split_opt(raw);
        bool ok = o.has_value ? values.count(o.key) > 0
                              : (flags.count(o.key) > 0 || kCommonFlags.count(o.key) > 0);
        if (!ok)
            return Refusal{
                o.key == "shared" || o.key == "rshared" ? "volume.propagation" : "volume.option",
                "the " + fs + " mount option \"" + raw + "\" (" + where +
                    ") is refused: " + option_reason(fs, o.key)};
        if (o.has_value && !seen.insert(o.key).second)
            return Refusal{"volume.option",
                           "the " + fs + " mount option \"" + o.key + "\" is given twice (" +
                               where + "); dockerd and the kernel would read different ones"};
    }
    return std::nullopt;
}

std::optional<Refusal> check_tmpfs_values(const std::vector<std::string>& list,
                                          const std::string& where) {
    for (const auto& raw : list) {
        Opt o = split_opt(raw);
        if (!o.has_value)
            continue;
        bool ok = !o.value.empty() && std::all_of(o.value.begin(), o.value.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   c == '%';
        });
        if (!ok)
            return Refusal{"volume.option", "the tmpfs option \"" + raw + "\" (" + where +
                                                ") needs a plain number or size"};
    }
    return std::nullopt;
}

std::optional<Refusal> check_net_fs(const std::string& type, const std::string& device,
                                    const std::vector<std::string>& list,
                                    const std::vector<std::string>& vm_subnets,
                                    const std::string& where) {
    bool cifs = type == "cifs";
    if (auto r = check_option_list(type, list, cifs ? kCifsValues : kNfsValues,
                                   cifs ? kCifsFlags : kNfsFlags, where))
        return r;
    std::string addr;
    bool has_addr = false;
    for (const auto& raw : list) {
        Opt o = split_opt(raw);
        if (o.key == "addr")
            addr = o.value, has_addr = true;
        if (o.key == "sec" && o.value.rfind("krb5", 0) == 0)
            return Refusal{"volume.option", "the " + type + " option sec=" + o.value + " (" +
                                                where + ") uses the VM's Kerberos credentials"};
        if (o.key == "proto" && o.value.find("rdma") != std::string::npos)
            return Refusal{"volume.option", "the " + type + " option proto=" + o.value + " (" +
                                                where + ") is not allowed (tcp or udp)"};
    }
    if (!has_addr)
        return Refusal{"volume.address", "a " + type + " volume (" + where +
                                             ") needs o=addr=<server IP>: without it the kernel "
                                             "or dockerd would resolve a name on the VM"};
    auto ip = parse_ip(addr);
    if (!ip)
        return Refusal{"volume.address",
                       "the " + type + " server addr=" + addr + " (" + where +
                           ") must be an IP address (dockerd resolves names inside the VM, "
                           "where they may lead back to the VM itself)"};
    if (auto hit = vm_overlap(*ip, vm_subnets))
        return Refusal{"volume.address", "the " + type + " server addr=" + addr + " (" + where +
                                             ") is one of the VM's own addresses (" + *hit +
                                             "): the VM's services must not be mounted"};
    if (cifs ? device.rfind("//", 0) != 0
             : (device.empty() || device[0] == '/' || device.find(":/") == std::string::npos))
        return Refusal{"volume.device", "the " + type + " device \"" + device + "\" (" + where +
                                            ") must be " +
                                            (cifs ? "//server/share" : "server:/export")};
    return std::nullopt;
}

}  // namespace

std::optional<IpPrefix> parse_ip(std::string_view text) {
    if (text.find('/') != std::string_view::npos || text.find('%') != std::string_view::npos)
        return std::nullopt;
    return parse_addr(text);
}

std::optional<IpPrefix> parse_cidr(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos)
        return std::nullopt;
    std::string_view len = text.substr(slash + 1);
    if (!all_digits(len) || len.size() > 3 || (len.size() > 1 && len[0] == '0'))
        return std::nullopt;
    auto p = parse_ip(text.substr(0, slash));
    if (!p)
        return std::nullopt;
    int bits = std::stoi(std::string(len));
    bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
    if (bits > (v4 ? 32 : 128))
        return std::nullopt;
    p->bits = v4 ? bits + 96 : bits;
    return p;
}

bool prefixes_overlap(const IpPrefix& a, const IpPrefix& b) {
    int bits = std::min(a.bits, b.bits);
    for (int i = 0; i < bits; ++i) {
        int byte = i / 8, shift = 7 - i % 8;
        if (((a.addr[static_cast<std::size_t>(byte)] >> shift) & 1) !=
            ((b.addr[static_cast<std::size_t>(byte)] >> shift) & 1))
            return false;
    }
    return true;
}

std::optional<std::string> vm_overlap(const IpPrefix& p,
                                      const std::vector<std::string>& vm_subnets) {
    // Always the VM's own, whatever the configuration: unspecified, loopback, link-local,
    // multicast.
    static const char* const kAlways[] = {"0.0.0.0/8",   "127.0.0.0/8", "169.254.0.0/16",
                                          "224.0.0.0/4", "::/128",      "::1/128",
                                          "fe80::/10",   "ff00::/8"};
    for (const char* s : kAlways)
        if (prefixes_overlap(p, *parse_cidr(s)))
            return std::string(s);
    for (const auto& s : vm_subnets) {
        auto q = parse_cidr(s);
        if (q && prefixes_overlap(p, *q))
            return s;
    }
    return std::nullopt;
}

std::vector<std::string> interface_subnets() {
    std::vector<std::string> out;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0)
        return out;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || !i->ifa_netmask || !i->ifa_name || (i->ifa_flags & IFF_LOOPBACK))
            continue;
        std::string_view name = i->ifa_name;
        if (name.rfind("docker", 0) == 0 || name.rfind("br-", 0) == 0 || name.rfind("veth", 0) == 0)
            continue;
        int family = i->ifa_addr->sa_family;
        if (family != AF_INET && family != AF_INET6)
            continue;
        unsigned char addr[16] = {}, mask[16] = {};
        std::size_t n = family == AF_INET ? 4 : 16;
        if (family == AF_INET) {
            std::memcpy(addr, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
            std::memcpy(mask, &reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr, 4);
        } else {
            std::memcpy(addr, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
            std::memcpy(mask, &reinterpret_cast<sockaddr_in6*>(i->ifa_netmask)->sin6_addr, 16);
        }
        int bits = 0;
        for (std::size_t b = 0; b < n; ++b) {
            addr[b] &= mask[b];
            for (int k = 7; k >= 0; --k) bits += (mask[b] >> k) & 1;
        }
        char text[INET6_ADDRSTRLEN] = {};
        if (!::inet_ntop(family, addr, text, sizeof text))
            continue;
        std::string cidr = std::string(text) + "/" + std::to_string(bits);
        if (std::find(out.begin(), out.end(), cidr) == out.end())
            out.push_back(cidr);
    }
    ::freeifaddrs(list);
    return out;
}

VolumeOptionsCheck check_local_volume_options(const VolumeOptions& opts,
                                              const std::vector<std::string>& vm_subnets,
                                              const std::string& where) {
    VolumeOptionsCheck out;
    auto refuse = [&](std::string rule, std::string msg) {
        out.refusal = Refusal{std::move(rule), std::move(msg)};
        return out;
    };
    std::string type, o, device;
    for (const auto& [k, v] : opts) {
        if (k == "type")
            type = v;
        else if (k == "o")
            o = v;
        else if (k == "device")
            device = v;
        else if (k == "size") {
            if (!all_digits(v.substr(0, v.find_first_not_of("0123456789"))))
                return refuse("volume.option", "the volume size \"" + v + "\" (" + where +
                                                   ") must be a size such as 10G");
        } else {
            return refuse("volume.option", "the local volume option \"" + k + "\" (" + where +
                                               ") is not one dockerd reads (type, o, device, "
                                               "size)");
        }
    }
    if (type.empty() && o.empty() && device.empty())
        return out;  // a plain named volume (perhaps with a size quota)
    auto list = o.empty() ? std::vector<std::string>{} : split_commas(o);
    bool bind = std::any_of(list.begin(), list.end(),
                            [](const std::string& x) { return x == "bind" || x == "rbind"; });
    if (bind) {
        if (!type.empty() && type != "none")
            return refuse("volume.type", "a bind volume (" + where +
                                             ") must have type=none, not \"" + type + "\"");
        if (auto r = check_option_list("bind", list, {}, kBindFlags, where)) {
            out.refusal = r;
            return out;
        }
        out.bind_device = device;
        return out;
    }
    if (type == "tmpfs") {
        if (device != "tmpfs")
            return refuse("volume.device", "a tmpfs volume (" + where +
                                               ") must have device=tmpfs, not \"" + device + "\"");
        if (auto r = check_option_list("tmpfs", list, kTmpfsValues, kTmpfsFlags, where)) {
            out.refusal = r;
            return out;
        }
        out.refusal = check_tmpfs_values(list, where);
        return out;
    }
    if (type == "nfs" || type == "nfs4" || type == "cifs") {
        out.refusal = check_net_fs(type, device, list, vm_subnets, where);
        return out;
    }
    return refuse("volume.type",
                  "the local volume type \"" + type + "\" (" + where +
                      ") is refused: dockerd would mount it as VM root; allowed are no options "
                      "(a named volume), type=tmpfs, a bind (o=bind) of an allowed folder, and "
                      "nfs, nfs4 or cifs with addr=<server IP>");
}

std::optional<Refusal> check_tmpfs_options(std::string_view options, const std::string& where) {
    if (options.empty())
        return std::nullopt;
    auto list = split_commas(options);
    // HostConfig.Tmpfs and TmpfsOptions become an OCI mount that runc parses: no bind or
    // propagation flags, only tmpfs's own options.
    if (auto r = check_option_list("tmpfs", list, kTmpfsValues, kTmpfsFlags, where)) {
        r->rule = r->rule == "volume.option" ? "tmpfs.option" : r->rule;
        return r;
    }
    if (auto r = check_tmpfs_values(list, where)) {
        r->rule = "tmpfs.option";
        return r;
    }
    return std::nullopt;
}

}  // namespace cordon::policy

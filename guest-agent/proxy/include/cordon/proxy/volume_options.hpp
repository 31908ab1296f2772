#pragma once
// What dockerd 20.10 mounts as VM root on a container's behalf, judged by allowlist:
// the `local` volume driver's options (volume create, inline Mounts DriverConfig, and the
// options stored with an existing volume), tmpfs mount options, and the IP addresses of
// the VM itself (network filesystems and network subnets must not reach them).
// See docs/POLICY.md ("Volumes") for the table and the reasons.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cordon::policy {

// A refusal: the rule name (docs/POLICY.md) and what was refused, for a person.
struct Refusal {
    std::string rule;
    std::string message;
};

// An IP prefix; IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d, bits + 96), so an
// IPv4 address written in the mapped IPv6 form is the same address.
struct IpPrefix {
    std::array<std::uint8_t, 16> addr{};
    int bits = 0;
};

// Parses "a.b.c.d/n" or "x::y/n" as Go's net.ParseCIDR reads it (no zone, no leading
// zeros in the length). nullopt when malformed.
std::optional<IpPrefix> parse_cidr(std::string_view text);
// Parses a single IP literal (Go's net.ParseIP) as a /32 or /128. nullopt when malformed.
std::optional<IpPrefix> parse_ip(std::string_view text);
// True when the two prefixes share at least one address.
bool prefixes_overlap(const IpPrefix& a, const IpPrefix& b);
// The first of `vm_subnets` (CIDRs; malformed entries are skipped) that overlaps `p`,
// or nullopt. Unspecified and multicast addresses count as the VM's own too.
std::optional<std::string> vm_overlap(const IpPrefix& p,
                                      const std::vector<std::string>& vm_subnets);

// The subnets of this machine's own interfaces (getifaddrs), as CIDRs with the host bits
// cleared, leaving out Docker's (docker*, br-*, veth*) and loopback (always refused).
// The guest agent adds them to PolicyConfig::vm_subnets at start.
std::vector<std::string> interface_subnets();

using VolumeOptions = std::vector<std::pair<std::string, std::string>>;

// The outcome of checking a local volume's options: a refusal, or (for a bind volume)
// the device path the caller must still check as a bind source.
struct VolumeOptionsCheck {
    std::optional<Refusal> refusal;
    std::optional<std::string> bind_device;
};

// The `local` driver's options as dockerd 20.10 reads them (volume/local/local_unix.go:
// keys type, o, device, size; mount(2) with device, type and o). Allowed: no options;
// tmpfs; a bind (o has bind/rbind) whose device the caller checks; nfs/nfs4/cifs with
// a literal addr= that is not the VM's own. `where` names the field for messages.
VolumeOptionsCheck check_local_volume_options(const VolumeOptions& opts,
                                              const std::vector<std::string>& vm_subnets,
                                              const std::string& where);

// HostConfig.Tmpfs option strings ("rw,noexec,size=64m"): every option on the allowlist.
std::optional<Refusal> check_tmpfs_options(std::string_view options, const std::string& where);

}  // namespace cordon::policy

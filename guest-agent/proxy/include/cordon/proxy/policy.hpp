#pragma once
// The Docker API policy of enhanced container isolation (see docs/POLICY.md for the
// rule table and the reason for each rule). The engine is pure: it decides on a request
// head, then (for endpoints whose JSON body matters) on the buffered body. The proxy
// (proxy.hpp) does the I/O around it.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cordon::policy {

// Who is talking: a client of the main socket (the user, through the host agent), or
// a container that an administrator allowed to hold the Docker socket.
enum class Role { host, container };
const char* role_name(Role r);

// Docker Desktop calls it commandList: which API operations socket-holding containers
// may perform. Operation names are listed in docs/POLICY.md ("container.create", ...);
// an entry ending in ".*" matches a whole group ("image.*"), "*" matches everything.
struct CommandList {
    enum class Type { deny, allow } type = Type::deny;
    std::vector<std::string> commands;
};

struct PolicyConfig {
    bool isolation = true;
    bool locked = false;  // set by the admin: nobody can turn isolation off
    std::size_t max_inspect_body = 1 << 20;
    // Images that may mount the Docker socket: "sha256:<image id>" or "<repo>@sha256:<digest>".
    std::vector<std::string> socket_image_allowlist;
    // Docker Desktop's allowDerivedImages: an image built FROM an allowlisted one (its
    // layers begin with all of that image's layers) may mount the socket too. The
    // allowlisted image must be present in the engine to be compared.
    bool socket_allow_derived_images = false;
    CommandList command_list;
    // The VM filesystem root against which bind sources are resolved ("/" in the VM,
    // a scratch tree in tests).
    std::string fs_root = "/";
    // Sockets that reach dockerd (resolved in the VM filesystem). The proxy adds its own
    // listen paths and the upstream path.
    std::vector<std::string> docker_sockets = {"/var/run/docker.sock", "/run/docker.sock",
                                               "/run/containerd/containerd.sock"};
    // Directories a container may not bind (nor any parent of them, nor anything inside).
    std::vector<std::string> sensitive_paths = {"/proc",
                                                "/sys",
                                                "/dev",
                                                "/etc",
                                                "/run",
                                                "/var/run",
                                                "/var/lib/docker",
                                                "/var/lib/containerd",
                                                "/var/lib/cordon",
                                                "/boot",
                                                "/lib/modules",
                                                "/usr/lib/modules",
                                                "/root",
                                                "/run/cordon"};
    // Shared host folders (their VM paths). With binds_only_from_shares and isolation on,
    // a bind source must resolve inside one of them (named volumes are not binds);
    // the sensitive-path and socket rules above still apply first.
    bool binds_only_from_shares = false;
    std::vector<std::string> shared_folders;
    // The socket an allowlisted container gets bound in place of whatever Docker socket
    // path it asked for (the proxy's container-facing socket).
    std::string container_socket_path = "/run/cordon/docker.sock";
    // Highest API version accepted under isolation (what the guest's dockerd speaks).
    int max_api_minor = 41;
    int min_api_minor = 24;  // older versions change semantics (HostConfig on start)
    // The VM's own subnets (CIDRs, IPv4 and IPv6): network filesystems (nfs/cifs addr=)
    // and user-defined networks (IPAM Subnet, IPRange, Gateway, AuxiliaryAddresses) may
    // not reach them. Loopback, link-local, unspecified and multicast are always
    // refused. The defaults are QEMU user-mode networking's; the guest agent adds the
    // addresses of its real interfaces (vm_subnets_from_interfaces).
    std::vector<std::string> vm_subnets = {"10.0.2.0/24", "fec0::/64"};
};

// Reads the admin settings JSON (handed to the guest at start). Throws cordon::Error
// naming the bad field. Unknown keys are errors (a typo must not silently loosen).
PolicyConfig load_admin_config(std::string_view json, PolicyConfig base = {});

struct ImageInfo {
    bool found = false;
    std::string id;                         // "sha256:..."
    std::vector<std::string> repo_digests;  // "name@sha256:..."
    std::vector<std::string> layers;        // RootFS.Layers: the diff IDs, base first
};

struct NetworkInfo {
    bool found = false;
    std::string id;
    std::string name;
    std::string driver;
};

// An existing volume (GET /volumes/{name}): its driver and the options it was created
// with (perhaps while isolation was off): dockerd mounts with them at every use.
struct VolumeInfo {
    bool found = false;
    std::string driver;
    std::vector<std::pair<std::string, std::string>> options;
};

// An existing container's mounts (GET /containers/{id}/json, "Mounts"): what dockerd
// mounts itself for `docker cp`.
struct ContainerMount {
    std::string type;    // "bind", "volume", "tmpfs", "npipe"
    std::string source;  // binds: the path dockerd resolves
    std::string name;    // volumes
    std::string driver;  // volumes
};
struct ContainerInfo {
    bool found = false;
    std::vector<ContainerMount> mounts;
};

// What the proxy asked dockerd on the policy's behalf (GET /images/{name}/json,
// GET /networks/{name}, GET /volumes/{name}, GET /containers/{id}/json), keyed by the
// name the request used.
struct Lookups {
    std::map<std::string, ImageInfo> images;
    std::map<std::string, NetworkInfo> networks;
    std::map<std::string, VolumeInfo> volumes;
    std::map<std::string, ContainerInfo> containers;
};

struct LookupRequest {
    enum class Kind { image, network, volume, container } kind;
    std::string name;
};

// none: dockerd reads no body (one sent is streamed through); stream: forwarded as it
// arrives; inspect: buffered and checked; discard: a route that may become a tunnel and
// whose body dockerd never reads (attach, /session): read (up to max_inspect_body) and
// dropped, so the request is complete before dockerd answers and the answer may be a
// tunnel.
enum class BodyMode { none, stream, inspect, discard };

enum class Verdict {
    allow,        // forward (with rewritten_body if set)
    deny,         // answer 403
    inspect,      // buffer the body (up to max_inspect_body) and call check_body
    need_lookup,  // ask dockerd about images/networks, then call check_body again
    not_found,    // answer 404 "No such image" (the docker CLI then pulls and retries)
};

struct Route {
    std::string operation;  // "container.create", ... ("unknown" when no route matched)
    std::string path;       // decoded path with the /vX.Y prefix removed
    std::string api_version;
    std::multimap<std::string, std::string> query;
    BodyMode body = BodyMode::stream;
    bool upgrade = false;  // may turn into a tunnel after dockerd answers 101
    // dockerd may also hijack without an upgrade: to a request that carried no Upgrade
    // header it answers `200 OK` + `Content-Type: application/vnd.docker.raw-stream`
    // and no framing, then raw bytes both ways (POST attach, exec start).
    bool hijack = false;
    std::vector<std::string> params;
};

struct Decision {
    Verdict verdict = Verdict::deny;
    std::string rule;     // e.g. "privileged", "bind-mount.sensitive"
    std::string message;  // what was refused, for a person
    Route route;
    std::optional<std::string> rewritten_body;
    std::vector<LookupRequest> lookups;  // for need_lookup
    std::string image;                   // for not_found
};

struct RequestInfo {
    std::string method;
    std::string target;  // request-target as sent
    std::string content_type;
    Role role = Role::host;
};

class Policy {
  public:
    explicit Policy(PolicyConfig config);

    const PolicyConfig& config() const { return cfg_; }
    // Throws cordon::Error when the policy is locked and `on` is false.
    void set_isolation(bool on);

    // Decides on the request head alone.
    // `lookups`: what the proxy looked up after a head decision that said need_lookup
    // (docker cp asks about the container's mounts, then its volumes).
    Decision check_head(const RequestInfo& req, const Lookups* lookups = nullptr) const;
    // Decides on a buffered body for a head decision that said `inspect` (or a previous
    // check_body that said `need_lookup`; pass what was looked up then).
    Decision check_body(const RequestInfo& req, const Decision& head, std::string_view body,
                        const Lookups* lookups = nullptr) const;

    // Bind-source classification, exposed for tests.
    enum class PathClass { ok, docker_socket, sensitive, outside_shares };
    PathClass classify_bind_source(const std::string& path, std::string& resolved,
                                   std::string& why) const;

    // Resolves `path` (absolute) against fs_root: dot segments, symlinks (absolute ones
    // relative to fs_root), missing tails kept lexically. Exposed for tests.
    std::string resolve(const std::string& path) const;

    bool command_allowed(Role role, const std::string& operation) const;
    bool image_allowed_for_socket(const ImageInfo& image) const;
    // With socket_allow_derived_images: `image` is built FROM `base` (an allowlisted image
    // as looked up): base has layers, all of them are image's first layers, and base is
    // itself on the allowlist by digest.
    bool image_derived_from(const ImageInfo& image, const ImageInfo& base) const;

  private:
    PolicyConfig cfg_;
};

// Decodes a request-target path like Go's net/url (percent-decoding), refusing what
// dockerd would redirect or reject: dot segments, empty segments, NUL, bad escapes.
// Returns false and sets `why` on refusal.
bool normalize_path(std::string_view raw, std::string& out, std::string& why);
// Parses a query like Go's url.ParseQuery; false (with why) on ';' or a bad escape.
bool parse_query(std::string_view raw, std::multimap<std::string, std::string>& out,
                 std::string& why);

// True for an operation name of the route table ("image.push"), a group with routes
// ("image.*") or "*": what an admin's commandList may name.
bool is_operation_pattern(std::string_view name);

// The Docker-style JSON error body of a refusal.
std::string denial_body(const Decision& d);

}  // namespace cordon::policy

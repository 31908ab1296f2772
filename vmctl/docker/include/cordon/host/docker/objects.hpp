#pragma once
// What the Docker Engine API reports about containers, images and volumes, read
// tolerantly from its JSON (a missing field reads as empty or unknown). Every
// parse_* throws cordon::Error for a body that is not the expected shape at all
// (not a list, an entry that is not an object or has no id).
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace cordon::host::docker {

// One published port: PrivatePort inside, PublicPort on the host (0 when unpublished).
struct Port {
    std::string ip;  // host address it is bound to ("0.0.0.0", "::", empty)
    int private_port = 0;
    int public_port = 0;
    std::string type;  // "tcp", "udp", "sctp"
};

struct Container {
    std::string id;            // full id
    std::string name;          // without the leading '/'
    std::string image;         // as the engine reports it ("busybox:latest" or an id)
    std::string image_id;      // "sha256:..." (empty when the engine did not say)
    std::string state;         // "running", "exited", "created", ...
    std::string status;        // "Up 3 minutes", "Exited (0) 2 seconds ago"
    std::int64_t created = 0;  // unix seconds
    std::vector<Port> ports;
    std::map<std::string, std::string> labels;
    std::vector<std::string> volumes;  // names of the named volumes it mounts

    // The Compose project it belongs to (label com.docker.compose.project), or "".
    std::string compose_project() const;
};

struct Image {
    std::string id;                 // "sha256:..."
    std::vector<std::string> tags;  // "nginx:latest"; empty for a dangling image
    std::int64_t size = 0;          // bytes
    std::int64_t created = 0;       // unix seconds
};

struct Volume {
    std::string name;
    std::string driver;
    std::string mountpoint;
    std::string created_at;  // RFC 3339 as the engine wrote it
    std::map<std::string, std::string> labels;
};

// One sample of a container's resource use (GET /containers/{id}/stats?stream=false).
struct ContainerStats {
    std::optional<double> cpu_percent;  // of one CPU × online CPUs, as `docker stats` shows
    std::optional<std::uint64_t> memory_bytes;  // usage minus the page cache
    std::optional<std::uint64_t> memory_limit;
};

std::vector<Container> parse_containers(const nlohmann::json& list);
std::vector<Image> parse_images(const nlohmann::json& list);
// The /volumes answer ({"Volumes": [...]} ; null Volumes is an empty list).
std::vector<Volume> parse_volumes(const nlohmann::json& answer);
// Never throws: what the sample does not carry stays unknown.
ContainerStats parse_stats(const nlohmann::json& sample);

// "nginx:latest" from "docker.io/library/nginx:latest"-like names is left as it is;
// a short id ("3f2a1b0c9d8e") for a "sha256:..." id.
std::string short_id(const std::string& id);

}  // namespace cordon::host::docker

#pragma once
// Published ports: what dockerd says (container list, inspect, events) turned into the
// set of host ports the host agent should forward. Pure logic, no I/O (unit-tested with
// samples of Docker Engine API 1.41 JSON).
//
// dockerd runs with "iptables": false, so each published port is served inside the VM by
// docker-proxy, listening on HostIp:HostPort. A forward therefore targets that address
// in the VM: 127.0.0.1 for a 0.0.0.0 binding, ::1 for a :: binding, the address itself
// otherwise.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace cordon::ports {

using json = nlohmann::json;

// One binding as dockerd reports it (one per HostIp: 0.0.0.0 and :: give two).
struct Binding {
    std::string proto;  // "tcp", "udp" or "sctp"
    std::string host_ip;
    std::uint16_t host_port = 0;
    std::uint16_t container_port = 0;
};

// One published host port: what the host agent listens on. Bindings of one container
// that share (proto, host_port) are collapsed into one forward.
struct Forward {
    std::string proto;
    std::uint16_t host_port = 0;
    std::string target_ip;  // where the guest connects (see above)
    std::uint16_t container_port = 0;
    std::string container_id;
    std::string container_name;

    bool operator==(const Forward&) const = default;
};

json to_json(const Forward& f);
json to_json(const std::vector<Forward>& fs);

// The address to connect to in the VM for a binding's HostIp.
std::string target_for(const std::string& host_ip);

// GET /containers/{id}/json: the bindings in NetworkSettings.Ports when State.Running,
// else nothing. Malformed entries are skipped (dockerd's own output; never throws).
std::vector<Binding> bindings_from_inspect(const json& inspect);
// GET /containers/json (running containers): id -> (name, bindings) from each "Ports".
struct ListedContainer {
    std::string id;
    std::string name;
    std::vector<Binding> bindings;
};
std::vector<ListedContainer> containers_from_list(const json& list);

// A container event from GET /events.
struct EngineEvent {
    enum class Kind {
        started,  // "start": its ports appear (inspect it)
        check,    // "kill": may or may not stop it (inspect it)
        stopped,  // "die", "stop", "destroy": its ports are gone
        other,
    };
    Kind kind = Kind::other;
    std::string action;
    std::string id;
    std::string name;
};
// Returns nullopt for events that are not about containers or lack an id.
std::optional<EngineEvent> parse_event(const json& event);

// What changed between two sets of forwards.
struct Diff {
    std::vector<Forward> added;
    std::vector<Forward> removed;
    bool empty() const { return added.empty() && removed.empty(); }
};
Diff diff(const std::vector<Forward>& before, const std::vector<Forward>& after);

// The current set, per container. Every change returns whether the forwards changed.
class PortTable {
  public:
    bool set_container(const std::string& id, const std::string& name,
                       const std::vector<Binding>& bindings);
    bool remove_container(const std::string& id);
    // A full resync (startup, dockerd restarted): replaces everything.
    bool replace_all(const std::vector<ListedContainer>& containers);
    bool clear();

    // Sorted by (proto, host_port). When two containers claim one (proto, host_port) on
    // different VM addresses, the loopback/wildcard binding wins.
    const std::vector<Forward>& forwards() const { return forwards_; }
    std::optional<Forward> find(const std::string& proto, std::uint16_t host_port) const;
    std::size_t containers() const { return by_container_.size(); }

  private:
    bool rebuild();
    struct Entry {
        std::string name;
        std::vector<Binding> bindings;
    };
    std::map<std::string, Entry> by_container_;
    std::vector<Forward> forwards_;
};

// Parses a service name "port:tcp:8080" into (proto, port); nullopt when malformed.
std::optional<std::pair<std::string, std::uint16_t>> parse_port_service(const std::string& name);
std::string port_service_name(const std::string& proto, std::uint16_t port);

}  // namespace cordon::ports

// The host library's reader of the host agent's ports.json (what vmctl and the GUI show).
#include <gtest/gtest.h>

#include "cordon/host/host_error.hpp"
#include "cordon/host/ports.hpp"

using namespace cordon::host;
using nlohmann::json;

namespace {
// The shape cordon-hostagent writes (PortForwarder::state()).
const char* kState = R"js({
  "version": 1, "pid": 42, "updated": 1764100000, "guest": "connected", "engine": "watching",
  "snapshots": 3,
  "ports": [
    {"proto": "tcp", "host_port": 8080, "container_port": 80, "container_name": "web",
     "container_id": "aaaa1111", "target": "127.0.0.1", "state": "listening",
     "connections": 2, "failed_connections": 0,
     "listeners": [{"address": "127.0.0.1", "state": "listening"},
                   {"address": "::1", "state": "listening"}]},
    {"proto": "tcp", "host_port": 8081, "container_port": 80, "container_name": "busy",
     "container_id": "bbbb2222", "target": "127.0.0.1", "state": "failed",
     "error": "host port 8081 is already in use on 127.0.0.1 (another program listens there)",
     "hint": "stop that program, or publish another host port",
     "listeners": [{"address": "127.0.0.1", "state": "failed", "error": "in use"},
                   {"address": "::1", "state": "unavailable", "error": "no IPv6"}]},
    {"proto": "udp", "host_port": 5353, "container_port": 53, "container_name": "dns",
     "container_id": "cccc3333", "target": "127.0.0.1", "state": "not_forwarded",
     "error": "only TCP ports are forwarded to the host", "listeners": []}
  ]})js";
}  // namespace

TEST(PortsState, ParsesWhatTheHostAgentWrites) {
    auto r = parse_ports_state(json::parse(kState), "ports.json");
    EXPECT_TRUE(r.known);
    EXPECT_EQ(r.guest, "connected");
    EXPECT_EQ(r.engine, "watching");
    ASSERT_EQ(r.ports.size(), 3u);
    EXPECT_TRUE(r.ports[0].ok());
    EXPECT_EQ(describe(r.ports[0]), "127.0.0.1:8080, [::1]:8080 -> web:80/tcp");
    EXPECT_FALSE(r.ports[1].ok());
    EXPECT_NE(r.ports[1].error.find("already in use"), std::string::npos);
    EXPECT_EQ(describe(r.ports[1]), "tcp 8081 -> busy:80/tcp");
    EXPECT_EQ(r.problems(), 2u);
    auto j = to_json(r);
    EXPECT_EQ(j["problems"], 2);
    EXPECT_EQ(j["ports"][1]["hint"], "stop that program, or publish another host port");
    EXPECT_EQ(j["ports"][0]["listeners"][1]["address"], "::1");
}

TEST(PortsState, RefusesAnotherShapeWithTheFileNamed) {
    for (const char* bad :
         {R"([])", R"({"guest":"connected"})", R"({"ports":{}})", R"({"ports":[{"proto":"tcp"}]})",
          R"({"ports":[{"proto":"tcp","host_port":70000}]})"}) {
        try {
            parse_ports_state(json::parse(bad), "/run/cordon/x/ports.json");
            ADD_FAILURE() << "accepted " << bad;
        } catch (const HostError& e) {
            EXPECT_EQ(e.subject(), "/run/cordon/x/ports.json");
            EXPECT_FALSE(e.hint().empty());
        }
    }
}

TEST(PortsState, NoHostAgentMeansNothingKnown) {
    VmPaths p;
    p.runtime_dir = "/nonexistent/cordon-test";
    p.hostagent_pid = "/nonexistent/cordon-test/hostagent.pid";
    auto r = read_ports(p);
    EXPECT_FALSE(r.hostagent_running);
    EXPECT_FALSE(r.known);
    EXPECT_EQ(ports_state_path(p), "/nonexistent/cordon-test/ports.json");
}

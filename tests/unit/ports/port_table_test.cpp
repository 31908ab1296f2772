// The event -> published-port-set logic of the guest agent, on JSON in the shape dockerd
// 20.10 (API 1.41) answers: GET /containers/json, GET /containers/{id}/json, GET /events.
#include "cordon/ports/port_table.hpp"

#include <gtest/gtest.h>

using namespace cordon::ports;

namespace {

// GET /containers/json with `docker run -d -p 8080:80 --name web` and an unpublished
// EXPOSE 443, plus a container publishing nothing.
const char* kList = R"([
  {"Id":"aaaa1111","Names":["/web"],"Image":"cordon-test/busybox:1","ImageID":"sha256:1",
   "Command":"httpd -f -p 80","Created":1764100000,
   "Ports":[{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},
            {"IP":"::","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},
            {"PrivatePort":443,"Type":"tcp"}],
   "Labels":{},"State":"running","Status":"Up 2 seconds","HostConfig":{"NetworkMode":"default"}},
  {"Id":"bbbb2222","Names":["/quiet"],"Image":"x","Ports":[],"State":"running"},
  {"Id":"cccc3333","Names":["/dns"],"Image":"x","State":"running",
   "Ports":[{"IP":"127.0.0.1","PrivatePort":53,"PublicPort":5353,"Type":"udp"}]}
])";

// GET /containers/aaaa1111/json (abridged to the fields dockerd always sends).
const char* kInspectRunning = R"({
  "Id":"aaaa1111","Created":"2026-11-26T01:00:00.000000000Z","Path":"httpd","Args":["-f","-p","80"],
  "State":{"Status":"running","Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,
           "Dead":false,"Pid":1234,"ExitCode":0,"Error":"","StartedAt":"2026-11-26T01:00:01Z",
           "FinishedAt":"0001-01-01T00:00:00Z"},
  "Name":"/web",
  "HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}},
  "NetworkSettings":{"Bridge":"","SandboxID":"s","Ports":{
      "443/tcp":null,
      "80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}]}}
})";

const char* kInspectStopped = R"({
  "Id":"aaaa1111","Name":"/web",
  "State":{"Status":"exited","Running":false,"ExitCode":137},
  "NetworkSettings":{"Ports":{}}
})";

const char* kEventStart = R"({"status":"start","id":"aaaa1111","from":"cordon-test/busybox:1",
  "Type":"container","Action":"start","Actor":{"ID":"aaaa1111","Attributes":{
  "image":"cordon-test/busybox:1","name":"web"}},"scope":"local","time":1764100001,
  "timeNano":1764100001000000000})";
const char* kEventDie = R"({"status":"die","id":"aaaa1111","from":"cordon-test/busybox:1",
  "Type":"container","Action":"die","Actor":{"ID":"aaaa1111","Attributes":{"exitCode":"137",
  "image":"cordon-test/busybox:1","name":"web"}},"scope":"local","time":1764100009,
  "timeNano":1764100009000000000})";

json parse(const char* s) {
    return json::parse(s);
}

}  // namespace

TEST(PortBindings, ListGivesPublishedPortsOnly) {
    auto cs = containers_from_list(parse(kList));
    ASSERT_EQ(cs.size(), 3u);
    EXPECT_EQ(cs[0].id, "aaaa1111");
    EXPECT_EQ(cs[0].name, "web");
    ASSERT_EQ(cs[0].bindings.size(), 2u);  // 443 is exposed, not published
    EXPECT_EQ(cs[0].bindings[0].host_port, 8080);
    EXPECT_EQ(cs[0].bindings[0].container_port, 80);
    EXPECT_EQ(cs[0].bindings[1].host_ip, "::");
    EXPECT_TRUE(cs[1].bindings.empty());
    EXPECT_EQ(cs[2].bindings.at(0).proto, "udp");
}

TEST(PortBindings, InspectOfARunningContainer) {
    auto bs = bindings_from_inspect(parse(kInspectRunning));
    ASSERT_EQ(bs.size(), 2u);
    for (const auto& b : bs) {
        EXPECT_EQ(b.proto, "tcp");
        EXPECT_EQ(b.host_port, 8080);
        EXPECT_EQ(b.container_port, 80);
    }
}

TEST(PortBindings, InspectOfAStoppedContainerGivesNothing) {
    EXPECT_TRUE(bindings_from_inspect(parse(kInspectStopped)).empty());
}

TEST(PortBindings, MalformedEntriesAreSkippedNotThrown) {
    auto j = parse(R"({"State":{"Running":true},"NetworkSettings":{"Ports":{
        "80/tcp":[{"HostIp":"0.0.0.0","HostPort":"99999"}],
        "x/tcp":[{"HostPort":"81"}],
        "82/quic":[{"HostPort":"82"}],
        "83/tcp":"nonsense",
        "84/tcp":[{"HostIp":"0.0.0.0","HostPort":"8084"}, 7, {"HostPort":""}]}}})");
    auto bs = bindings_from_inspect(j);
    ASSERT_EQ(bs.size(), 1u);
    EXPECT_EQ(bs[0].host_port, 8084);
    EXPECT_TRUE(bindings_from_inspect(parse("[]")).empty());
    EXPECT_TRUE(containers_from_list(parse(R"({"not":"a list"})")).empty());
    EXPECT_TRUE(containers_from_list(parse(R"([1, {"Names":["/x"]}, {"Id":"z","Ports":[
        {"PublicPort":"no","PrivatePort":80}]}])"))
                    .at(0)
                    .bindings.empty());
}

TEST(PortEvents, ParsesContainerEvents) {
    auto s = parse_event(parse(kEventStart));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->kind, EngineEvent::Kind::started);
    EXPECT_EQ(s->id, "aaaa1111");
    EXPECT_EQ(s->name, "web");
    auto d = parse_event(parse(kEventDie));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->kind, EngineEvent::Kind::stopped);
    auto kill = parse_event(parse(R"({"Type":"container","Action":"kill","Actor":{"ID":"a1",
        "Attributes":{"signal":"1"}}})"));
    ASSERT_TRUE(kill);
    EXPECT_EQ(kill->kind, EngineEvent::Kind::check);  // SIGHUP does not stop it: inspect
    auto exec = parse_event(parse(R"({"Type":"container","Action":"exec_start: sh","Actor":{
        "ID":"a1"}})"));
    ASSERT_TRUE(exec);
    EXPECT_EQ(exec->kind, EngineEvent::Kind::other);
    EXPECT_FALSE(parse_event(parse(R"({"Type":"network","Action":"connect","Actor":{"ID":"n"}})")));
    EXPECT_FALSE(parse_event(parse(R"({"Type":"container","Action":"start"})")));  // no id
    // The pre-1.22 fields still work.
    auto old = parse_event(parse(R"({"status":"die","id":"b2"})"));
    ASSERT_TRUE(old);
    EXPECT_EQ(old->kind, EngineEvent::Kind::stopped);
}

TEST(PortTable, FullSyncThenStartAndDieEvents) {
    PortTable t;
    EXPECT_TRUE(t.replace_all(containers_from_list(parse(kList))));
    ASSERT_EQ(t.forwards().size(), 2u);  // tcp 8080 (v4 + v6 collapsed), udp 5353
    EXPECT_EQ(t.forwards()[0].proto, "tcp");
    EXPECT_EQ(t.forwards()[0].host_port, 8080);
    EXPECT_EQ(t.forwards()[0].target_ip, "127.0.0.1");  // 0.0.0.0 wins over ::
    EXPECT_EQ(t.forwards()[0].container_name, "web");
    EXPECT_EQ(t.forwards()[1].proto, "udp");
    EXPECT_EQ(t.forwards()[1].target_ip, "127.0.0.1");
    EXPECT_FALSE(t.replace_all(containers_from_list(parse(kList))));  // nothing changed

    // die -> gone; start + inspect -> back.
    const auto before = t.forwards();
    EXPECT_TRUE(t.remove_container(parse_event(parse(kEventDie))->id));
    ASSERT_EQ(t.forwards().size(), 1u);
    auto d = diff(before, t.forwards());
    ASSERT_EQ(d.removed.size(), 1u);
    EXPECT_EQ(d.removed[0].host_port, 8080);
    EXPECT_TRUE(d.added.empty());
    EXPECT_FALSE(t.remove_container("aaaa1111"));  // die then stop: no second change

    const auto mid = t.forwards();
    auto ev = parse_event(parse(kEventStart));
    EXPECT_TRUE(t.set_container(ev->id, "/web", bindings_from_inspect(parse(kInspectRunning))));
    auto d2 = diff(mid, t.forwards());
    ASSERT_EQ(d2.added.size(), 1u);
    EXPECT_EQ(d2.added[0].container_name, "web");  // the leading slash is dropped
    EXPECT_TRUE(d2.removed.empty());
    ASSERT_TRUE(t.find("tcp", 8080));
    EXPECT_FALSE(t.find("tcp", 8081));
    // An inspect that finds it stopped removes it.
    EXPECT_TRUE(t.set_container("aaaa1111", "/web", bindings_from_inspect(parse(kInspectStopped))));
    EXPECT_FALSE(t.find("tcp", 8080));
}

TEST(PortTable, AddressRulesAndConflicts) {
    EXPECT_EQ(target_for(""), "127.0.0.1");
    EXPECT_EQ(target_for("0.0.0.0"), "127.0.0.1");
    EXPECT_EQ(target_for("::"), "::1");
    EXPECT_EQ(target_for("10.0.2.15"), "10.0.2.15");
    PortTable t;
    // Only v6 published: the forward targets ::1.
    t.set_container("c1", "/v6", {{"tcp", "::", 9000, 90}});
    EXPECT_EQ(t.find("tcp", 9000)->target_ip, "::1");
    // Two containers on one host port, different VM addresses: loopback/wildcard wins,
    // whatever the order.
    t.set_container("c2", "/lan", {{"tcp", "10.0.2.15", 9001, 91}});
    t.set_container("c3", "/lo", {{"tcp", "127.0.0.1", 9001, 92}});
    EXPECT_EQ(t.find("tcp", 9001)->container_name, "lo");
    EXPECT_EQ(t.find("tcp", 9001)->target_ip, "127.0.0.1");
    t.remove_container("c3");
    EXPECT_EQ(t.find("tcp", 9001)->container_name, "lan");
    EXPECT_EQ(t.find("tcp", 9001)->target_ip, "10.0.2.15");
    EXPECT_TRUE(t.clear());
    EXPECT_TRUE(t.forwards().empty());
    EXPECT_FALSE(t.clear());
}

TEST(PortTable, JsonShapeForTheHost) {
    PortTable t;
    t.replace_all(containers_from_list(parse(kList)));
    auto j = to_json(t.forwards());
    ASSERT_TRUE(j.is_array());
    EXPECT_EQ(j[0]["proto"], "tcp");
    EXPECT_EQ(j[0]["host_port"], 8080);
    EXPECT_EQ(j[0]["container_port"], 80);
    EXPECT_EQ(j[0]["target"], "127.0.0.1");
    EXPECT_EQ(j[0]["container_id"], "aaaa1111");
    EXPECT_EQ(j[0]["container_name"], "web");
}

TEST(PortService, ServiceNames) {
    EXPECT_EQ(port_service_name("tcp", 8080), "port:tcp:8080");
    auto p = parse_port_service("port:tcp:8080");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->first, "tcp");
    EXPECT_EQ(p->second, 8080);
    for (const char* bad : {"port:tcp:0", "port:tcp:65536", "port:tcp:", "port:icmp:80",
                            "port:tcp:80x", "port:tcp", "docker", "port::80", "port:tcp:-1"}) {
        EXPECT_FALSE(parse_port_service(bad)) << bad;
    }
}

// Policy pieces beyond the table: body rewriting for allowlisted socket mounts, path
// resolution, admin settings, the isolation lock, lookups, the audit log.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cordon/error.hpp"
#include "cordon/proxy/audit.hpp"
#include "cordon/proxy/gojson.hpp"
#include "cordon/proxy/volume_options.hpp"
#include "fs_fixture.hpp"

namespace {

using namespace cordon::policy;

class PolicyMisc : public ::testing::Test {
  protected:
    void SetUp() override { root_ = cordon::testing::make_vm_tree(); }
    void TearDown() override { std::filesystem::remove_all(root_); }
    std::string root_;
};

TEST_F(PolicyMisc, AllowlistedSocketMountIsRewrittenToTheLockedDownSocketAndPinned) {
    auto cfg = cordon::testing::test_config(root_);
    cfg.container_socket_path = "/run/cordon/docker-containers.sock";
    Policy p(cfg);
    RequestInfo req{"POST", "/v1.41/containers/create", "application/json", Role::host};
    std::string body =
        R"({"Image":"allowed:latest","HostConfig":{"Binds":["/run/cordon/dockerd.sock:/var/run/docker.sock:ro"],)"
        R"("Mounts":[{"Type":"bind","Source":"/tmp/link-sock","Target":"/s2"}]}})";
    auto head = p.check_head(req);
    ASSERT_EQ(head.verdict, Verdict::inspect);
    auto first = p.check_body(req, head, body, nullptr);
    ASSERT_EQ(first.verdict, Verdict::need_lookup);
    ASSERT_EQ(first.lookups.size(), 1u);
    EXPECT_EQ(first.lookups[0].name, "allowed:latest");
    Lookups l;
    l.images["allowed:latest"] = {true, "sha256:" + std::string(64, 'a'), {}, {}};
    auto d = p.check_body(req, head, body, &l);
    ASSERT_EQ(d.verdict, Verdict::allow) << d.message;
    ASSERT_TRUE(d.rewritten_body);
    auto v = cordon::gojson::parse(*d.rewritten_body);
    auto hc = cordon::gojson::lookup(v, "HostConfig")[0];
    EXPECT_EQ(cordon::gojson::lookup(*hc, "Binds")[0]->items[0].text,
              "/run/cordon/docker-containers.sock:/var/run/docker.sock:ro");
    EXPECT_EQ(
        cordon::gojson::lookup(*cordon::gojson::lookup(*hc, "Mounts")[0]->items.data(), "Source")[0]
            ->text,
        "/run/cordon/docker-containers.sock");
    EXPECT_EQ(cordon::gojson::lookup(v, "Image")[0]->text, "sha256:" + std::string(64, 'a'));
}

// Docker Desktop's allowDerivedImages: an image built FROM an allowlisted one.
TEST_F(PolicyMisc, DerivedImagesMayMountTheSocketOnlyWhenTheAdminAllowsIt) {
    const std::string allowed_id = "sha256:" + std::string(64, 'a');
    const std::string compose = "docker/compose@sha256:" + std::string(64, 'e');
    const ImageInfo base{true, allowed_id, {}, {"sha256:l1", "sha256:l2"}};
    const ImageInfo derived{true, "sha256:" + std::string(64, 'd'), {},
                            {"sha256:l1", "sha256:l2", "sha256:l3"}};
    const ImageInfo unrelated{true, "sha256:" + std::string(64, 'f'), {},
                              {"sha256:l1", "sha256:x2", "sha256:l3"}};
    RequestInfo req{"POST", "/v1.41/containers/create", "application/json", Role::host};
    const std::string body =
        R"({"Image":"mytool:dev","HostConfig":{"Binds":["/var/run/docker.sock:/var/run/docker.sock"]}})";
    auto decide = [&](const Policy& p, const ImageInfo& candidate, bool with_allowed) {
        Lookups l;
        l.images["mytool:dev"] = candidate;
        if (with_allowed) {
            l.images[allowed_id] = base;
            l.images[compose] = ImageInfo{};  // not pulled: not found
        }
        return p.check_body(req, p.check_head(req), body, &l);
    };

    auto cfg = cordon::testing::test_config(root_);
    {
        // Off (the default): only exact digests, and nothing more is looked up.
        Policy p(cfg);
        auto d = decide(p, derived, false);
        EXPECT_EQ(d.verdict, Verdict::deny);
        EXPECT_EQ(d.rule, "bind-mount.docker-socket");
        EXPECT_EQ(d.message.find("built FROM"), std::string::npos) << d.message;
    }
    cfg.socket_allow_derived_images = true;
    Policy p(cfg);
    // One round of lookups: the image and the allowlisted images, all at once (the proxy
    // answers one round; a second would end in "did not settle").
    auto none = p.check_body(req, p.check_head(req), body, nullptr);
    ASSERT_EQ(none.verdict, Verdict::need_lookup) << none.message;
    ASSERT_EQ(none.lookups.size(), 3u);
    EXPECT_EQ(none.lookups[0].name, "mytool:dev");
    auto first = decide(p, derived, false);
    ASSERT_EQ(first.verdict, Verdict::need_lookup) << first.message;
    ASSERT_EQ(first.lookups.size(), 2u);
    EXPECT_EQ(first.lookups[0].name, allowed_id);
    EXPECT_EQ(first.lookups[1].name, compose);
    // The attack: shares a first layer, then diverges. The legitimate use: FROM the image.
    auto attack = decide(p, unrelated, true);
    EXPECT_EQ(attack.verdict, Verdict::deny);
    EXPECT_NE(attack.message.find("built FROM one of them"), std::string::npos) << attack.message;
    auto legit = decide(p, derived, true);
    EXPECT_EQ(legit.verdict, Verdict::allow) << legit.message;
    // The base itself, exactly.
    EXPECT_EQ(decide(p, base, true).verdict, Verdict::allow);
    // Fewer layers than the base (the base's own parent) is not derived.
    EXPECT_EQ(decide(p, ImageInfo{true, "sha256:" + std::string(64, 'b'), {}, {"sha256:l1"}}, true)
                  .verdict,
              Verdict::deny);

    // A base with no layers would be a prefix of everything; one that is not itself on the
    // allowlist (a lookup that returned another image) counts for nothing.
    EXPECT_FALSE(p.image_derived_from(derived, ImageInfo{true, allowed_id, {}, {}}));
    EXPECT_FALSE(p.image_derived_from(
        derived, ImageInfo{true, "sha256:" + std::string(64, 'c'), {}, base.layers}));
    EXPECT_FALSE(p.image_derived_from(derived, ImageInfo{false, allowed_id, {}, base.layers}));
    EXPECT_TRUE(p.image_derived_from(derived, base));
}

TEST(PolicyAdmin, ReadsAllowDerivedImages) {
    EXPECT_FALSE(load_admin_config("{}").socket_allow_derived_images);
    EXPECT_TRUE(load_admin_config(R"({"allowDerivedImages":true})").socket_allow_derived_images);
    EXPECT_THROW(load_admin_config(R"({"allowDerivedImages":"yes"})"), cordon::Error);
}

TEST_F(PolicyMisc, SymlinkedBindSourceIsRewrittenToItsResolvedPath) {
    std::filesystem::create_directory_symlink("/home/user/project", root_ + "/tmp/proj");
    Policy p(cordon::testing::test_config(root_));
    RequestInfo req{"POST", "/containers/create", "", Role::host};
    auto head = p.check_head(req);
    auto d = p.check_body(req, head, R"({"Image":"a","HostConfig":{"Binds":["/tmp/proj:/src"]}})");
    ASSERT_EQ(d.verdict, Verdict::allow) << d.message;
    ASSERT_TRUE(d.rewritten_body);
    EXPECT_NE(d.rewritten_body->find(R"("/home/user/project:/src")"), std::string::npos)
        << *d.rewritten_body;
}

TEST_F(PolicyMisc, ResolveFollowsAbsoluteAndRelativeLinksInsideTheRoot) {
    Policy p(cordon::testing::test_config(root_));
    EXPECT_EQ(p.resolve("/var/run/cordon"), "/run/cordon");
    EXPECT_EQ(p.resolve("/tmp/link-sock"), "/run/cordon/dockerd.sock");
    EXPECT_EQ(p.resolve("/home/user/up/home/user"), "/home/user");
    EXPECT_EQ(p.resolve("/home/user/up"), "/");
    EXPECT_EQ(p.resolve("/srv/rootlink/../../.."), "/");
    EXPECT_EQ(p.resolve("/nonexistent/a/../b"), "/nonexistent/b");
}

TEST_F(PolicyMisc, SymlinkLoopIsRefusedNotHung) {
    std::filesystem::create_symlink("/tmp/loop2", root_ + "/tmp/loop1");
    std::filesystem::create_symlink("/tmp/loop1", root_ + "/tmp/loop2");
    Policy p(cordon::testing::test_config(root_));
    std::string resolved, why;
    EXPECT_EQ(p.classify_bind_source("/tmp/loop1", resolved, why), Policy::PathClass::sensitive);
    EXPECT_NE(why.find("symbolic links"), std::string::npos) << why;
}

TEST(PolicyAdmin, LoadsSettingsAndRefusesNameOnlyImages) {
    auto cfg = load_admin_config(
        R"({"isolation":true,"locked":true,"socketMountImages":["docker/compose@sha256:)" +
        std::string(64, 'e') + R"("],"commandList":{"type":"deny","commands":["image.push"]}})");
    EXPECT_TRUE(cfg.locked);
    EXPECT_EQ(cfg.socket_image_allowlist.size(), 1u);
    EXPECT_EQ(cfg.command_list.type, CommandList::Type::deny);
    EXPECT_THROW(load_admin_config(R"({"socketMountImages":["docker/compose:latest"]})"),
                 cordon::Error);
    EXPECT_THROW(load_admin_config(R"({"isolaton":true})"), cordon::Error);
    EXPECT_THROW(load_admin_config(R"({"locked":true,"isolation":false})"), cordon::Error);
    EXPECT_THROW(load_admin_config("{"), cordon::Error);
    try {
        load_admin_config(R"({"socketMountImages":["alpine"]})");
        FAIL();
    } catch (const cordon::Error& e) {
        EXPECT_EQ(e.subject(), "alpine");
        EXPECT_FALSE(e.hint().empty());
    }
}

TEST(PolicyAdmin, LockedPolicyCannotBeLoosened) {
    PolicyConfig c;
    c.locked = true;
    Policy p(c);
    EXPECT_THROW(p.set_isolation(false), cordon::Error);
    EXPECT_TRUE(p.config().isolation);
    PolicyConfig u;
    Policy q(u);
    q.set_isolation(false);
    EXPECT_FALSE(q.config().isolation);
    auto d = q.check_head({"POST", "/v1.41/plugins/pull", "", Role::host});
    EXPECT_EQ(d.verdict, Verdict::allow);
}

// With isolation off nothing is checked, but a body the policy would read is still
// buffered whole before it is forwarded: a tunnel (exec start's 101) never opens over a
// body that is still streaming (dockerode's exec hijack sends its JSON chunked).
TEST(PolicyIsolationOff, InspectedBodiesAreBufferedAndAllowedOthersStream) {
    PolicyConfig c;
    c.isolation = false;
    Policy p(c);
    auto exec_start = p.check_head({"POST", "/v1.41/exec/abc/start", "", Role::host});
    EXPECT_EQ(exec_start.verdict, Verdict::inspect);
    EXPECT_EQ(exec_start.route.body, BodyMode::inspect);
    EXPECT_TRUE(exec_start.route.upgrade);
    auto body = p.check_body({"POST", "/v1.41/exec/abc/start", "", Role::host}, exec_start,
                             R"({"Detach":false,"hijack":true,"Privileged":true})");
    EXPECT_EQ(body.verdict, Verdict::allow);
    EXPECT_FALSE(body.rewritten_body.has_value());  // forwarded as sent
    auto load = p.check_head({"POST", "/v1.41/images/load", "", Role::host});
    EXPECT_EQ(load.verdict, Verdict::allow);
    EXPECT_EQ(load.route.body, BodyMode::stream);
}

TEST(PolicyAdmin, CommandListDenyAndWildcards) {
    PolicyConfig c;
    c.command_list = {CommandList::Type::deny, {"image.*", "container.create"}};
    Policy p(c);
    EXPECT_FALSE(p.command_allowed(Role::container, "image.push"));
    EXPECT_FALSE(p.command_allowed(Role::container, "container.create"));
    EXPECT_TRUE(p.command_allowed(Role::container, "container.list"));
    EXPECT_TRUE(p.command_allowed(Role::host, "image.push"));
}

TEST(PolicyHttp, NormalizePathAndQueryLikeGo) {
    std::string out, why;
    EXPECT_TRUE(normalize_path("/containers%2Fcreate", out, why));
    EXPECT_EQ(out, "/containers/create");  // Go decodes %2F into the path dockerd routes on
    EXPECT_FALSE(normalize_path("/a/%2e/b", out, why));
    EXPECT_FALSE(normalize_path("/a/%00", out, why));
    EXPECT_FALSE(normalize_path("http://x/a", out, why));
    EXPECT_FALSE(normalize_path("/a#frag", out, why));
    std::multimap<std::string, std::string> q;
    EXPECT_TRUE(parse_query("a=1&b=x+y&c=%41&&d", q, why));
    EXPECT_EQ(q.find("b")->second, "x y");
    EXPECT_EQ(q.find("c")->second, "A");
    EXPECT_EQ(q.count("d"), 1u);
    EXPECT_FALSE(parse_query("a=%4", q, why));
}

TEST(PolicyHttp, DenialBodyIsDockerStyle) {
    Decision d;
    d.rule = "privileged";
    d.message = "privileged containers would have full access to the VM";
    auto j = nlohmann::json::parse(denial_body(d));
    std::string m = j.at("message");
    EXPECT_NE(m.find("privileged"), std::string::npos);
    EXPECT_NE(m.find("enhanced container isolation"), std::string::npos);
}

TEST(Audit, RingKeepsNewestAndFileGetsEveryLine) {
    std::string path = std::filesystem::temp_directory_path() /
                       ("cordon-audit-" + std::to_string(::getpid()) + ".jsonl");
    std::filesystem::remove(path);
    {
        AuditLog log(3, path);
        for (int i = 0; i < 5; ++i) {
            AuditEntry e;
            e.method = "GET";
            e.target = "/_ping";
            e.decision = i % 2 ? "deny" : "allow";
            e.rule = "r" + std::to_string(i);
            log.record(e);
        }
        auto r = log.recent();
        ASSERT_EQ(r.size(), 3u);
        EXPECT_EQ(r.front().rule, "r2");
        EXPECT_EQ(r.back().seq, 5u);
        EXPECT_EQ(log.denied(), 2u);
        EXPECT_EQ(log.recent_json(1).size(), 1u);
    }
    std::ifstream in(path);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line);
        EXPECT_EQ(j.at("rule"), "r" + std::to_string(n));
        ++n;
    }
    EXPECT_EQ(n, 5);
    EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    std::filesystem::remove(path);
    EXPECT_THROW(AuditLog(10, "/nonexistent-dir/x.jsonl"), cordon::Error);
}

}  // namespace

namespace {
// Found by fuzz_policy: the socket an allowlisted container gets must itself count as
// a Docker socket, or the rewritten body would fail its own policy.
TEST_F(PolicyMisc, RewrittenSocketBodyPassesThePolicyAgain) {
    auto cfg = cordon::testing::test_config(root_);
    cfg.container_socket_path = "/run/cordon/docker-containers.sock";
    Policy p(cfg);
    RequestInfo req{"POST", "/containers/create", "", Role::host};
    auto head = p.check_head(req);
    Lookups l;
    l.images["allowed:latest"] = {true, "sha256:" + std::string(64, 'a'), {}, {}};
    l.images["sha256:" + std::string(64, 'a')] = l.images["allowed:latest"];
    auto d = p.check_body(
        req, head,
        R"({"Image":"allowed:latest","HostConfig":{"Binds":["/var/run/docker.sock:/s"]}})", &l);
    ASSERT_EQ(d.verdict, Verdict::allow) << d.message;
    ASSERT_TRUE(d.rewritten_body);
    auto again = p.check_body(req, head, *d.rewritten_body, &l);
    EXPECT_EQ(again.verdict, Verdict::allow) << again.rule << ": " << again.message;
}
}  // namespace

namespace {
using namespace cordon::policy;

TEST(VmAddresses, CidrsParseLikeGoAndOverlapIsSymmetric) {
    using cordon::policy::parse_cidr;
    using cordon::policy::parse_ip;
    for (const char* bad : {"10.0.2.0", "10.0.2.0/33", "10.0.2.0/024", "010.0.2.0/24", "10.0.2/24",
                            "fe80::1%eth0/64", "::/129", "10.0.2.0/-1", "x/8", ""})
        EXPECT_FALSE(parse_cidr(bad)) << bad;
    EXPECT_FALSE(parse_ip("10.0.2.2/32"));
    auto uplink = *parse_cidr("10.0.2.0/24");
    EXPECT_TRUE(cordon::policy::prefixes_overlap(uplink, *parse_ip("10.0.2.15")));
    EXPECT_TRUE(cordon::policy::prefixes_overlap(*parse_cidr("10.0.0.0/8"), uplink));
    EXPECT_TRUE(cordon::policy::prefixes_overlap(uplink, *parse_cidr("10.0.0.0/8")));
    EXPECT_FALSE(cordon::policy::prefixes_overlap(uplink, *parse_cidr("10.0.3.0/24")));
    // the IPv4-mapped IPv6 spelling is the same address
    EXPECT_TRUE(cordon::policy::prefixes_overlap(uplink, *parse_ip("::ffff:10.0.2.2")));
    EXPECT_TRUE(cordon::policy::vm_overlap(*parse_ip("127.1.2.3"), {}));
    EXPECT_TRUE(cordon::policy::vm_overlap(*parse_ip("::1"), {}));
    EXPECT_FALSE(cordon::policy::vm_overlap(*parse_ip("192.168.1.20"), {"10.0.2.0/24"}));
}

TEST(VmAddresses, InterfaceSubnetsAreCleanCidrsWithoutLoopbackOrDocker) {
    for (const auto& c : cordon::policy::interface_subnets()) {
        auto p = cordon::policy::parse_cidr(c);
        ASSERT_TRUE(p) << c;
        EXPECT_NE(c, "127.0.0.0/8");
        EXPECT_NE(c, "::1/128");
    }
}

TEST(VolumeOptions, AnExistingVolumesStoredOptionsAreCheckedAtCreate) {
    cordon::policy::PolicyConfig cfg;
    cfg.fs_root = "/nonexistent-cordon-test-root";
    cordon::policy::Policy p(cfg);
    RequestInfo req{"POST", "/v1.41/containers/create", "application/json", Role::host};
    auto head = p.check_head(req);
    ASSERT_EQ(head.verdict, Verdict::inspect);
    std::string body = R"({"Image":"a","HostConfig":{"Binds":["old:/x"]}})";
    auto d = p.check_body(req, head, body);
    ASSERT_EQ(d.verdict, Verdict::need_lookup);
    ASSERT_EQ(d.lookups.size(), 1u);
    EXPECT_EQ(d.lookups[0].kind, cordon::policy::LookupRequest::Kind::volume);
    EXPECT_EQ(d.lookups[0].name, "old");
    cordon::policy::Lookups l;
    l.volumes["old"] = {true, "local", {{"type", "proc"}, {"device", "proc"}}};
    EXPECT_EQ(p.check_body(req, head, body, &l).rule, "volume.type");
    l.volumes["old"] = {true, "local", {}};
    EXPECT_EQ(p.check_body(req, head, body, &l).verdict, Verdict::allow);
    l.volumes["old"] = {false, {}, {}};
    EXPECT_EQ(p.check_body(req, head, body, &l).verdict, Verdict::allow);
}

}  // namespace

namespace {
using namespace cordon::policy;

// Issue 20: fields dockerd 20.10 ignores are removed from the forwarded body, which is
// exactly the original minus those members.
struct Strip {
    std::string op_target;
    std::string body;
    std::string want;  // the expected forwarded body
};

Decision check(const std::string& target, const std::string& body) {
    PolicyConfig cfg;
    cfg.fs_root = "/nonexistent-cordon-test-root";
    Policy p(cfg);
    RequestInfo req{"POST", target, "application/json", Role::host};
    auto head = p.check_head(req);
    EXPECT_EQ(head.verdict, Verdict::inspect) << target;
    Lookups l;
    l.volumes["v"] = {};
    return p.check_body(req, head, body, &l);
}

TEST(StripUnknownFields, RealClientsBodiesAreForwardedWithoutTheIgnoredFields) {
    const Strip cases[] = {
        {"/v1.41/containers/create?name=x", R"({"Image":"a","name":"x","Cmd":["sh"]})",
         R"({"Image":"a","Cmd":["sh"]})"},
        {"/v1.41/exec/e1/start", R"({"Detach":false,"Tty":true,"hijack":true})",
         R"({"Detach":false,"Tty":true})"},
        {"/v1.41/commit?container=c", R"({"comment":"msg","Cmd":["sh"]})", R"({"Cmd":["sh"]})"},
        {"/v1.41/volumes/create", R"({"Name":"v","Mountpoint":"/var/lib/docker/x"})",
         R"({"Name":"v"})"},
        // only unknown members, with white space
        {"/v1.41/exec/e1/start", R"({ "hijack" : true , "stream":1 })", R"({  })"},
        // runs of unknown members at the start, middle and end; nested objects
        {"/v1.41/containers/create",
         R"({"x":1,"y":2,"Image":"a","z":[1],"HostConfig":{"Privileged":false,"Future":{"a":1},"Memory":1,"w":"q"},"last":null})",
         R"({"Image":"a","HostConfig":{"Privileged":false,"Memory":1}})"},
        {"/v1.41/networks/create",
         R"({"Name":"n","IPAM":{"Config":[{"Subnet":"172.30.0.0/16","Extra":"10.0.2.0/24"}]}})",
         R"({"Name":"n","IPAM":{"Config":[{"Subnet":"172.30.0.0/16"}]}})"},
        {"/v1.41/containers/create",
         R"({"Image":"a","HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/v","Hidden":1,"VolumeOptions":{"DriverConfig":{"Name":"local","Junk":2}}}]}})",
         R"({"Image":"a","HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/v","VolumeOptions":{"DriverConfig":{"Name":"local"}}}]}})"},
    };
    for (const auto& c : cases) {
        auto d = check(c.op_target, c.body);
        ASSERT_EQ(d.verdict, Verdict::allow) << c.body << ": " << d.rule << " " << d.message;
        ASSERT_TRUE(d.rewritten_body) << c.body;
        EXPECT_EQ(*d.rewritten_body, c.want);
        EXPECT_EQ(d.rule, "allow.rewritten");
        EXPECT_NE(d.message.find("removed fields"), std::string::npos) << d.message;
        // re-parses, and as an object equals the expected one
        auto got = nlohmann::json::parse(*d.rewritten_body);
        EXPECT_EQ(got, nlohmann::json::parse(c.want));
    }
}

TEST(StripUnknownFields, FieldsDockerdReadsAreStillCheckedEvenBesideUnknownOnes) {
    EXPECT_EQ(check("/v1.41/containers/create",
                    R"({"Image":"a","junk":1,"HostConfig":{"x":1,"privileged":true}})")
                  .rule,
              "privileged");
    EXPECT_EQ(check("/v1.41/containers/c/update", R"({"hijack":true,"cgroupparent":"/"})").rule,
              "cgroup-parent");
    EXPECT_EQ(check("/v1.41/containers/c/exec", R"({"Cmd":["sh"],"x":1,"Privileged":true})").rule,
              "privileged-exec");
    // a folded spelling of a known field is the field, never stripped as unknown
    auto d = check("/v1.41/containers/create",
                   R"({"Image":"a","HostConfig":{"Networ\u212aMode":"host"}})");
    EXPECT_EQ(d.rule, "namespace.network");
}

}  // namespace

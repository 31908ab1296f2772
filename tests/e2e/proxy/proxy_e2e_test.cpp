// The locked-down Docker socket end to end: the real docker CLI (and curl, and raw API
// clients) on the host's docker.sock -> cordon-hostagent -> the channel -> the guest's
// policy proxy -> the VM's real dockerd (isolation on). One VM for the whole binary.
//  * Workflow: what a user does every day passes.
//  * Attacks: each is refused with its rule, and nothing it asked for exists afterwards.
//  * Load: 200 concurrent API clients for 60 s, zero failures, no fd or memory growth in
//    either agent (issue 9 item 3).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli_refusals.hpp"
#include "cordon/rpc/rpc.hpp"
#include "cordon_e2e.hpp"
#include "docker_load.hpp"
#include "proxy_e2e_fixture.hpp"

using cordon::e2e::describe;
using cordon::e2e::VmEnvironment;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using namespace cordon::e2e::proxy;

// ------------------------------------------------------------------ the normal workflow

TEST_F(ProxyE2e, VersionInfoAndPs) {
    auto v = docker({"version", "--format", "{{.Server.APIVersion}}"});
    ASSERT_TRUE(v.ok()) << describe(v);
    EXPECT_EQ(trim(v.out), "1.41");
    auto info = docker({"info", "--format", "{{json .SecurityOptions}} {{.Driver}}"});
    ASSERT_TRUE(info.ok()) << describe(info);
    EXPECT_TRUE(contains(info.out, "userns")) << info.out;  // isolation on: remapped engine
    auto ps = docker({"ps", "-a", "--format", "{{.Names}}"});
    ASSERT_TRUE(ps.ok()) << describe(ps);
}

TEST_F(ProxyE2e, RunRunDetachedLogsExecStopRm) {
    auto r = docker({"run", "--rm", vm().test_image(), "echo", "hello-through-the-proxy"});
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(trim(r.out), "hello-through-the-proxy");

    const std::string name = "cordon-e2e-detached";
    rm_container(name);
    auto d = docker({"run", "-d", "--name", name, vm().test_image(), "sh", "-c",
                     "echo started-detached; exec sleep 600"});
    ASSERT_TRUE(d.ok()) << describe(d);
    std::string logs;
    for (int i = 0; i < 60 && !contains(logs, "started-detached"); ++i) {
        auto l = docker({"logs", name});
        ASSERT_TRUE(l.ok()) << describe(l);
        logs = l.out;
        if (!contains(logs, "started-detached"))
            std::this_thread::sleep_for(500ms);
    }
    EXPECT_TRUE(contains(logs, "started-detached")) << logs;

    auto ex = docker({"exec", name, "sh", "-c", "echo exec-says-$((6*7))"});
    ASSERT_TRUE(ex.ok()) << describe(ex);
    EXPECT_EQ(trim(ex.out), "exec-says-42");
    // exec with -i (stdin through the upgraded tunnel)
    cordon::SpawnOptions in;
    in.stdin_data = "piped-into-exec\n";
    auto exi = vm().docker({"exec", "-i", name, "cat"}, 120s, in);
    ASSERT_TRUE(exi.ok()) << describe(exi);
    EXPECT_EQ(trim(exi.out), "piped-into-exec");

    auto stop = docker({"stop", "-t", "1", name});
    ASSERT_TRUE(stop.ok()) << describe(stop);
    auto state = docker({"inspect", "--format", "{{.State.Running}}", name});
    ASSERT_TRUE(state.ok()) << describe(state);
    EXPECT_EQ(trim(state.out), "false");
    auto rm = docker({"rm", name});
    ASSERT_TRUE(rm.ok()) << describe(rm);
    auto ps = docker({"ps", "-a", "--filter", "name=" + name, "--format", "{{.Names}}"});
    ASSERT_TRUE(ps.ok()) << describe(ps);
    EXPECT_EQ(trim(ps.out), "");
}

TEST_F(ProxyE2e, VolumesAndNetworks) {
    auto vc = docker({"volume", "create", "cordon-e2e-vol"});
    ASSERT_TRUE(vc.ok()) << describe(vc);
    auto w = docker({"run", "--rm", "-v", "cordon-e2e-vol:/data", vm().test_image(), "sh", "-c",
                     "echo kept > /data/f"});
    ASSERT_TRUE(w.ok()) << describe(w);
    auto rd = docker(
        {"run", "--rm", "-v", "cordon-e2e-vol:/data:ro", vm().test_image(), "cat", "/data/f"});
    ASSERT_TRUE(rd.ok()) << describe(rd);
    EXPECT_EQ(trim(rd.out), "kept");
    auto vl = docker({"volume", "ls", "--format", "{{.Name}}"});
    ASSERT_TRUE(vl.ok()) << describe(vl);
    EXPECT_TRUE(contains(vl.out, "cordon-e2e-vol")) << vl.out;
    auto vr = docker({"volume", "rm", "cordon-e2e-vol"});
    ASSERT_TRUE(vr.ok()) << describe(vr);

    auto nc = docker({"network", "create", "cordon-e2e-net"});
    ASSERT_TRUE(nc.ok()) << describe(nc);
    // A user-defined network is looked up by the policy (it is not the host network).
    auto on = docker({"run", "--rm", "--network", "cordon-e2e-net", vm().test_image(), "true"});
    EXPECT_TRUE(on.ok()) << describe(on);
    auto nl = docker({"network", "ls", "--format", "{{.Name}}"});
    ASSERT_TRUE(nl.ok()) << describe(nl);
    EXPECT_TRUE(contains(nl.out, "cordon-e2e-net")) << nl.out;
    auto nr = docker({"network", "rm", "cordon-e2e-net"});
    ASSERT_TRUE(nr.ok()) << describe(nr);
}

// BuildKit (issue 14 item 5, issue 13 item 6): the engine package's own CLI drives a
// BuildKit build (session and all) through the socket; its RUN step goes through the runc
// shim and runs in the remap range, not as VM root.
TEST_F(ProxyE2e, ABuildKitBuildRunsItsStepsAsTheMappedUser) {
    const std::string cli = vm().engine_package_cli();
    ASSERT_FALSE(cli.empty()) << "no docker.io package in the image build's cache";
    auto dir = scratch("buildkit");
    write_file(dir / "Dockerfile", "FROM " + vm().test_image() +
                                       "\nRUN cat /proc/self/uid_map > /step-uid-map\n"
                                       "CMD [\"cat\", \"/step-uid-map\"]\n");
    cordon::SpawnOptions o;
    o.env_overrides = {"DOCKER_HOST=" + vm().docker_host(), "DOCKER_BUILDKIT=1",
                       "DOCKER_CONFIG=" + scratch("docker-config").string()};
    auto b = cordon::run({cli, "build", "--progress", "plain", "-t", "cordon-e2e/buildkit:1",
                          dir.string()},
                         600s, o);
    ASSERT_TRUE(b.ok()) << describe(b);
    auto r = docker({"run", "--rm", "cordon-e2e/buildkit:1"});
    ASSERT_TRUE(r.ok()) << describe(r);
    std::istringstream map(r.out);
    unsigned long inside = 1, outside = 0;
    map >> inside >> outside;
    EXPECT_EQ(inside, 0u) << r.out;
    EXPECT_GE(outside, 100000u) << "the build step ran as VM root: " << r.out;
    docker({"rmi", "cordon-e2e/buildkit:1"});
}

TEST_F(ProxyE2e, BuildOfASmallDockerfile) {
    auto dir = scratch("build");
    write_file(dir / "Dockerfile", "FROM " + vm().test_image() +
                                       "\nCOPY hello.txt /hello.txt\n"
                                       "RUN echo built-by-run > /run.txt\n"
                                       "CMD [\"cat\", \"/hello.txt\", \"/run.txt\"]\n");
    write_file(dir / "hello.txt", "hello-from-the-build-context\n");
    auto b =
        vm().docker({"build", "-t", "cordon-e2e/built:1", dir.string()}, 600s, legacy_builder());
    ASSERT_TRUE(b.ok()) << describe(b);
    auto r = docker({"run", "--rm", "cordon-e2e/built:1"});
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(trim(r.out), "hello-from-the-build-context\nbuilt-by-run");
    docker({"rmi", "cordon-e2e/built:1"});
}

TEST_F(ProxyE2e, CopyIntoAndOutOfAContainer) {
    const std::string name = "cordon-e2e-cp";
    rm_container(name);
    auto d = docker({"run", "-d", "--name", name, vm().test_image(), "sleep", "600"});
    ASSERT_TRUE(d.ok()) << describe(d);
    auto dir = scratch("cp");
    std::string payload;
    for (int i = 0; i < 20000; ++i) payload += "line " + std::to_string(i) + " of the payload\n";
    write_file(dir / "in.txt", payload);
    auto in = docker({"cp", (dir / "in.txt").string(), name + ":/tmp/in.txt"});
    ASSERT_TRUE(in.ok()) << describe(in);
    auto wc = docker({"exec", name, "sh", "-c", "head -n 2 /tmp/in.txt; echo made > /tmp/out.txt"});
    ASSERT_TRUE(wc.ok()) << describe(wc);
    EXPECT_EQ(wc.out, "line 0 of the payload\nline 1 of the payload\n");
    auto out = docker({"cp", name + ":/tmp/in.txt", (dir / "back.txt").string()});
    ASSERT_TRUE(out.ok()) << describe(out);
    EXPECT_EQ(read_file(dir / "back.txt"), payload);
    auto out2 = docker({"cp", name + ":/tmp/out.txt", (dir / "out.txt").string()});
    ASSERT_TRUE(out2.ok()) << describe(out2);
    EXPECT_EQ(read_file(dir / "out.txt"), "made\n");
    rm_container(name);
}

TEST_F(ProxyE2e, EventsAreStreamed) {
    std::vector<std::string> argv{"docker",   "events",
                                  "--filter", "label=cordon-e2e=events",
                                  "--format", "{{.Type}} {{.Action}}"};
    cordon::SpawnOptions o;
    o.env_overrides = {"DOCKER_HOST=" + vm().docker_host()};
    auto child = cordon::Child::spawn(argv, o);
    std::this_thread::sleep_for(2s);  // the CLI subscribes before the container appears
    auto r = docker({"run", "--rm", "--label", "cordon-e2e=events", vm().test_image(), "true"});
    ASSERT_TRUE(r.ok()) << describe(r);
    std::this_thread::sleep_for(3s);
    auto ev = child.wait(1s);  // still streaming: stopped here, output kept
    EXPECT_TRUE(ev.timed_out) << "docker events ended on its own: " << describe(ev);
    EXPECT_TRUE(contains(ev.out, "container create")) << ev.out;
    EXPECT_TRUE(contains(ev.out, "container start")) << ev.out;
    EXPECT_TRUE(contains(ev.out, "container destroy")) << ev.out;
}

// ------------------------------------------------------------------ attacks

TEST_F(ProxyE2e, CliAttacksAreRefusedWithTheirRule) {
    for (const auto& c : cordon::testing::kCliRefusals) {
        std::string args = cordon::testing::with_image(c.args, vm().test_image());
        // Label what the attack would create, to look for it afterwards.
        if (args.rfind("run ", 0) == 0)
            args.insert(4, "--label cordon-e2e=attack ");
        auto r = docker_sh(vm(), args);
        EXPECT_FALSE(r.ok()) << "docker " << args << " succeeded:\n" << r.out;
        expect_refused("docker " + args, r.out, c.rule);
    }
    // Nothing the attacks asked for exists in the VM's dockerd.
    auto ps = docker({"ps", "-a", "--filter", "label=cordon-e2e=attack", "--format", "{{.ID}}"});
    ASSERT_TRUE(ps.ok()) << describe(ps);
    EXPECT_EQ(trim(ps.out), "");
    auto vols = docker({"volume", "ls", "--format", "{{.Name}}"});
    ASSERT_TRUE(vols.ok()) << describe(vols);
    EXPECT_FALSE(contains(vols.out, "cordon-v1")) << vols.out;
    auto nets = docker({"network", "ls", "--format", "{{.Name}}"});
    ASSERT_TRUE(nets.ok()) << describe(nets);
    EXPECT_FALSE(contains(nets.out, "cordon-m1")) << nets.out;
}

TEST_F(ProxyE2e, PrivilegedExecIsRefused) {
    const std::string name = "cordon-e2e-exec";
    rm_container(name);
    auto d = docker({"run", "-d", "--name", name, vm().test_image(), "sleep", "600"});
    ASSERT_TRUE(d.ok()) << describe(d);
    auto r = docker_sh(vm(), "exec --privileged " + name + " id");
    EXPECT_FALSE(r.ok()) << r.out;
    expect_refused("docker exec --privileged", r.out, "privileged-exec");
    auto plain = docker({"exec", name, "id", "-u"});  // the same exec without it works
    ASSERT_TRUE(plain.ok()) << describe(plain);
    EXPECT_EQ(trim(plain.out), "0");
    rm_container(name);
}

TEST_F(ProxyE2e, BuildWithHostNetworkIsRefused) {
    auto dir = scratch("build-host");
    write_file(dir / "Dockerfile", "FROM " + vm().test_image() + "\nRUN hostname\n");
    auto r = docker_sh(vm(), "build --network host -t cordon-e2e/hostnet:1 " + dir.string());
    EXPECT_FALSE(r.ok()) << r.out;
    expect_refused("docker build --network host", r.out, "build.network");
    auto img = docker({"image", "inspect", "cordon-e2e/hostnet:1"});
    EXPECT_FALSE(img.ok()) << "the refused build produced an image";
}

// /containers/{id}/update and case-folded, escaped or duplicated JSON keys, sent with
// curl as raw API requests (the CLI cannot send them).
TEST_F(ProxyE2e, ApiAttacksWithCurlAreRefused) {
    const std::string name = "cordon-e2e-update";
    rm_container(name);
    auto d = docker({"run", "-d", "--name", name, vm().test_image(), "sleep", "600"});
    ASSERT_TRUE(d.ok()) << describe(d);
    const std::string img = vm().test_image();
    struct ApiCase {
        std::string what, method, path, body, rule;
    };
    const std::string create = "/v1.41/containers/create?name=cordon-e2e-api-attack";
    const ApiCase cases[] = {
        {"update: device cgroup rule", "POST", "/v1.41/containers/" + name + "/update",
         R"({"DeviceCgroupRules":["b *:* rwm"]})", "devices"},
        {"update: case-folded device key", "POST", "/v1.41/containers/" + name + "/update",
         R"({"devices":[{"PathOnHost":"/dev/vda","PathInContainer":"/dev/vda","CgroupPermissions":"rwm"}]})",
         "devices"},
        {"update: cgroup parent", "POST", "/v1.41/containers/" + name + "/update",
         R"({"CgroupParent":"/"})", "cgroup-parent"},
        {"update: privileged (not an update field, stripped) beside a cgroup parent", "POST",
         "/v1.41/containers/" + name + "/update", R"({"Privileged":true,"CgroupParent":"/"})",
         "cgroup-parent"},
        {"create: upper-case key", "POST", create,
         R"({"Image":")" + img + R"(","HostConfig":{"PRIVILEGED":true}})", "privileged"},
        {"create: long s (U+017F) in Binds", "POST", create,
         R"({"Image":")" + img + R"(","HostConfig":{"Bind\u017f":["/etc:/e"]}})",
         "bind-mount.sensitive"},
        {"create: Kelvin sign in NetworkMode", "POST", create,
         R"({"Image":")" + img + R"(","HostConfig":{"Networ\u212aMode":"host"}})",
         "namespace.network"},
        {"create: raw UTF-8 Kelvin sign", "POST", create,
         R"({"Image":")" + img + "\",\"HostConfig\":{\"Networ\xE2\x84\xAAMode\":\"host\"}}",
         "namespace.network"},
        {"create: escaped key", "POST", create,
         R"({"Image":")" + img + R"(","HostConfig":{"\u0050rivileged":true}})", "privileged"},
        {"create: duplicate key that folds", "POST", create,
         R"({"Image":")" + img + R"(","HostConfig":{"Privileged":false,"privileged":true}})",
         "json.duplicate-key"},
        {"create: percent-encoded path", "POST",
         "/v1.41/containers/%63reate?name=cordon-e2e-api-attack",
         R"({"Image":")" + img + R"(","HostConfig":{"Privileged":true}})", "privileged"},
        {"create: host PID namespace", "POST", create,
         R"({"Image":")" + img + R"(","HostConfig":{"PidMode":"host"}})", "namespace.pid"},
    };
    for (const auto& c : cases) {
        auto r = curl(vm(), c.method, c.path, c.body);
        ASSERT_EQ(r.exit_code, 0) << c.what << ": " << describe(r);
        EXPECT_EQ(status_of(r), 403) << c.what << "\n" << r.out;
        expect_refused(c.what, r.out, c.rule);
    }
    auto gone = docker({"inspect", "cordon-e2e-api-attack"});
    EXPECT_FALSE(gone.ok()) << "a refused create made a container";
    // The container was not changed by the refused updates.
    auto hc = docker({"inspect", "--format",
                      "{{json .HostConfig.DeviceCgroupRules}} {{json .HostConfig.Devices}} "
                      "{{.HostConfig.CgroupParent}} {{.HostConfig.Privileged}}",
                      name});
    ASSERT_TRUE(hc.ok()) << describe(hc);
    EXPECT_FALSE(contains(hc.out, "rwm")) << hc.out;
    EXPECT_TRUE(contains(hc.out, "false")) << hc.out;
    // A harmless update passes.
    auto ok = curl(vm(), "POST", "/v1.41/containers/" + name + "/update",
                   R"({"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2}})");
    EXPECT_EQ(status_of(ok), 200) << ok.out;
    rm_container(name);
}

// ------------------------------------------------------------------ load (issue 9 item 3)

struct Usage {
    cordon::load::ProcessUsage host, guest;
    long guest_heap = -1;  // bytes the guest agent holds (mallinfo2, its "memory" RPC)
};

Usage agents_usage(const VmEnvironment& vm) {
    Usage u;
    auto st = vm.vmctl({"status", "--json"}, 60s);
    EXPECT_TRUE(st.ok()) << describe(st);
    auto j = nlohmann::json::parse(st.out, nullptr, false);
    pid_t pid = 0;
    if (j.is_object() && j.contains("host_agent"))
        pid = j["host_agent"].value("pid", 0);
    EXPECT_GT(pid, 0) << st.out;
    try {
        // control.sock lies beside docker.sock (vmctl/lib paths.cpp).
        auto c = cordon::rpc::BlockingClient::connect(
            (fs::path(socket_path(vm)).parent_path() / "control.sock").string());
        auto m = c.call("memory", nlohmann::json::object(), 60s);
        u.guest_heap = m.value("heap_in_use", -1L);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "the guest agent's \"memory\" RPC: " << e.what()
                      << " (an image older than the agent's memory RPC? rebuild cordon_image)";
    }
    // vmctl's and this RPC's control connections are still being closed in the host agent
    // for a moment: let them go (and the agents' idle heap trim, 1 s, run) before counting.
    std::this_thread::sleep_for(1500ms);
    if (pid > 0)
        u.host = cordon::load::usage_of(pid);
    auto g = vm.vm_exec(cordon::load::usage_command("cordon-guest-agent"));
    EXPECT_TRUE(g.ok()) << describe(g);
    u.guest = cordon::load::parse_usage(g.out);
    EXPECT_GT(u.guest.fds, 0) << g.out;
    return u;
}

void print_usage(const char* when, const Usage& u) {
    std::cout << "[load] " << when << ": cordon-hostagent fds " << u.host.fds << " rss "
              << u.host.rss_kib << " KiB; cordon-guest-agent fds " << u.guest.fds << " rss "
              << u.guest.rss_kib << " KiB, heap in use " << u.guest_heap << " B" << std::endl;
}

// 200 concurrent Docker API clients through the host socket for 60 s: no failed request,
// and the agents hold no more descriptors or memory afterwards than after a warm-up
// (which fills the audit ring, 1000 entries of about 400 B, and lets the allocators reach
// their working size first).
TEST_F(ProxyE2e, TwoHundredClientsForSixtySeconds) {
    const std::string name = "cordon-e2e-load";
    rm_container(name);
    auto d = docker({"run", "-d", "--name", name, vm().test_image(), "sh", "-c",
                     "while true; do echo tick; sleep 1; done"});
    ASSERT_TRUE(d.ok()) << describe(d);
    const std::string id = trim(d.out);
    print_usage("idle", agents_usage(vm()));

    cordon::load::Options o;
    o.socket = socket_path(vm());
    o.container = id;
    o.clients = 200;
    o.duration = 10s;
    std::uint64_t warm_requests = 0;
    for (int i = 0; i < 4 && warm_requests < 1500; ++i) {
        auto warm = cordon::load::run(o);
        std::cout << "[load] warm-up\n" << cordon::load::describe(warm) << std::flush;
        EXPECT_EQ(warm.failures, 0u);
        warm_requests += warm.requests;
    }
    std::this_thread::sleep_for(3s);  // connections wind down
    Usage before = agents_usage(vm());
    print_usage("before", before);

    o.duration = 60s;
    auto r = cordon::load::run(o);
    std::cout << "[load] 60 s\n" << cordon::load::describe(r) << std::flush;
    EXPECT_EQ(r.failures, 0u);
    EXPECT_EQ(r.log_streams, 20);
    EXPECT_EQ(r.event_streams, 20);
    EXPECT_GT(r.log_bytes, 0u);
    EXPECT_GT(r.requests, 1000u);

    std::this_thread::sleep_for(3s);
    Usage after = agents_usage(vm());
    print_usage("after", after);
    EXPECT_LE(after.host.fds, before.host.fds);
    EXPECT_LE(after.guest.fds, before.guest.fds);
    // Steady state after the warm-up. The guest agent's heap in use is exact (allocator
    // caching does not show in it): within 128 KiB (audit entries vary in size) + 32 B per
    // connection. RSS, which trails the allocator: the host agent's within 384 KiB + 64 B per
    // connection, the guest agent's within 512 KiB + 64 B (both trim their heap after a
    // burst). Without a VM, tests/integration/memory measures the same paths over 20,000+
    // connections. Printed: the smallest leak per connection each bound catches.
    const long n = static_cast<long>(std::max<std::uint64_t>(r.connections, 1));
    const long heap_bound = 128 * 1024 + 32 * n;
    const long host_bound = 384 * 1024 + 64 * n;
    const long guest_bound = 512 * 1024 + 64 * n;
    const long heap_growth = after.guest_heap - before.guest_heap;
    const long host_growth = (after.host.rss_kib - before.host.rss_kib) * 1024;
    const long guest_growth = (after.guest.rss_kib - before.guest.rss_kib) * 1024;
    std::cout << "[load] growth over " << r.connections << " connections, " << r.requests
              << " requests: guest agent heap in use " << heap_growth << " B (" << heap_growth / n
              << " B/connection; bound " << heap_bound << " B, breaks at a leak of "
              << heap_bound / n + 1 << " B/connection); host agent rss " << host_growth << " B ("
              << host_growth / n << " B/connection; bound " << host_bound << " B, breaks at "
              << host_bound / n + 1 << " B/connection); guest agent rss " << guest_growth << " B ("
              << guest_growth / n << " B/connection; bound " << guest_bound << " B, breaks at "
              << guest_bound / n + 1 << " B/connection)" << std::endl;
    EXPECT_GE(before.guest_heap, 0);
    EXPECT_LE(heap_growth, heap_bound);
    EXPECT_LE(host_growth, host_bound);
    EXPECT_LE(guest_growth, guest_bound);
    // Still usable afterwards.
    auto v = docker({"version", "--format", "{{.Server.Version}}"});
    EXPECT_TRUE(v.ok()) << describe(v);
    rm_container(name);
}

}  // namespace

// The scratch folder goes once the VM has.
const bool scratch_cleanup_registered = cordon::e2e::after_vm_stop([] {
    std::error_code ec;
    fs::remove_all(scratch("x").parent_path(), ec);
});

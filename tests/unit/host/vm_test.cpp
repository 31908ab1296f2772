// The lifecycle's error paths against a fake libvirt (the real one is in
// tests/integration/host), and the real libvirt client on an unreachable URI.
#include "cordon/host/vm.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

#include "cordon/engine_settings.hpp"
#include "cordon/host/domain_xml.hpp"
#include "cordon/host/host_error.hpp"
#include "cordon/subprocess.hpp"
#include "test_certs.hpp"
#include "test_dir.hpp"

using namespace cordon::host;
using cordon::host::test::TempDir;
using nlohmann::json;

namespace {

struct FakeWorld {
    bool connect_fails = false;
    bool define_fails = false;
    bool create_fails = false;
    bool exists = false;
    std::string xml;
    DomainStatus status{DomainState::shutoff, "never started"};
    bool acpi_powers_off = false;
    bool dies_while_booting = false;
    int defines = 0, creates = 0, shutdowns = 0, destroys = 0, undefines = 0;
};

HostError libvirt_error(const std::string& what) {
    return HostError(ErrorKind::libvirt, what, "fake");
}

class FakeDomain final : public Domain {
  public:
    explicit FakeDomain(FakeWorld& w) : w_(w) {}
    std::string name() const override { return "fake"; }
    std::string uuid() override { return "a2af9b46-1916-485f-93f1-ccaf450f258e"; }
    DomainStatus status() override { return w_.status; }
    std::string xml() override { return w_.xml; }
    void create() override {
        ++w_.creates;
        if (w_.create_fails)
            throw libvirt_error("create failed");
        w_.status = w_.dies_while_booting ? DomainStatus{DomainState::shutoff, "crashed"}
                                          : DomainStatus{DomainState::running, "booted"};
    }
    void shutdown() override {
        ++w_.shutdowns;
        if (w_.acpi_powers_off)
            w_.status = {DomainState::shutoff, "shut down by the guest"};
    }
    void destroy() override {
        ++w_.destroys;
        w_.status = {DomainState::shutoff, "destroyed"};
    }
    void undefine() override {
        ++w_.undefines;
        w_.exists = false;
    }

  private:
    FakeWorld& w_;
};

class FakeConnection final : public Connection {
  public:
    explicit FakeConnection(FakeWorld& w) : w_(w) {}
    std::string uri() const override { return "fake:///system"; }
    bool is_local() const override { return true; }
    std::unique_ptr<Domain> lookup(const std::string&) override {
        return w_.exists ? std::make_unique<FakeDomain>(w_) : nullptr;
    }
    std::unique_ptr<Domain> define(const std::string& xml) override {
        ++w_.defines;
        if (w_.define_fails)
            throw libvirt_error("define refused");
        w_.exists = true;
        w_.xml = xml;
        return std::make_unique<FakeDomain>(w_);
    }
    std::string daemon_version() override { return "9.0.0"; }
    std::string hypervisor_version() override { return "7.2.0"; }
    bool offers_kvm() override { return false; }

  private:
    FakeWorld& w_;
};

class FakeHypervisor final : public Hypervisor {
  public:
    explicit FakeHypervisor(FakeWorld& w) : w_(w) {}
    std::unique_ptr<Connection> connect(const std::string& uri) override {
        if (w_.connect_fails)
            throw HostError(ErrorKind::libvirt_unreachable, "cannot connect", uri,
                            "start libvirtd");
        return std::make_unique<FakeConnection>(w_);
    }

  private:
    FakeWorld& w_;
};

// A guest agent stand-in for the connector: answers from a function.
class FakeAgent final : public AgentClient {
  public:
    explicit FakeAgent(std::function<json(const std::string&)> f) : f_(std::move(f)) {}
    json call(const std::string& method, const json&, std::chrono::milliseconds) override {
        return f_(method);
    }

  private:
    std::function<json(const std::string&)> f_;
};

std::unique_ptr<AgentClient> unreachable(const std::filesystem::path& p) {
    throw HostError(ErrorKind::agent_unreachable, "no agent", p.string());
}

class VmFake : public ::testing::Test {
  protected:
    TempDir dir;
    FakeWorld world;
    FakeHypervisor hv{world};
    Settings settings;
    std::vector<std::string> agent_calls;

    void SetUp() override {
        ::setenv("CORDON_STATE_DIR", (dir / "state").c_str(), 1);
        ::setenv("CORDON_RUNTIME_DIR", (dir / "run").c_str(), 1);
        ::setenv("CORDON_CACHE_DIR", (dir / "cache").c_str(), 1);
        dir.write("image/vmlinuz", "k");
        dir.write("image/initrd.img", "i");
        dir.write("image/manifest.json",
                  R"({"kernel":"vmlinuz","initrd":"initrd.img","cmdline":"console=ttyS0"})");
        settings.image_dir = (dir / "image").string();
        settings.accelerator = Accelerator::tcg;
        settings.vm_name = "fake";
        settings.disk_gib = 1;
    }
    // A defined domain Cordon made.
    void define_existing(DomainState state) {
        world.exists = true;
        world.xml =
            "<domain type='qemu'><metadata><cordon:vm "
            "xmlns:cordon=\"https://cordon.dev/xmlns/vm/1\" "
            "version=\"1\" fingerprint=\"0000000000000000\"/></metadata></domain>";
        world.status = {state, "x"};
    }
    AgentConnector answering() {
        return [this](const std::filesystem::path&) -> std::unique_ptr<AgentClient> {
            return std::make_unique<FakeAgent>([this](const std::string& m) -> json {
                agent_calls.push_back(m);
                if (m == "shutdown")
                    world.status = {DomainState::shutoff, "shut down by the guest"};
                if (m == "info")
                    return {{"version", "fake-agent 1"}};
                return json::object();
            });
        };
    }
    // A host agent stand-in that stays alive for a while (the real one is tested in
    // tests/integration/host).
    StartOptions start_options(int timeout_s = 5, const std::string& agent = "exec sleep 3") {
        auto exe = dir.write("agent.sh", "#!/bin/sh\n" + agent + "\n");
        std::filesystem::permissions(exe, std::filesystem::perms::owner_all);
        StartOptions o;
        o.ready_timeout = std::chrono::seconds(timeout_s);
        o.hostagent_exe = exe;
        return o;
    }
    template <typename F>
    ErrorKind kind_of(F f) {
        try {
            f();
        } catch (const HostError& e) {
            return e.kind();
        }
        ADD_FAILURE() << "no HostError thrown";
        return ErrorKind::generic;
    }
};

}  // namespace

TEST_F(VmFake, UnreachableLibvirtIsReportedAsSuch) {
    world.connect_fails = true;
    Vm vm(hv, settings, unreachable);
    EXPECT_EQ(kind_of([&] { vm.status(); }), ErrorKind::libvirt_unreachable);
    EXPECT_EQ(kind_of([&] { vm.start(start_options()); }), ErrorKind::libvirt_unreachable);
    EXPECT_EQ(kind_of([&] { vm.stop({}); }), ErrorKind::libvirt_unreachable);
}

TEST_F(VmFake, StopOfAnUndefinedVmIsNotFound) {
    Vm vm(hv, settings, unreachable);
    EXPECT_EQ(kind_of([&] { vm.stop({}); }), ErrorKind::vm_not_found);
    EXPECT_EQ(kind_of([&] { vm.call_agent("ping", {}); }), ErrorKind::vm_not_found);
}

TEST_F(VmFake, StopOfAStoppedVmDoesNothing) {
    define_existing(DomainState::shutoff);
    Vm vm(hv, settings, unreachable);
    StopResult r = vm.stop({});
    EXPECT_FALSE(r.was_running);
    EXPECT_EQ(r.method, "none");
    EXPECT_EQ(world.destroys + world.shutdowns, 0);
    EXPECT_EQ(kind_of([&] { vm.call_agent("ping", {}); }), ErrorKind::vm_not_running);
}

TEST_F(VmFake, StopUsesTheAgentFirst) {
    define_existing(DomainState::running);
    Vm vm(hv, settings, answering());
    StopResult r = vm.stop({});
    EXPECT_EQ(r.method, "agent");
    EXPECT_EQ(agent_calls, std::vector<std::string>{"shutdown"});
    EXPECT_EQ(world.shutdowns + world.destroys, 0);
}

TEST_F(VmFake, StopFallsBackToAcpiWhenTheAgentIsUnreachable) {
    define_existing(DomainState::running);
    world.acpi_powers_off = true;
    Vm vm(hv, settings, unreachable);
    StopResult r = vm.stop({});
    EXPECT_EQ(r.method, "acpi");
    EXPECT_EQ(world.shutdowns, 1);
    EXPECT_EQ(world.destroys, 0);
}

TEST_F(VmFake, StopDestroysAfterTheTimeouts) {
    define_existing(DomainState::running);
    Vm vm(hv, settings, unreachable);
    StopOptions o;
    o.acpi_timeout = std::chrono::seconds(1);
    std::vector<std::string> progress;
    o.progress = [&](const std::string& l) { progress.push_back(l); };
    StopResult r = vm.stop(o);
    EXPECT_EQ(r.method, "destroy");
    EXPECT_EQ(world.shutdowns, 1);
    EXPECT_EQ(world.destroys, 1);
    EXPECT_GE(r.seconds, 1.0);
    EXPECT_FALSE(progress.empty());
}

TEST_F(VmFake, AForeignDomainOfTheSameNameIsLeftAlone) {
    world.exists = true;
    world.xml = "<domain type='kvm'><name>fake</name></domain>";
    world.status = {DomainState::running, "booted"};
    Vm vm(hv, settings, unreachable);
    EXPECT_EQ(kind_of([&] { vm.stop({}); }), ErrorKind::usage);
    EXPECT_EQ(kind_of([&] { vm.remove(true); }), ErrorKind::usage);
    EXPECT_EQ(kind_of([&] { vm.start(start_options()); }), ErrorKind::usage);
    EXPECT_EQ(world.destroys + world.undefines + world.defines, 0);
}

TEST_F(VmFake, DefineRefusedIsALibvirtError) {
    world.define_fails = true;
    Vm vm(hv, settings, unreachable);
    EXPECT_EQ(kind_of([&] { vm.start(start_options()); }), ErrorKind::libvirt);
    EXPECT_EQ(world.creates, 0);
}

TEST_F(VmFake, MissingImageIsAnImageError) {
    settings.image_dir = (dir / "no-image").string();
    Vm vm(hv, settings, unreachable);
    EXPECT_EQ(kind_of([&] { vm.start(start_options()); }), ErrorKind::image);
    EXPECT_EQ(world.defines, 0);
}

TEST_F(VmFake, AVmThatDiesWhileBootingIsReported) {
    world.dies_while_booting = true;
    Vm vm(hv, settings, unreachable);
    EXPECT_EQ(kind_of([&] { vm.start(start_options()); }), ErrorKind::vm_not_running);
}

TEST_F(VmFake, AnAgentThatNeverAnswersTimesOut) {
    Vm vm(hv, settings, unreachable);
    EXPECT_EQ(kind_of([&] { vm.start(start_options(1)); }), ErrorKind::timeout);
    EXPECT_EQ(world.status.state, DomainState::running)
        << "a timeout leaves the VM running for inspection";
}

TEST_F(VmFake, AHostAgentThatExitsFailsTheStartAtOnceWithItsLog) {
    Vm vm(hv, settings, unreachable);
    const auto t0 = std::chrono::steady_clock::now();
    try {
        vm.start(start_options(60, "echo 'cannot bind /x: Permission denied' >&2; exit 3"));
        FAIL() << "start succeeded";
    } catch (const HostError& e) {
        EXPECT_EQ(e.kind(), ErrorKind::agent_unreachable);
        EXPECT_NE(e.failure().find("cannot bind /x"), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

TEST_F(VmFake, StartCreatesTheDiskDefinesOnceAndWaitsForPing) {
    Vm vm(hv, settings, answering());
    StartResult r = vm.start(start_options());
    EXPECT_FALSE(r.already_running);
    EXPECT_TRUE(r.data_disk_created);
    EXPECT_TRUE(std::filesystem::exists(vm.paths().data_disk));
    EXPECT_EQ(r.agent_info["version"], "fake-agent 1");
    EXPECT_EQ(world.defines, 1);
    EXPECT_EQ(agent_calls, (std::vector<std::string>{"ping", "info"}));
    EXPECT_EQ(fingerprint_in_xml(world.xml).size(), 16u);
    // Running: a second start changes nothing.
    StartResult again = vm.start(start_options());
    EXPECT_TRUE(again.already_running);
    EXPECT_EQ(world.creates, 1);
    // Stopped and started with the same settings: not redefined, the disk is kept.
    vm.stop({});
    StartResult third = vm.start(start_options());
    EXPECT_FALSE(third.data_disk_created);
    EXPECT_EQ(world.defines, 1);
    EXPECT_EQ(world.creates, 2);
    // Other settings: redefined.
    vm.stop({});
    settings.cpus = 3;
    Vm bigger(hv, settings, answering());
    bigger.start(start_options());
    EXPECT_EQ(world.defines, 2);
}

TEST_F(VmFake, RemoveDestroysUndefinesAndDeletesTheDiskOnlyWhenAsked) {
    Vm vm(hv, settings, answering());
    vm.start(start_options());
    ASSERT_TRUE(std::filesystem::exists(vm.paths().data_disk));
    EXPECT_TRUE(vm.remove(false));
    EXPECT_EQ(world.destroys, 1);
    EXPECT_EQ(world.undefines, 1);
    EXPECT_TRUE(std::filesystem::exists(vm.paths().data_disk));
    vm.start(start_options());
    EXPECT_TRUE(vm.remove(true));
    EXPECT_FALSE(std::filesystem::exists(vm.paths().data_disk));
    EXPECT_FALSE(vm.remove(true)) << "nothing left to remove";
}

TEST(RealLibvirt, AMissingDaemonSocketIsUnreachableWithAHint) {
    auto hv = make_libvirt();
    try {
        hv->connect("qemu+unix:///system?socket=/nonexistent/cordon-test/libvirt-sock");
        FAIL() << "connected to a socket that does not exist";
    } catch (const HostError& e) {
        EXPECT_EQ(e.kind(), ErrorKind::libvirt_unreachable);
        EXPECT_NE(e.hint().find("libvirtd -d"), std::string::npos) << e.what();
        EXPECT_NE(e.subject().find("/nonexistent/cordon-test"), std::string::npos);
    }
}

// --- structured progress, cancellation, RPC error codes ---

TEST(HostErrorCodes, GuestCodesMapToKinds) {
    EXPECT_EQ(kind_for_rpc_code("locked"), ErrorKind::locked);
    EXPECT_EQ(kind_for_rpc_code("busy"), ErrorKind::busy);
    EXPECT_EQ(kind_for_rpc_code("confirmation_required"), ErrorKind::confirmation_required);
    EXPECT_EQ(kind_for_rpc_code("unavailable"), ErrorKind::rpc);
    EXPECT_EQ(kind_for_rpc_code("unknown_method"), ErrorKind::rpc);
    EXPECT_EQ(kind_for_rpc_code(""), ErrorKind::rpc);
    HostError e(ErrorKind::locked, "locked", "isolation", "ask", "locked");
    EXPECT_EQ(e.rpc_code(), "locked");
    EXPECT_EQ(HostError(ErrorKind::generic, "x").rpc_code(), "");
    EXPECT_EQ(to_string(ErrorKind::busy), "busy");
    EXPECT_EQ(to_string(ErrorKind::cancelled), "cancelled");
}

TEST_F(VmFake, StartReportsStepsWithFractionsThatOnlyGrow) {
    Vm vm(hv, settings, answering());
    StartOptions o = start_options();
    std::vector<ProgressStep> steps;
    o.on_step = [&](const ProgressStep& s) { steps.push_back(s); };
    vm.start(o);
    ASSERT_GE(steps.size(), 5u);
    EXPECT_EQ(steps.front().step, "connect");
    EXPECT_EQ(steps.back().step, "ready");
    EXPECT_DOUBLE_EQ(steps.back().fraction, 1.0);
    std::vector<std::string> names;
    for (std::size_t i = 0; i < steps.size(); ++i) {
        EXPECT_EQ(steps[i].operation, "start");
        if (i > 0) {
            EXPECT_GE(steps[i].fraction, steps[i - 1].fraction) << steps[i].step;
        }
        if (names.empty() || names.back() != steps[i].step)
            names.push_back(steps[i].step);
    }
    for (const char* want : {"image", "data_disk", "define", "boot", "hostagent", "agent"})
        EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
}

TEST_F(VmFake, StopReportsStepsEndingInStopped) {
    define_existing(DomainState::running);
    Vm vm(hv, settings, answering());
    StopOptions o;
    std::vector<ProgressStep> steps;
    o.on_step = [&](const ProgressStep& s) { steps.push_back(s); };
    vm.stop(o);
    ASSERT_GE(steps.size(), 2u);
    EXPECT_EQ(steps.front().step, "agent_shutdown");
    EXPECT_EQ(steps.back().step, "stopped");
    EXPECT_EQ(steps.back().operation, "stop");
}

TEST_F(VmFake, ACancelledStartDestroysTheDomainItStarted) {
    Vm vm(hv, settings, unreachable);  // the guest never answers: start() waits
    StartOptions o = start_options(120, "exec sleep 5");
    std::vector<std::string> steps;
    std::mutex mu;
    o.on_step = [&](const ProgressStep& s) {
        std::lock_guard lock(mu);
        steps.push_back(s.step);
    };
    CancelToken token = o.cancel;
    std::thread canceller([token] {
        std::this_thread::sleep_for(std::chrono::milliseconds(800));
        token.cancel();
    });
    const auto t0 = std::chrono::steady_clock::now();
    ErrorKind kind = kind_of([&] { vm.start(o); });
    canceller.join();
    EXPECT_EQ(kind, ErrorKind::cancelled);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5))
        << "cancel must act within a poll interval";
    EXPECT_EQ(world.creates, 1);
    EXPECT_EQ(world.destroys, 1) << "the domain this start created is destroyed";
    EXPECT_FALSE(world.status.active());
    std::lock_guard lock(mu);
    ASSERT_FALSE(steps.empty());
    EXPECT_EQ(steps.back(), "cancelled");
}

TEST_F(VmFake, ACancelBeforeTheDomainStartsLeavesItAlone) {
    define_existing(DomainState::shutoff);
    Vm vm(hv, settings, unreachable);
    StartOptions o = start_options();
    o.cancel.cancel();
    EXPECT_EQ(kind_of([&] { vm.start(o); }), ErrorKind::cancelled);
    EXPECT_EQ(world.creates, 0);
    EXPECT_EQ(world.destroys, 0);
}

TEST_F(VmFake, ACancelDoesNotTouchAVmThatWasAlreadyRunning) {
    define_existing(DomainState::running);
    Vm vm(hv, settings, answering());
    StartOptions o = start_options();
    StartResult r = vm.start(o);
    o.cancel.cancel();  // too late: nothing to undo
    EXPECT_TRUE(r.already_running);
    EXPECT_EQ(world.destroys, 0);
}

TEST_F(VmFake, IsolationSwitchProgressBecomesSteps) {
    define_existing(DomainState::running);
    // The guest's progress notifications, as the real agent sends them.
    class ProgressAgent final : public AgentClient {
      public:
        json call(const std::string&, const json&, std::chrono::milliseconds) override {
            return {{"pong", true}};
        }
        json call_notified(const std::string& method, const json& params, std::chrono::milliseconds,
                           const NotificationHandler& h) override {
            EXPECT_EQ(method, "isolation");
            EXPECT_EQ(params["enabled"], false);
            for (const char* s :
                 {"stopping container web", "saving 2 image tag(s) from the current engine",
                  "stopping the engine", "starting the engine with isolation off",
                  "loading 2 image tag(s) into the new engine"})
                h("progress", {{"step", s}});
            return {{"enabled", false}, {"changed", true}};
        }
    };
    Vm vm(hv, settings, [](const std::filesystem::path&) -> std::unique_ptr<AgentClient> {
        return std::make_unique<ProgressAgent>();
    });
    // call_agent checks for a live host agent: a process named cordon-hostagent in the
    // pid file (a copy of sleep under that name stands in).
    const auto fake_agent = dir.path() / "cordon-hostagent";
    std::filesystem::copy_file("/bin/sleep", fake_agent);
    cordon::SpawnOptions so;
    so.capture_output = false;
    cordon::Child sleeper = cordon::Child::spawn({fake_agent.string(), "30"}, so);
    std::filesystem::create_directories(vm.paths().runtime_dir);
    dir.write(std::filesystem::relative(vm.paths().hostagent_pid, dir.path()).string(),
              std::to_string(sleeper.pid()) + "\n");
    std::vector<ProgressStep> steps;
    json r =
        vm.set_isolation(false, true, nullptr, [&](const ProgressStep& s) { steps.push_back(s); });
    EXPECT_EQ(r["enabled"], false);
    for (std::size_t i = 1; i < steps.size(); ++i) {
        EXPECT_GE(steps[i].fraction, steps[i - 1].fraction);
    }
    std::vector<std::string> names;
    for (const auto& s : steps) names.push_back(s.step);
    EXPECT_EQ(names, (std::vector<std::string>{"stop_containers", "save_images", "stop_engine",
                                               "start_engine", "load_images", "done"}));
}

TEST_F(VmFake, TheAdminPolicyTravelsInAFwCfgFileRewrittenAtEveryStart) {
    settings.admin_policy.lock_vm_shell = true;
    settings.admin_policy.socket_mount_images = {"sha256:" + std::string(64, 'd')};
    Vm vm(hv, settings, answering());
    vm.start(start_options());
    const std::string& xml = world.xml;
    const auto file = vm.paths().state_dir / "admin-policy.json";
    EXPECT_NE(xml.find("<sysinfo type=\"fwcfg\">"), std::string::npos) << xml;
    EXPECT_NE(xml.find("name=\"opt/org.cordon/admin\" file=\"" + file.string() + "\""),
              std::string::npos)
        << xml;
    EXPECT_NE(xml.find("cordon.admin=fw_cfg"), std::string::npos) << xml;
    auto read = [&] {
        std::ifstream in(file);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    EXPECT_NE(read().find("\"lockVmShell\":true"), std::string::npos) << read();
    EXPECT_NE(read().find(std::string(64, 'd')), std::string::npos) << read();
    // The administrator unlocks the shell: the next start rewrites the file QEMU reads
    // (the domain itself need not change).
    vm.stop({});
    settings.admin_policy.lock_vm_shell = false;
    Vm unlocked(hv, settings, answering());
    unlocked.start(start_options());
    EXPECT_EQ(world.defines, 1);
    EXPECT_NE(read().find("\"lockVmShell\":false"), std::string::npos) << read();
}

TEST_F(VmFake, TheEngineSettingsTravelInAFwCfgFileAndABadCaFileStopsTheStartFirst) {
    settings.dns = {"10.0.2.3"};
    settings.extra_ca_certs = {dir.write("ca.pem", cordon::host::test::kTestCa1).string()};
    Vm vm(hv, settings, answering());
    vm.start(start_options());
    const auto file = vm.paths().state_dir / "engine-settings.json";
    EXPECT_NE(world.xml.find("name=\"opt/org.cordon/engine\" file=\"" + file.string() + "\""),
              std::string::npos)
        << world.xml;
    EXPECT_NE(world.xml.find("cordon.engine=fw_cfg"), std::string::npos) << world.xml;
    auto read = [&] {
        std::ifstream in(file);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    const auto doc = cordon::parse_engine_document(read());
    EXPECT_EQ(doc.dns, settings.dns);
    EXPECT_NE(doc.ca_certificates.find(cordon::host::test::kTestCa1), std::string::npos);
    vm.stop({});
    // The CA file is broken after it was set: the start fails naming it, before the
    // document (or the domain) changes.
    const std::string before = read();
    const int defines = world.defines;
    dir.write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
    Vm broken(hv, settings, answering());
    try {
        broken.start(start_options());
        ADD_FAILURE() << "the start did not fail";
    } catch (const HostError& e) {
        EXPECT_EQ(e.kind(), ErrorKind::config);
        EXPECT_NE(std::string(e.what()).find((dir / "ca.pem").string()), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("extra_ca_certs"), std::string::npos) << e.what();
    }
    EXPECT_EQ(read(), before);
    EXPECT_EQ(world.defines, defines);
}

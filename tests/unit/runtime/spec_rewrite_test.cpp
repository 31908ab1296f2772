#include "cordon/runtime/spec_rewrite.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "cordon/error.hpp"
#include "cordon/runtime/overlay_rootfs.hpp"

using namespace cordon::runtime;
using json = nlohmann::json;

namespace {

// The shape dockerd 20.10 writes (trimmed to what matters).
json docker_spec() {
    return json::parse(R"({
      "ociVersion": "1.0.2-dev",
      "root": {"path": "/var/lib/docker/overlay2/abc/merged"},
      "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid","noexec","nodev","ro"]},
        {"destination": "/data", "type": "bind", "source": "/var/lib/docker/volumes/v1/_data", "options": ["rbind"]},
        {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/docker/containers/abc/hosts", "options": ["rbind","rprivate"]},
        {"destination": "/dev/shm", "type": "bind", "source": "/var/lib/docker/containers/abc/mounts/shm", "options": ["rbind"]},
        {"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["rbind"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"}
      ],
      "linux": {
        "namespaces": [{"type": "mount"}, {"type": "network"}, {"type": "uts"}, {"type": "pid"}, {"type": "ipc"}],
        "sysctl": {"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}
      }
    })");
}

const IdRange kRange{165536, 65536};

}  // namespace

TEST(SpecRewrite, PicksTheBindMountsToIdMap) {
    EXPECT_EQ(bind_mounts_to_idmap(docker_spec()),
              (std::vector<std::size_t>{3, 4, 5}));  // not /dev/kmsg
}

TEST(SpecRewrite, AddsAUserNamespaceWithTheContainersRange) {
    const json out =
        rewrite_spec(docker_spec(), kRange, kRange, "/run/cordon-idmap/abc/root",
                     {{3, "/run/cordon-idmap/abc/m3"}, {4, "/run/cordon-idmap/abc/m4"}});
    int users = 0;
    for (const auto& ns : out["linux"]["namespaces"]) users += ns["type"] == "user";
    EXPECT_EQ(users, 1);
    const json expected = json::parse(R"([{"containerID": 0, "hostID": 165536, "size": 65536}])");
    EXPECT_EQ(out["linux"]["uidMappings"], expected);
    EXPECT_EQ(out["linux"]["gidMappings"], expected);
    EXPECT_EQ(out["root"]["path"], "/run/cordon-idmap/abc/root");
    EXPECT_EQ(out["mounts"][3]["source"], "/run/cordon-idmap/abc/m3");
    EXPECT_EQ(out["mounts"][4]["source"], "/run/cordon-idmap/abc/m4");
    EXPECT_EQ(out["mounts"][5]["source"],
              "/var/lib/docker/containers/abc/mounts/shm");  // not ID-mapped: unchanged
    EXPECT_EQ(out["mounts"][2]["type"], "sysfs");            // own network namespace: sysfs stays
    EXPECT_EQ(out["linux"]["sysctl"]["net.ipv4.ping_group_range"], "0 65535");
    EXPECT_EQ(out["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"], "0");
    EXPECT_EQ(out["annotations"]["org.cordon.idmap.uid-start"], "165536");
    EXPECT_EQ(out["ociVersion"], "1.0.2-dev");
}

TEST(SpecRewrite, HostNetworkGetsABindOfSys) {
    json spec = docker_spec();
    auto& ns = spec["linux"]["namespaces"];
    ns.erase(ns.begin() + 1);  // --network host: no network namespace
    const json out = rewrite_spec(spec, kRange, kRange, "/r", {});
    EXPECT_EQ(out["mounts"][2]["type"], "bind");
    EXPECT_EQ(out["mounts"][2]["source"], "/sys");
    EXPECT_EQ(out["mounts"][2]["destination"], "/sys");
}

TEST(SpecRewrite, RefusesSpecsThatAlreadyChooseAMapping) {
    json spec = docker_spec();
    spec["linux"]["uidMappings"] = json::array({{{"containerID", 0}, {"hostID", 0}, {"size", 1}}});
    EXPECT_THROW(rewrite_spec(spec, kRange, kRange, "/r", {}), cordon::Error);
    json joins = docker_spec();
    joins["linux"]["namespaces"].push_back({{"type", "user"}, {"path", "/proc/1/ns/user"}});
    EXPECT_THROW(rewrite_spec(joins, kRange, kRange, "/r", {}), cordon::Error);
    EXPECT_THROW(rewrite_spec(json::array(), kRange, kRange, "/r", {}), cordon::Error);
    EXPECT_THROW(rewrite_spec(json::parse(R"({"linux": {}})"), kRange, kRange, "/r", {}),
                 cordon::Error);
    EXPECT_THROW(rewrite_spec(docker_spec(), kRange, kRange, "/r", {{42, "/x"}}), cordon::Error);
}

// Shapes runc's Go structs would refuse: a clear cordon::Error, never a JSON type error.
TEST(SpecRewrite, WrongTypesAreAnErrorNamingTheKey) {
    json ns = docker_spec();
    ns["linux"]["namespaces"].push_back("user");
    EXPECT_THROW(rewrite_spec(ns, kRange, kRange, "/r", {}), cordon::Error);
    json type = docker_spec();
    type["mounts"][0]["type"] = 7;
    try {
        bind_mounts_to_idmap(type);
        ADD_FAILURE() << "a numeric mount type was accepted";
    } catch (const cordon::Error& e) {
        EXPECT_NE(std::string(e.what()).find("mounts[0].type"), std::string::npos) << e.what();
    }
    json ann = docker_spec();
    ann["annotations"] = "x";
    EXPECT_THROW(rewrite_spec(ann, kRange, kRange, "/r", {}), cordon::Error);
}

// Found by fuzz_spec_rewrite: runc treats "sysfs" with rbind as a bind mount; the
// host-network /sys replacement must not overwrite its ID-mapped source.
TEST(SpecRewrite, ASysfsTypedBindMountKeepsItsSource) {
    json spec = docker_spec();
    spec["linux"]["namespaces"] = json::array({{{"type", "mount"}}});  // the VM's network
    spec["mounts"].push_back({{"destination", "/data2"},
                              {"type", "sysfs"},
                              {"source", "/var/lib/docker/volumes/v2/_data"},
                              {"options", {"rbind"}}});
    const std::size_t i = spec["mounts"].size() - 1;
    const auto picked = bind_mounts_to_idmap(spec);
    ASSERT_NE(std::find(picked.begin(), picked.end(), i), picked.end());
    const json out = rewrite_spec(spec, kRange, kRange, "/r", {{i, "/run/cordon/idmap/x"}});
    EXPECT_EQ(out["mounts"][i]["source"], "/run/cordon/idmap/x");
    EXPECT_EQ(out["mounts"][2]["source"], "/sys") << "the real sysfs is still replaced";
}

TEST(OverlayOptions, BuildsShortRelativeOptionsAndRefusesSeparators) {
    EXPECT_EQ(overlay_options({"l0", "l1"}, "u/diff", "u/work"),
              "lowerdir=l0:l1,upperdir=u/diff,workdir=u/work,index=off");
    EXPECT_THROW(overlay_options({}, "u", "w"), cordon::Error);
    EXPECT_THROW(overlay_options({"a:b"}, "u", "w"), cordon::Error);
}

TEST(OverlayLayers, ReadsDockersOverlay2Layout) {
    char tmpl[] = "/tmp/cordon-ovl-XXXXXX";
    const std::string root = ::mkdtemp(tmpl);
    const std::string layer = root + "/overlay2/abc";
    std::filesystem::create_directories(layer + "/diff");
    std::filesystem::create_directories(layer + "/work");
    std::filesystem::create_directories(layer + "/merged");
    std::ofstream(layer + "/lower") << "l/AAA:l/BBB";
    const auto layers = docker_overlay_layers(layer + "/merged");
    EXPECT_EQ(layers.layer_dir, layer);
    EXPECT_EQ(layers.lower,
              (std::vector<std::string>{root + "/overlay2/l/AAA", root + "/overlay2/l/BBB"}));
    std::ofstream(layer + "/lower") << "l/AAA:../../etc";
    EXPECT_THROW(docker_overlay_layers(layer + "/merged"), cordon::Error);
    EXPECT_THROW(docker_overlay_layers(root + "/overlay2/abc/diff"), cordon::Error);
    std::filesystem::remove_all(root);
}

TEST(SpecRewrite, UserNamespacedMeansOwnNamespaceAndVmRootUnmapped) {
    const json remapped = json::parse(R"({"linux": {
        "namespaces": [{"type": "mount"}, {"type": "user"}],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}})");
    EXPECT_TRUE(user_namespaced(remapped));

    json no_userns = remapped;
    no_userns["linux"]["namespaces"] = json::array({{{"type", "mount"}}});
    EXPECT_FALSE(user_namespaced(no_userns));

    json joins = remapped;  // --userns=container:... or a path to the VM's namespace
    joins["linux"]["namespaces"][1]["path"] = "/proc/1/ns/user";
    EXPECT_FALSE(user_namespaced(joins));

    json maps_root = remapped;
    maps_root["linux"]["gidMappings"].push_back({{"containerID", 65536}, {"hostID", 0}, {"size", 1}});
    EXPECT_FALSE(user_namespaced(maps_root));

    json no_maps = remapped;
    no_maps["linux"].erase("uidMappings");
    EXPECT_FALSE(user_namespaced(no_maps));

    json bad_type = remapped;
    bad_type["linux"]["uidMappings"][0]["hostID"] = "100000";
    EXPECT_FALSE(user_namespaced(bad_type));

    EXPECT_FALSE(user_namespaced(json::object()));
    EXPECT_FALSE(user_namespaced(json::array()));
}

TEST(SpecRewrite, ReplaceSourcesChangesOnlyTheGivenMounts) {
    const json spec = json::parse(R"({"mounts": [
        {"destination": "/a", "type": "bind", "source": "/home/u/p/a", "options": ["rbind"]},
        {"destination": "/b", "type": "bind", "source": "/home/u/p/b", "options": ["rbind"]}]})");
    const json out = replace_sources(spec, {{1, "/run/cordon-idmap/c/p1"}});
    EXPECT_EQ(out["mounts"][0]["source"], "/home/u/p/a");
    EXPECT_EQ(out["mounts"][1]["source"], "/run/cordon-idmap/c/p1");
    EXPECT_EQ(out["mounts"][1]["options"], spec["mounts"][1]["options"]);
    EXPECT_THROW(replace_sources(spec, {{2, "/x"}}), cordon::Error);
    EXPECT_THROW(replace_sources(json::object(), {{0, "/x"}}), cordon::Error);
}

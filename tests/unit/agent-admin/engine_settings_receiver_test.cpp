// The guest's side of the engine settings, on a scratch fw_cfg tree and root: the CA
// bundle dockerd reads and the base daemon.json, written whole or not at all.
#include "engine_settings_receiver.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cordon/atomic_file.hpp"

namespace fs = std::filesystem;
using namespace cordon::agent;
using nlohmann::json;

namespace {

const std::string kImageCa =
    "-----BEGIN CERTIFICATE-----\nSW1hZ2UgQ0E=\n-----END CERTIFICATE-----\n";
const std::string kHostCa =
    "-----BEGIN CERTIFICATE-----\nSG9zdCBDQQ==\n-----END CERTIFICATE-----\n";

class EngineSettingsReceiver : public ::testing::Test {
  protected:
    void SetUp() override {
        root = fs::temp_directory_path() /
               ("cordon-engine-settings-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(root);
        fs::create_directories(root / "image");
        paths.fw_cfg_root = (root / "fw_cfg").string();
        paths.image_ca_bundle = (root / "image/ca.crt").string();
        paths.ca_bundle = (root / "etc/ssl/certs/ca-certificates.crt").string();
        paths.image_daemon_json = (root / "image/daemon.json").string();
        paths.daemon_base_json = (root / "run/daemon.base.json").string();
        fs::create_directories(root / "run");
        cordon::write_file_atomically(paths.image_ca_bundle, kImageCa);
        cordon::write_file_atomically(paths.image_daemon_json,
                                      R"({"iptables": false, "host-gateway-ip": "10.0.2.2"})");
    }
    void TearDown() override { fs::remove_all(root); }
    void host_sent(const std::string& doc) {
        const fs::path raw = engine_fw_cfg_path(paths.fw_cfg_root);
        fs::create_directories(raw.parent_path());
        std::ofstream(raw) << doc;
    }
    EngineSettingsState receive(const std::string& cmdline = "quiet cordon.engine=fw_cfg") {
        return receive_engine_settings(cmdline, paths);
    }
    json base() const { return json::parse(cordon::read_file(paths.daemon_base_json)); }
    fs::path root;
    EngineSettingsPaths paths;
};

}  // namespace

TEST_F(EngineSettingsReceiver, TheHostsCasFollowTheImagesAndRegistryKeysReachDaemonJson) {
    host_sent(json({{"version", 1},
                    {"registryMirrors", {"https://mirror.example"}},
                    {"insecureRegistries", {"10.0.2.2:5000"}},
                    {"dns", {"9.9.9.9"}},
                    {"caCertificates", kHostCa}})
                  .dump());
    const auto st = receive();
    EXPECT_EQ(st.state, "ok") << st.message;
    EXPECT_EQ(cordon::read_file(paths.ca_bundle), kImageCa + kHostCa);
    const json cfg = base();
    EXPECT_EQ(cfg["registry-mirrors"], json({"https://mirror.example"}));
    EXPECT_EQ(cfg["insecure-registries"], json({"10.0.2.2:5000"}));
    EXPECT_EQ(cfg["dns"], json({"9.9.9.9"}));
    EXPECT_EQ(cfg["host-gateway-ip"], "10.0.2.2");  // the image's keys stay
    // A second agent (restarted by init) writes the same bytes: nothing appended twice.
    receive();
    EXPECT_EQ(cordon::read_file(paths.ca_bundle), kImageCa + kHostCa);
}

TEST_F(EngineSettingsReceiver, NothingSentLeavesTheImagesConfigurationAndBundle) {
    const auto st = receive("quiet");
    EXPECT_EQ(st.state, "none");
    EXPECT_FALSE(fs::exists(paths.ca_bundle));
    EXPECT_EQ(base(), json::parse(cordon::read_file(paths.image_daemon_json)));
}

TEST_F(EngineSettingsReceiver, ABadDocumentChangesNothingAndSaysWhy) {
    host_sent(json({{"version", 1}, {"dns", {"1.1.1.1"}}, {"caCertificates", "junk"}}).dump());
    const auto st = receive();
    EXPECT_EQ(st.state, "error");
    EXPECT_NE(st.message.find("not a PEM certificate"), std::string::npos) << st.message;
    EXPECT_FALSE(fs::exists(paths.ca_bundle));
    EXPECT_FALSE(base().contains("dns"));  // not half-applied
}

TEST_F(EngineSettingsReceiver, AnnouncedButMissingIsAnError) {
    const auto st = receive();
    EXPECT_EQ(st.state, "error");
    EXPECT_NE(st.message.find("there are none"), std::string::npos) << st.message;
    EXPECT_EQ(base(), json::parse(cordon::read_file(paths.image_daemon_json)));
}

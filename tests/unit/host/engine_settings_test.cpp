// The engine settings on the host: registry_mirrors, insecure_registries, dns and
// extra_ca_certs checked when set (each with a value refused and one accepted), CA files
// parsed with OpenSSL, and the document vmctl hands to the guest at start.
#include "cordon/engine_settings.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cordon/host/ca_certs.hpp"
#include "cordon/host/engine_document.hpp"
#include "cordon/host/host_error.hpp"
#include "cordon/host/settings.hpp"
#include "test_certs.hpp"
#include "test_dir.hpp"

using namespace cordon::host;
using cordon::host::test::kTestCa1;
using cordon::host::test::kTestCa2;
using cordon::host::test::slurp;
using cordon::host::test::TempDir;
using nlohmann::json;

namespace {

class EngineSettings_ : public ::testing::Test {
  protected:
    TempDir dir;
    SettingsFiles files{dir / "user/settings.json", dir / "admin/admin-settings.json"};
    LayeredSettings load() { return LayeredSettings::load(files); }
    // The message of the HostError that `f` throws ("" when it does not throw).
    template <typename F>
    static std::string error_of(F&& f) {
        try {
            f();
        } catch (const HostError& e) {
            return e.what();
        }
        return {};
    }
    void set(const std::string& key, const std::string& text) {
        load().set_user(key, parse_setting_text(key, text));
    }
};

// A certificate block whose base64 is well formed but whose DER is not a certificate.
const char* kNotACertificate =
    "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGUgYXQgYWxs\n-----END CERTIFICATE-----\n";

}  // namespace

TEST_F(EngineSettings_, DefaultsAreEmptyLists) {
    const Settings s = load().effective();
    EXPECT_TRUE(s.registry_mirrors.empty());
    EXPECT_TRUE(s.insecure_registries.empty());
    EXPECT_TRUE(s.dns.empty());
    EXPECT_TRUE(s.extra_ca_certs.empty());
}

TEST_F(EngineSettings_, RegistryMirrorsTakeHttpUrlsOfAHostOnly) {
    set("registry_mirrors", "https://mirror.example.com,http://10.1.2.3:5000/");
    EXPECT_EQ(load().effective().registry_mirrors,
              (std::vector<std::string>{"https://mirror.example.com", "http://10.1.2.3:5000/"}));
    for (const char* bad : {"mirror.example.com", "ftp://m.example", "https://m.example/path",
                            "https://m.example:99999", "https://bad_host", "https://"}) {
        const std::string err = error_of([&] { set("registry_mirrors", bad); });
        EXPECT_NE(err.find("registry_mirrors"), std::string::npos) << bad << ": " << err;
        EXPECT_NE(err.find("http:// or https://"), std::string::npos) << err;
    }
    EXPECT_EQ(load().effective().registry_mirrors.size(), 2u);  // the refused ones: not written
}

TEST_F(EngineSettings_, InsecureRegistriesTakeHostPortOrCidr) {
    set("insecure_registries", "registry.local:5000,10.0.0.0/8,[::1]:5000,myhost");
    EXPECT_EQ(load().effective().insecure_registries.size(), 4u);
    for (const char* bad : {"http://registry.local:5000", "10.0.0.0/33", "a b", "host:0",
                            "host:port", "registry.local/path"}) {
        const std::string err = error_of([&] { set("insecure_registries", bad); });
        EXPECT_NE(err.find("host[:port]"), std::string::npos) << bad << ": " << err;
    }
}

TEST_F(EngineSettings_, DnsTakesIpAddresses) {
    set("dns", "1.1.1.1,2606:4700::1111");
    EXPECT_EQ(load().effective().dns, (std::vector<std::string>{"1.1.1.1", "2606:4700::1111"}));
    for (const char* bad : {"dns.example", "1.1.1", "1.1.1.1:53", "256.1.1.1"}) {
        const std::string err = error_of([&] { set("dns", bad); });
        EXPECT_NE(err.find("IPv4 or IPv6"), std::string::npos) << bad << ": " << err;
    }
    set("dns", "");  // the empty text is the empty list: the VM's own servers again
    EXPECT_TRUE(load().effective().dns.empty());
}

TEST_F(EngineSettings_, ListsRoundTripThroughTheirText) {
    const json v = parse_setting_text("dns", "1.1.1.1,8.8.8.8");
    EXPECT_EQ(setting_text(v), "1.1.1.1,8.8.8.8");
    EXPECT_EQ(parse_setting_text("dns", setting_text(v)), v);
}

TEST_F(EngineSettings_, ABadListInTheUserFileNamesTheKeyAtLoad) {
    dir.write("user/settings.json", R"({"dns": ["not-an-ip"]})");
    const std::string err = error_of([&] { load(); });
    EXPECT_NE(err.find("'dns'"), std::string::npos) << err;
    EXPECT_NE(err.find("settings.json"), std::string::npos) << err;
}

TEST_F(EngineSettings_, ExtraCaCertsAcceptsPemFilesOfCertificates) {
    const auto one = dir.write("ca/one.pem", kTestCa1);
    const auto two = dir.write("ca/two.pem", std::string(kTestCa1) + "\n" + kTestCa2);
    set("extra_ca_certs", one.string() + "," + two.string());
    EXPECT_EQ(load().effective().extra_ca_certs.size(), 2u);
}

TEST_F(EngineSettings_, ExtraCaCertsRefusesWhatIsNotACertificateAndWritesNothing) {
    const auto good = dir.write("ca/good.pem", kTestCa1);
    set("extra_ca_certs", good.string());
    const std::string before = slurp(files.user);
    struct Case {
        const char* name;
        std::string content;
        const char* says;
    };
    const Case cases[] = {
        {"garbage.pem", "hello\n", "expected -----BEGIN CERTIFICATE-----"},
        {"key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
         "expected -----BEGIN CERTIFICATE-----"},
        {"cut.pem", std::string(kTestCa1).substr(0, 120), "-----END CERTIFICATE----- is missing"},
        {"empty.pem", "", "no PEM certificate"},
        {"der.pem", kNotACertificate, "does not parse as X.509"},
        {"bad64.pem", "-----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----\n",
         "not base64"},
    };
    for (const auto& c : cases) {
        const auto bad = dir.write("ca/" + std::string(c.name), c.content);
        const std::string err =
            error_of([&] { set("extra_ca_certs", good.string() + "," + bad.string()); });
        EXPECT_NE(err.find(bad.string()), std::string::npos) << c.name << ": " << err;
        EXPECT_NE(err.find(c.says), std::string::npos) << c.name << ": " << err;
        EXPECT_NE(err.find("extra_ca_certs"), std::string::npos) << c.name << ": " << err;
        EXPECT_EQ(slurp(files.user), before) << c.name;  // never half-written
    }
    const std::string missing =
        error_of([&] { set("extra_ca_certs", (dir / "ca/nowhere.pem").string()); });
    EXPECT_NE(missing.find("nowhere.pem"), std::string::npos) << missing;
    EXPECT_NE(missing.find("cannot read"), std::string::npos) << missing;
    EXPECT_NE(error_of([&] { set("extra_ca_certs", "relative.pem"); }).find("absolute path"),
              std::string::npos);
}

TEST_F(EngineSettings_, TheDocumentHoldsTheHostBundleThenTheExtraFiles) {
    const auto host = dir.write("host/ca-certificates.crt", kTestCa2);
    const auto extra = dir.write("ca/extra.pem", kTestCa1);
    Settings s;
    s.registry_mirrors = {"https://mirror.example"};
    s.insecure_registries = {"10.0.2.2:5000"};
    s.dns = {"9.9.9.9"};
    s.extra_ca_certs = {extra.string()};
    const auto doc = cordon::parse_engine_document(engine_document_for(s, host.string()));
    EXPECT_EQ(doc.registry_mirrors, s.registry_mirrors);
    EXPECT_EQ(doc.insecure_registries, s.insecure_registries);
    EXPECT_EQ(doc.dns, s.dns);
    EXPECT_EQ(doc.ca_certificates, std::string(kTestCa2) + kTestCa1);
    // No host bundle (another distribution's path): the extra files alone.
    EXPECT_EQ(cordon::parse_engine_document(engine_document_for(s, (dir / "none").string()))
                  .ca_certificates,
              kTestCa1);
}

TEST_F(EngineSettings_, AStartWithAFileBrokenSinceItWasSetNamesTheFileAndTheSetting) {
    const auto extra = dir.write("ca/extra.pem", kTestCa1);
    Settings s;
    s.extra_ca_certs = {extra.string()};
    dir.write("ca/extra.pem", "overwritten by something else\n");
    const std::string err =
        error_of([&] { (void)engine_document_for(s, (dir / "none").string()); });
    EXPECT_NE(err.find(extra.string()), std::string::npos) << err;
    EXPECT_NE(err.find("extra_ca_certs"), std::string::npos) << err;
}

TEST_F(EngineSettings_, ABrokenHostBundleIsLeftOutNotFatal) {
    const auto host = dir.write("host/ca-certificates.crt", "junk\n");
    Settings s;
    EXPECT_EQ(cordon::parse_engine_document(engine_document_for(s, host.string())).ca_certificates,
              "");
}

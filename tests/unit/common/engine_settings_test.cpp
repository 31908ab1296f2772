// The engine settings document between host and guest (cordon/engine_settings.hpp): what
// the host writes the guest reads back; anything else is refused whole.
#include "cordon/engine_settings.hpp"

#include <gtest/gtest.h>

#include "cordon/error.hpp"

using cordon::EngineSettings;
using nlohmann::json;

namespace {

const char* kPem =
    "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGUgYXQgYWxs\n-----END CERTIFICATE-----\n";

std::string refusal(const std::string& text) {
    try {
        cordon::parse_engine_document(text);
    } catch (const cordon::Error& e) {
        return e.what();
    }
    return {};
}

}  // namespace

TEST(EngineDocument, RoundTrips) {
    EngineSettings s{
        {"https://mirror.example"}, {"10.0.2.2:5000", "10.0.0.0/8"}, {"1.1.1.1"}, kPem};
    EXPECT_EQ(cordon::parse_engine_document(cordon::engine_document(s)), s);
    EXPECT_EQ(cordon::parse_engine_document(cordon::engine_document({})), EngineSettings{});
}

TEST(EngineDocument, TheHostRefusesToWriteABadValue) {
    EXPECT_THROW(cordon::engine_document({{"mirror.example"}, {}, {}, ""}), cordon::Error);
    EXPECT_THROW(cordon::engine_document({{}, {}, {}, "not pem"}), cordon::Error);
}

TEST(EngineDocument, TheGuestRefusesWhatTheHostWouldNotWrite) {
    EXPECT_NE(refusal("[]").find("not a JSON object"), std::string::npos);
    EXPECT_NE(refusal(R"({"version": 2})").find("version"), std::string::npos);
    EXPECT_NE(refusal(R"({"version": 1, "tls": true})").find("unknown engine setting tls"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"version": 1, "dns": ["x"]})").find("IPv4 or IPv6"), std::string::npos);
    EXPECT_NE(refusal(R"({"version": 1, "dns": "1.1.1.1"})").find("array"), std::string::npos);
    EXPECT_NE(refusal(R"({"version": 1, "insecureRegistries": ["http://r:5000"]})")
                  .find("insecureRegistries"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"version": 1, "caCertificates": "-----BEGIN CERTIFICATE-----\n"})")
                  .find("is missing"),
              std::string::npos);
    EXPECT_NE(refusal(std::string(cordon::kMaxEngineDocument + 1, ' ')).find("too large"),
              std::string::npos);
}

TEST(EngineDocument, MergesRegistryKeysIntoDaemonJsonAndLeavesEmptyListsOut) {
    json cfg = {{"dns", {"8.8.8.8"}}, {"iptables", false}};
    cordon::merge_into_daemon_config({{"https://m.example"}, {"r:5000"}, {}, ""}, cfg);
    EXPECT_EQ(cfg["registry-mirrors"], json({"https://m.example"}));
    EXPECT_EQ(cfg["insecure-registries"], json({"r:5000"}));
    EXPECT_EQ(cfg["dns"], json({"8.8.8.8"}));  // not sent: the image's value stands
    EXPECT_EQ(cfg["iptables"], false);
}

// Hints the proxy adds to dockerd's errors that a Cordon setting fixes.
#include "cordon/proxy/error_hints.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using cordon::policy::add_setting_hint;

TEST(ErrorHints, AnUnknownCaNamesExtraCaCerts) {
    const auto out = add_setting_hint(
        R"({"message":"Get \"https://10.0.2.2:5000/v2/\": x509: certificate signed by unknown authority"})");
    ASSERT_TRUE(out);
    const auto msg = nlohmann::json::parse(*out)["message"].get<std::string>();
    EXPECT_EQ(msg.rfind("Get \"https://10.0.2.2:5000/v2/\": x509: certificate signed by unknown "
                        "authority (Cordon: ",
                        0),
              0u)
        << msg;
    EXPECT_NE(msg.find("vmctl settings set extra_ca_certs"), std::string::npos) << msg;
}

TEST(ErrorHints, PlainHttpNamesInsecureRegistries) {
    const auto out =
        add_setting_hint(R"({"message":"http: server gave HTTP response to HTTPS client"})");
    ASSERT_TRUE(out);
    EXPECT_NE(out->find("insecure_registries"), std::string::npos);
}

TEST(ErrorHints, OtherErrorsAndOtherBodiesPassUnchanged) {
    EXPECT_FALSE(add_setting_hint(R"({"message":"No such image: x"})"));
    EXPECT_FALSE(add_setting_hint("x509: certificate signed by unknown authority"));  // not JSON
    EXPECT_FALSE(add_setting_hint(R"({"message":42})"));
    EXPECT_FALSE(add_setting_hint(R"(["x509: certificate signed by unknown authority"])"));
    // Hinted once only (a retried request through a second proxy would not double it).
    const auto once = add_setting_hint(R"({"message":"x509: certificate is not trusted"})");
    ASSERT_TRUE(once);
    EXPECT_FALSE(add_setting_hint(*once));
    // Too large to be read whole: forwarded as it is.
    EXPECT_FALSE(add_setting_hint(R"({"message":"x509: certificate signed by unknown authority)" +
                                  std::string(cordon::policy::kMaxHintedErrorBody, ' ') + "\"}"));
}

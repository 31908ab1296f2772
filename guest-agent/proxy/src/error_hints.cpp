#include "cordon/proxy/error_hints.hpp"

#include <nlohmann/json.hpp>

namespace cordon::policy {

std::optional<std::string> setting_hint(std::string_view message) {
    if (message.find("extra_ca_certs") != std::string_view::npos ||
        message.find("insecure_registries") != std::string_view::npos)
        return std::nullopt;  // hinted already
    if (message.find("x509: certificate signed by unknown authority") != std::string_view::npos ||
        message.find("x509: certificate is not trusted") != std::string_view::npos)
        return std::string(
            "Cordon: the VM trusts the public CAs, the host's /etc/ssl/certs and the files of "
            "the setting extra_ca_certs; add this registry's CA with `vmctl settings set "
            "extra_ca_certs /path/to/ca.pem`, then `vmctl restart`");
    if (message.find("server gave HTTP response to HTTPS client") != std::string_view::npos)
        return std::string(
            "Cordon: to use a registry without TLS, add it (HOST:PORT) to the setting "
            "insecure_registries with `vmctl settings set insecure_registries HOST:PORT`, then "
            "`vmctl restart`");
    return std::nullopt;
}

std::optional<std::string> add_setting_hint(std::string_view json_body) {
    if (json_body.size() > kMaxHintedErrorBody)
        return std::nullopt;
    auto doc = nlohmann::json::parse(json_body, nullptr, false);
    if (!doc.is_object() || !doc.contains("message") || !doc["message"].is_string())
        return std::nullopt;
    const auto hint = setting_hint(doc["message"].get<std::string>());
    if (!hint)
        return std::nullopt;
    doc["message"] = doc["message"].get<std::string>() + " (" + *hint + ")";
    return doc.dump() + "\n";
}

}  // namespace cordon::policy

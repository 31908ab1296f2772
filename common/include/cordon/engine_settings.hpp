#pragma once
// The user's engine settings that the host hands to the guest at every start
// (docs/ARCHITECTURE.md, "The engine settings travel in QEMU fw_cfg"): registry mirrors,
// insecure registries, DNS servers for containers, and the CA certificates the engine
// trusts beyond the image's public bundle (the host's trust store and extra_ca_certs).
//
// The host checks each value when it is set (vmctl settings set) and again at start, and
// writes engine_document(); the guest reads it with parse_engine_document(), which checks
// the same rules again, merges the registry keys into dockerd's daemon.json and the
// certificates into the system CA bundle before dockerd starts.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace cordon {

struct EngineSettings {
    std::vector<std::string> registry_mirrors;     // "https://mirror.example:5000"
    std::vector<std::string> insecure_registries;  // "host:port" or a CIDR "10.0.0.0/8"
    std::vector<std::string> dns;                  // IPv4 or IPv6 addresses
    std::string ca_certificates;                   // PEM: CERTIFICATE blocks only

    bool operator==(const EngineSettings&) const = default;
};

// Each returns an empty string when the value is valid, else what was expected (for a
// message "must be <expected>").
std::string check_registry_mirror(std::string_view url);
std::string check_insecure_registry(std::string_view value);
std::string check_dns_server(std::string_view ip);

// Checks that `pem` is one or more PEM "CERTIFICATE" blocks (whitespace between them;
// base64 bodies). Syntax only: the host also parses each with OpenSSL (ca_certs.hpp).
// Throws cordon::Error naming `subject` (a file) and the line that is wrong.
void check_pem_certificate_blocks(std::string_view pem, const std::string& subject);

// {"version": 1, "registryMirrors": [...], "insecureRegistries": [...], "dns": [...],
//  "caCertificates": "<PEM>"}. Throws cordon::Error when a value is invalid or the
// document would exceed kMaxEngineDocument.
std::string engine_document(const EngineSettings& settings);
// Parses it strictly (unknown keys, another version, bad values: cordon::Error).
EngineSettings parse_engine_document(std::string_view text);

// The keys dockerd's daemon.json gets ("registry-mirrors", "insecure-registries", "dns");
// empty lists are left out so the image's defaults stand.
void merge_into_daemon_config(const EngineSettings& settings, nlohmann::json& daemon_config);

// Room for a host trust store (Debian's: ~220 KB) and a few extra CAs.
inline constexpr std::size_t kMaxEngineDocument = 4 * 1024 * 1024;

}  // namespace cordon

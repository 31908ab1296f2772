#include "cordon/engine_settings.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "cordon/error.hpp"

namespace cordon {

namespace {

using nlohmann::json;

bool is_ipv4(std::string_view s) {
    in_addr a{};
    return ::inet_pton(AF_INET, std::string(s).c_str(), &a) == 1;
}

bool is_ipv6(std::string_view s) {
    in6_addr a{};
    return ::inet_pton(AF_INET6, std::string(s).c_str(), &a) == 1;
}

bool is_dns_name(std::string_view s) {
    if (s.empty() || s.size() > 253)
        return false;
    std::size_t start = 0;
    while (start <= s.size()) {
        const std::size_t dot = std::min(s.find('.', start), s.size());
        const std::string_view label = s.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        for (char c : label)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
                return false;
        start = dot + 1;
    }
    return true;
}

bool is_port(std::string_view s) {
    if (s.empty() || s.size() > 5)
        return false;
    unsigned n = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return false;
        n = n * 10 + static_cast<unsigned>(c - '0');
    }
    return n >= 1 && n <= 65535;
}

// host, host:port, [v6] or [v6]:port.
bool is_host_port(std::string_view s) {
    if (!s.empty() && s.front() == '[') {
        const auto close = s.find(']');
        if (close == std::string_view::npos || !is_ipv6(s.substr(1, close - 1)))
            return false;
        const auto rest = s.substr(close + 1);
        return rest.empty() || (rest.front() == ':' && is_port(rest.substr(1)));
    }
    const auto colon = s.rfind(':');
    const auto host = colon == std::string_view::npos ? s : s.substr(0, colon);
    if (colon != std::string_view::npos && !is_port(s.substr(colon + 1)))
        return false;
    return is_ipv4(host) || is_dns_name(host);
}

bool is_cidr(std::string_view s) {
    const auto slash = s.find('/');
    if (slash == std::string_view::npos)
        return false;
    const auto addr = s.substr(0, slash), bits = s.substr(slash + 1);
    if (bits.empty() || bits.size() > 3 || !std::all_of(bits.begin(), bits.end(), ::isdigit))
        return false;
    const int n = std::stoi(std::string(bits));
    if (is_ipv4(addr))
        return n <= 32;
    return is_ipv6(addr) && n <= 128;
}

std::string base64_line_error(std::string_view line) {
    if (line.size() > 76)
        return "a base64 line is longer than 76 characters";
    for (char c : line)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=')
            return "a base64 line holds a character that is not base64";
    return {};
}

void require_engine_setting(bool ok, const std::string& key, const std::string& expected) {
    if (!ok)
        throw Error("bad engine setting " + key + ": it must be " + expected, key,
                    "fix it with vmctl settings set (see docs/VMCTL.md)");
}

std::vector<std::string> read_list(const json& doc, const char* key,
                                   std::string (*check)(std::string_view)) {
    std::vector<std::string> out;
    auto it = doc.find(key);
    if (it == doc.end())
        return out;
    require_engine_setting(it->is_array(), key, "an array of strings");
    for (const auto& e : *it) {
        require_engine_setting(e.is_string(), key, "an array of strings");
        const std::string expected = check(e.get<std::string>());
        require_engine_setting(expected.empty(), key, expected + " (not " + e.dump() + ")");
        out.push_back(e.get<std::string>());
    }
    return out;
}

void check_list(const std::vector<std::string>& values, const char* key,
                std::string (*check)(std::string_view)) {
    for (const auto& v : values) {
        const std::string expected = check(v);
        require_engine_setting(expected.empty(), key, expected + " (not \"" + v + "\")");
    }
}

}  // namespace

std::string check_registry_mirror(std::string_view url) {
    const std::string expected = "an http:// or https:// URL of a host[:port], without a path";
    std::string_view rest;
    if (url.starts_with("https://"))
        rest = url.substr(8);
    else if (url.starts_with("http://"))
        rest = url.substr(7);
    else
        return expected;
    if (rest.ends_with('/'))
        rest.remove_suffix(1);
    return is_host_port(rest) ? std::string() : expected;
}

std::string check_insecure_registry(std::string_view value) {
    if (is_host_port(value) || is_cidr(value))
        return {};
    return "a registry as host[:port] (no http://) or a network as a CIDR (10.0.0.0/8)";
}

std::string check_dns_server(std::string_view ip) {
    if (is_ipv4(ip) || is_ipv6(ip))
        return {};
    return "an IPv4 or IPv6 address";
}

void check_pem_certificate_blocks(std::string_view pem, const std::string& subject) {
    constexpr std::string_view begin = "-----BEGIN CERTIFICATE-----";
    constexpr std::string_view end = "-----END CERTIFICATE-----";
    const std::string hint =
        "give a file of PEM certificates (-----BEGIN CERTIFICATE----- ... "
        "-----END CERTIFICATE-----), e.g. from openssl x509 -outform PEM";
    bool inside = false;
    std::size_t blocks = 0, lineno = 0, body_lines = 0, pos = 0;
    while (pos < pem.size()) {
        const std::size_t nl = std::min(pem.find('\n', pos), pem.size());
        std::string_view line = pem.substr(pos, nl - pos);
        pos = nl + 1;
        ++lineno;
        if (line.ends_with('\r'))
            line.remove_suffix(1);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
        const std::string where = " (line " + std::to_string(lineno) + ")";
        if (!inside) {
            if (line.empty() || line.starts_with('#'))
                continue;
            if (line != begin)
                throw Error("not a PEM certificate: expected " + std::string(begin) + where,
                            subject, hint);
            inside = true;
            body_lines = 0;
            continue;
        }
        if (line == end) {
            if (body_lines == 0)
                throw Error("empty PEM certificate" + where, subject, hint);
            inside = false;
            ++blocks;
            continue;
        }
        const std::string bad = base64_line_error(line);
        if (!bad.empty() || line.empty())
            throw Error("not a PEM certificate: " + (bad.empty() ? "an empty line" : bad) + where,
                        subject, hint);
        ++body_lines;
    }
    if (inside)
        throw Error("not a PEM certificate: " + std::string(end) + " is missing", subject, hint);
    if (blocks == 0)
        throw Error("no PEM certificate in the file", subject, hint);
}

std::string engine_document(const EngineSettings& s) {
    check_list(s.registry_mirrors, "registryMirrors", check_registry_mirror);
    check_list(s.insecure_registries, "insecureRegistries", check_insecure_registry);
    check_list(s.dns, "dns", check_dns_server);
    if (!s.ca_certificates.empty())
        check_pem_certificate_blocks(s.ca_certificates, "caCertificates");
    const json doc = {{"version", 1},
                      {"registryMirrors", s.registry_mirrors},
                      {"insecureRegistries", s.insecure_registries},
                      {"dns", s.dns},
                      {"caCertificates", s.ca_certificates}};
    std::string text = doc.dump();
    if (text.size() > kMaxEngineDocument)
        throw Error("the engine settings are too large for the VM (" + std::to_string(text.size()) +
                        " bytes, at most " + std::to_string(kMaxEngineDocument) + ")",
                    "extra_ca_certs", "give fewer or smaller CA files");
    return text;
}

EngineSettings parse_engine_document(std::string_view text) {
    if (text.size() > kMaxEngineDocument)
        throw Error("the engine settings document is too large", "engine settings",
                    "the host sends at most " + std::to_string(kMaxEngineDocument) + " bytes");
    const json doc = json::parse(text, nullptr, false);
    if (!doc.is_object())
        throw Error("the engine settings document is not a JSON object", "engine settings",
                    "start the VM with vmctl (it writes the document)");
    static const char* known[] = {"version", "registryMirrors", "insecureRegistries", "dns",
                                  "caCertificates"};
    for (const auto& item : doc.items()) {
        const std::string& key = item.key();
        if (std::find_if(std::begin(known), std::end(known),
                         [&](const char* k) { return key == k; }) == std::end(known))
            throw Error("unknown engine setting " + key, key,
                        "the host and the guest agent are of different versions: rebuild");
    }
    require_engine_setting(doc.contains("version") && doc["version"] == 1, "version", "1");
    EngineSettings s;
    s.registry_mirrors = read_list(doc, "registryMirrors", check_registry_mirror);
    s.insecure_registries = read_list(doc, "insecureRegistries", check_insecure_registry);
    s.dns = read_list(doc, "dns", check_dns_server);
    if (auto it = doc.find("caCertificates"); it != doc.end()) {
        require_engine_setting(it->is_string(), "caCertificates", "a string of PEM certificates");
        s.ca_certificates = it->get<std::string>();
        if (!s.ca_certificates.empty())
            check_pem_certificate_blocks(s.ca_certificates, "caCertificates");
    }
    return s;
}

void merge_into_daemon_config(const EngineSettings& s, json& cfg) {
    if (!s.registry_mirrors.empty())
        cfg["registry-mirrors"] = s.registry_mirrors;
    if (!s.insecure_registries.empty())
        cfg["insecure-registries"] = s.insecure_registries;
    if (!s.dns.empty())
        cfg["dns"] = s.dns;
}

}  // namespace cordon

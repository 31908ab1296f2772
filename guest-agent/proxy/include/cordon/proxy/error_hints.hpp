#pragma once
// Hints on dockerd's errors that a Cordon setting fixes. dockerd says what failed ("x509:
// certificate signed by unknown authority") but not that the VM's trust store is made by
// the host's extra_ca_certs setting; the proxy appends that to the error's message.
#include <optional>
#include <string>
#include <string_view>

namespace cordon::policy {

// The hint for an engine error message, or nullopt.
std::optional<std::string> setting_hint(std::string_view message);

// dockerd's JSON error body ({"message": "..."}) with the hint appended to "message";
// nullopt when the body is not such an object or no hint applies (forward it unchanged).
std::optional<std::string> add_setting_hint(std::string_view json_body);

// The largest error body the proxy reads whole to add a hint.
inline constexpr std::size_t kMaxHintedErrorBody = 64 * 1024;

}  // namespace cordon::policy

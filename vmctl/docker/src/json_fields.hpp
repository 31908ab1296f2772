#pragma once
// Tolerant field readers for the engine's JSON: a missing or mistyped field reads
// as empty, zero or absent.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace cordon::host::docker::fields {

inline std::string text(const nlohmann::json& obj, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_string())
        return {};
    return it->get<std::string>();
}

inline std::int64_t integer(const nlohmann::json& obj, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number())
        return 0;
    return it->is_number_float() ? static_cast<std::int64_t>(it->get<double>())
                                 : it->get<std::int64_t>();
}

inline std::optional<std::uint64_t> unsigned_number(const nlohmann::json& obj, const char* key) {
    if (!obj.is_object())
        return std::nullopt;
    auto it = obj.find(key);
    if (it == obj.end())
        return std::nullopt;
    if (it->is_number_unsigned())
        return it->get<std::uint64_t>();
    if (it->is_number_integer() && it->get<std::int64_t>() >= 0)
        return static_cast<std::uint64_t>(it->get<std::int64_t>());
    return std::nullopt;
}

inline const nlohmann::json* object(const nlohmann::json& obj, const char* key) {
    if (!obj.is_object())
        return nullptr;
    auto it = obj.find(key);
    return it != obj.end() && it->is_object() ? &*it : nullptr;
}

inline std::map<std::string, std::string> labels(const nlohmann::json& obj, const char* key) {
    std::map<std::string, std::string> out;
    if (const nlohmann::json* l = object(obj, key)) {
        for (auto it = l->begin(); it != l->end(); ++it) {
            if (it->is_string())
                out[it.key()] = it->get<std::string>();
        }
    }
    return out;
}

}  // namespace cordon::host::docker::fields

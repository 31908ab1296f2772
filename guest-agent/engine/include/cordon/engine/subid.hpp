#pragma once
// Subordinate ID ranges (/etc/subuid, /etc/subgid): "name:start:count" lines.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cordon::engine {

struct IdRange {
    std::uint32_t start = 0;
    std::uint32_t count = 0;
    bool contains(std::uint32_t id) const { return id >= start && id - start < count; }
    bool operator==(const IdRange&) const = default;
};

// The first range that names `user` (by name or numeric uid text) in the file's text.
// Throws cordon::Error naming `source` and the line when a line for `user` is malformed.
std::optional<IdRange> find_subid_range(std::string_view file_text, std::string_view user,
                                        std::string_view source);

// Reads the file and calls find_subid_range; a missing file yields nullopt.
std::optional<IdRange> read_subid_range(const std::string& path, std::string_view user);

}  // namespace cordon::engine

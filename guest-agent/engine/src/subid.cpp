#include "cordon/engine/subid.hpp"

#include <charconv>
#include <fstream>
#include <sstream>

#include "cordon/error.hpp"

namespace cordon::engine {
namespace {

bool parse_u32(std::string_view text, std::uint32_t& out) {
    if (text.empty()) return false;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

std::optional<IdRange> find_subid_range(std::string_view text, std::string_view user,
                                        std::string_view source) {
    std::size_t line_no = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;
        if (line.empty() || line.front() == '#') continue;
        const auto c1 = line.find(':');
        if (c1 == std::string_view::npos || line.substr(0, c1) != user) continue;
        const auto rest = line.substr(c1 + 1);
        const auto c2 = rest.find(':');
        IdRange r;
        if (c2 == std::string_view::npos || !parse_u32(rest.substr(0, c2), r.start) ||
            !parse_u32(rest.substr(c2 + 1), r.count) || r.count == 0 ||
            r.start > UINT32_MAX - r.count) {
            throw Error("malformed subordinate ID line " + std::to_string(line_no),
                        std::string(source),
                        "each line must be NAME:START:COUNT with COUNT > 0, e.g. cordon:100000:65536");
        }
        return r;
    }
    return std::nullopt;
}

std::optional<IdRange> read_subid_range(const std::string& path, std::string_view user) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    return find_subid_range(ss.str(), user, path);
}

}  // namespace cordon::engine

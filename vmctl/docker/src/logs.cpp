#include "cordon/host/docker/logs.hpp"

#include <algorithm>
#include <ctime>

#include "cordon/host/docker/client.hpp"

namespace cordon::host::docker {
namespace {

constexpr std::size_t kFrameHeader = 8;

bool frame_header_at(const std::string& body, std::size_t pos) {
    if (body.size() < pos + kFrameHeader)
        return false;
    const auto stream = static_cast<unsigned char>(body[pos]);
    return stream <= 2 && body[pos + 1] == 0 && body[pos + 2] == 0 && body[pos + 3] == 0;
}

std::size_t frame_length(const std::string& body, std::size_t pos) {
    std::size_t n = 0;
    for (std::size_t i = 4; i < kFrameHeader; ++i)
        n = (n << 8) | static_cast<unsigned char>(body[pos + i]);
    return n;
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// "2026-12-07T14:00:00" at the start, as RFC 3339 begins.
bool starts_with_stamp(const std::string& s) {
    if (s.size() < 20)
        return false;
    for (std::size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u, 11u, 12u, 14u, 15u, 17u, 18u})
        if (!is_digit(s[i]))
            return false;
    return s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':';
}

}  // namespace

std::string demux_logs(const std::string& body, const std::string& content_type) {
    bool multiplexed;
    if (content_type.find("multiplexed-stream") != std::string::npos)
        multiplexed = true;
    else if (content_type.find("raw-stream") != std::string::npos)
        multiplexed = false;
    else
        multiplexed = frame_header_at(body, 0);
    if (!multiplexed)
        return body;
    std::string out;
    out.reserve(body.size());
    std::size_t pos = 0;
    while (pos < body.size()) {
        if (!frame_header_at(body, pos)) {
            out.append(body, pos, std::string::npos);  // not a frame: keep the bytes as they are
            break;
        }
        const std::size_t len = frame_length(body, pos);
        pos += kFrameHeader;
        const std::size_t take = std::min(len, body.size() - pos);
        out.append(body, pos, take);
        pos += take;
    }
    return out;
}

std::vector<StampedLine> split_stamped_lines(const std::string& text) {
    std::vector<StampedLine> out;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        std::string line = text.substr(start, end - start);
        start = end + 1;
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        StampedLine l;
        const std::size_t space = line.find(' ');
        if (starts_with_stamp(line) && space != std::string::npos) {
            l.stamp = line.substr(0, space);
            l.text = line.substr(space + 1);
        } else if (starts_with_stamp(line) && line.find(' ') == std::string::npos) {
            l.stamp = line;  // an empty line, stamped
        } else {
            l.text = std::move(line);
        }
        out.push_back(std::move(l));
    }
    return out;
}

std::int64_t stamp_seconds(const std::string& stamp) {
    if (!starts_with_stamp(stamp))
        return -1;
    std::tm tm{};
    tm.tm_year = std::stoi(stamp.substr(0, 4)) - 1900;
    tm.tm_mon = std::stoi(stamp.substr(5, 2)) - 1;
    tm.tm_mday = std::stoi(stamp.substr(8, 2));
    tm.tm_hour = std::stoi(stamp.substr(11, 2));
    tm.tm_min = std::stoi(stamp.substr(14, 2));
    tm.tm_sec = std::stoi(stamp.substr(17, 2));
    return static_cast<std::int64_t>(::timegm(&tm));
}

LogTail::LogTail(std::string container_id, int tail) : id_(std::move(container_id)), tail_(tail) {}

std::vector<std::string> LogTail::next(Client& client) {
    const bool first = last_stamp_.empty();
    const std::int64_t since = first ? 0 : stamp_seconds(last_stamp_);
    const std::string text = client.container_logs(id_, first ? tail_ : -1, since, true);
    std::vector<std::string> out;
    for (StampedLine& l : split_stamped_lines(text)) {
        if (!l.stamp.empty()) {
            if (!last_stamp_.empty() && l.stamp <= last_stamp_)
                continue;  // shown by an earlier call (since has whole seconds)
            last_stamp_ = l.stamp;
        }
        out.push_back(std::move(l.text));
    }
    return out;
}

}  // namespace cordon::host::docker

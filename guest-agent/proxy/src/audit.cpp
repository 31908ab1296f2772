#include "cordon/proxy/audit.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>

#include "cordon/error.hpp"
#include "cordon/log.hpp"

namespace cordon::policy {

std::string utc_now_rfc3339() {
    using namespace std::chrono;
    auto now = system_clock::now();
    auto secs = system_clock::to_time_t(now);
    auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03}Z", buf, ms);
}

nlohmann::json AuditEntry::to_json() const {
    return nlohmann::json{
        {"seq", seq},       {"time", time},      {"connection", connection}, {"role", role},
        {"method", method}, {"target", target},  {"operation", operation},   {"decision", decision},
        {"rule", rule},     {"message", message}};
}

namespace {
void append_json_string(std::string& out, std::string_view s) {
    static const char* hex = "0123456789abcdef";
    out.push_back('"');
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(static_cast<char>(c));
        } else if (c < 0x20 || c == 0x7F) {
            out += "\\u00";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        } else if (c >= 0x80) {
            // keep valid UTF-8, replace anything else (targets are client-controlled)
            std::size_t w = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
            bool ok = w != 0 && c < 0xF5 && i + w <= s.size();
            for (std::size_t k = 1; ok && k < w; ++k)
                ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
            if (ok) {
                out.append(s.substr(i, w));
                i += w;
                continue;
            }
            out += "\\ufffd";
        } else {
            out.push_back(static_cast<char>(c));
        }
        ++i;
    }
    out.push_back('"');
}
}  // namespace

std::string AuditEntry::to_json_line() const {
    std::string o;
    o.reserve(256 + target.size() + message.size());
    o += "{\"seq\":" + std::to_string(seq) + ",\"time\":";
    append_json_string(o, time);
    o += ",\"connection\":" + std::to_string(connection);
    const std::pair<const char*, const std::string*> fields[] = {
        {"role", &role},           {"method", &method},     {"target", &target},
        {"operation", &operation}, {"decision", &decision}, {"rule", &rule},
        {"message", &message}};
    for (const auto& [k, v] : fields) {
        o += ",\"";
        o += k;
        o += "\":";
        append_json_string(o, *v);
    }
    o += "}\n";
    return o;
}

AuditLog::~AuditLog() {
    flush();
}

void AuditLog::flush() {
    if (!fd_ || pending_.empty())
        return;
    // One write(2) per batch with O_APPEND: lines never interleave or tear.
    ssize_t n = ::write(fd_.get(), pending_.data(), pending_.size());
    if (n != static_cast<ssize_t>(pending_.size())) {
        if (write_errors_++ == 0)
            log::error("audit", "cannot append to {}: {}", path_, errno_string(errno));
    }
    pending_.clear();
}

AuditLog::AuditLog(std::size_t capacity, std::string file_path)
    : capacity_(capacity == 0 ? 1 : capacity), path_(std::move(file_path)) {
    if (!path_.empty()) {
        fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
        if (!fd_)
            throw_errno("cannot open the audit log", path_,
                        "check the folder exists and is writable by root");
    }
}

void AuditLog::record(AuditEntry e) {
    e.seq = ++seq_;
    if (e.time.empty())
        e.time = utc_now_rfc3339();
    if (e.target.size() > 1024)
        e.target.resize(1024);
    if (e.decision == "deny")
        ++denied_;
    if (fd_) {
        pending_ += e.to_json_line();
        if (e.decision != "allow" || pending_.size() > 32 * 1024)
            flush();
    }
    ring_.push_back(std::move(e));
    while (ring_.size() > capacity_) ring_.pop_front();
}

std::vector<AuditEntry> AuditLog::recent(std::size_t max) const {
    std::size_t n = std::min(max, ring_.size());
    return std::vector<AuditEntry>(ring_.end() - static_cast<std::ptrdiff_t>(n), ring_.end());
}

nlohmann::json AuditLog::recent_json(std::size_t max) const {
    auto arr = nlohmann::json::array();
    for (const auto& e : recent(max)) arr.push_back(e.to_json());
    return arr;
}

}  // namespace cordon::policy

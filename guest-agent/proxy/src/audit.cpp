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
    return nlohmann::json{{"seq", seq},       {"time", time},         {"connection", connection},
                          {"role", role},     {"method", method},     {"target", target},
                          {"operation", operation}, {"decision", decision}, {"rule", rule},
                          {"message", message}};
}

AuditLog::AuditLog(std::size_t capacity, std::string file_path)
    : capacity_(capacity == 0 ? 1 : capacity), path_(std::move(file_path)) {
    if (!path_.empty()) {
        fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
        if (!fd_) throw_errno("cannot open the audit log", path_, "check the folder exists and is writable by root");
    }
}

void AuditLog::record(AuditEntry e) {
    e.seq = ++seq_;
    if (e.time.empty()) e.time = utc_now_rfc3339();
    if (e.target.size() > 1024) e.target.resize(1024);
    if (e.decision == "deny") ++denied_;
    if (fd_) {
        // One write(2) per line with O_APPEND: lines never interleave or tear.
        std::string line = e.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        ssize_t n = ::write(fd_.get(), line.data(), line.size());
        if (n != static_cast<ssize_t>(line.size())) {
            if (write_errors_++ == 0)
                log::error("audit", "cannot append to {}: {}", path_, errno_string(errno));
        }
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

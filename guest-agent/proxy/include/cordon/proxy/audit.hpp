#pragma once
// The audit log of the Docker socket policy: every decision, kept in an in-memory ring
// (for the agent's RPC) and appended as one JSON line to a file (if a path is set).
#include <cstddef>
#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cordon/unique_fd.hpp"

namespace cordon::policy {

struct AuditEntry {
    std::uint64_t seq = 0;
    std::string time;  // RFC 3339 UTC with milliseconds
    std::uint64_t connection = 0;
    std::string role;  // "host" | "container"
    std::string method;
    std::string target;  // request-target, truncated to 1 KiB
    std::string operation;
    std::string decision;  // "allow" | "deny" | "error"
    std::string rule;
    std::string message;

    nlohmann::json to_json() const;
    std::string to_json_line() const;  // one line of the audit file, with '\n'
};

// Where decisions go. The proxy calls record() on its io_context thread.
class AuditSink {
  public:
    virtual ~AuditSink() = default;
    virtual void record(AuditEntry entry) = 0;
    // Pushes buffered entries to durable storage (the proxy calls it periodically).
    virtual void flush() {}
};

class AuditLog : public AuditSink {
  public:
    // file_path empty: memory only. Throws cordon::Error if the file cannot be opened.
    // Lines of allowed requests are batched (written at 32 KiB, at the next denial, at
    // flush() and on destruction); a denial is written at once with everything before it.
    explicit AuditLog(std::size_t capacity = 1000, std::string file_path = {});
    ~AuditLog() override;
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;

    void record(AuditEntry entry) override;
    void flush() override;
    // The newest `max` entries, oldest first (what the agent's RPC returns).
    std::vector<AuditEntry> recent(std::size_t max = SIZE_MAX) const;
    nlohmann::json recent_json(std::size_t max = SIZE_MAX) const;
    std::uint64_t total() const { return seq_; }
    std::uint64_t denied() const { return denied_; }
    std::uint64_t write_errors() const { return write_errors_; }

  private:
    std::size_t capacity_;
    std::string path_;
    UniqueFd fd_;
    std::deque<AuditEntry> ring_;
    std::string pending_;
    std::uint64_t seq_ = 0;
    std::uint64_t denied_ = 0;
    std::uint64_t write_errors_ = 0;
};

std::string utc_now_rfc3339();

}  // namespace cordon::policy

#pragma once
// Container logs as the engine sends them: a multiplexed stream (8-byte frame
// headers: stream, 0, 0, 0, big-endian length) for containers without a TTY, raw
// bytes for those with one. LogTail turns repeated GETs with timestamps into a
// following view that shows each line once.
#include <cstdint>
#include <string>
#include <vector>

namespace cordon::host::docker {

class Client;

// The text of a logs body. content_type decides when the engine says
// (application/vnd.docker.multiplexed-stream or .raw-stream); otherwise a body
// that starts with a valid frame header is read as multiplexed. A truncated last
// frame keeps what arrived.
std::string demux_logs(const std::string& body, const std::string& content_type);

// Follows a container's log by polling: the first next() returns the last
// `tail` lines, each later one the lines written since (timestamps=1, since=the
// last second seen, lines at or before the last timestamp seen dropped). The
// engine's timestamps (RFC 3339 with fixed nanoseconds) are cut off the lines.
class LogTail {
  public:
    explicit LogTail(std::string container_id, int tail = 500);
    // New lines, each without its trailing newline. Throws cordon::Error like Client.
    std::vector<std::string> next(Client& client);
    const std::string& container_id() const { return id_; }

  private:
    std::string id_;
    int tail_;
    std::string last_stamp_;  // "2026-12-07T14:00:00.123456789Z"
};

// Splits "STAMP text" lines; lines that do not start with a timestamp keep stamp "".
struct StampedLine {
    std::string stamp;
    std::string text;
};
std::vector<StampedLine> split_stamped_lines(const std::string& text);
// Seconds since the epoch of an RFC 3339 UTC stamp, or -1 when it is not one.
std::int64_t stamp_seconds(const std::string& stamp);

}  // namespace cordon::host::docker

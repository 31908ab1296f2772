#pragma once
// A bounded buffer of text lines (a service's recent stdout/stderr): the oldest lines are
// dropped when it is full.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace cordon::guest {

class LogRing {
  public:
    explicit LogRing(std::size_t capacity = 1000);

    void push(std::string line);
    // The last `max_lines` lines (all if max_lines is 0), oldest first.
    std::vector<std::string> tail(std::size_t max_lines = 0) const;
    std::size_t size() const noexcept { return lines_.size(); }
    std::size_t capacity() const noexcept { return capacity_; }
    // Lines ever pushed (so a reader can tell how many were dropped).
    std::uint64_t total() const noexcept { return total_; }

  private:
    std::size_t capacity_;
    std::deque<std::string> lines_;
    std::uint64_t total_ = 0;
};

// Splits a byte stream into lines for a LogRing: '\n' ends a line, a trailing '\r' is
// dropped, and a line longer than max_line is cut into pieces of max_line bytes.
class LineSplitter {
  public:
    explicit LineSplitter(std::size_t max_line = 4096) : max_line_(max_line) {}
    // Appends complete lines to `out`.
    void feed(std::string_view bytes, std::vector<std::string>& out);
    // The unterminated rest (at end of stream), if any.
    bool flush(std::string& out);

  private:
    std::size_t max_line_;
    std::string partial_;
};

}  // namespace cordon::guest

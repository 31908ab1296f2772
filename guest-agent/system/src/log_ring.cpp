#include "cordon/guest/log_ring.hpp"

namespace cordon::guest {

LogRing::LogRing(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

void LogRing::push(std::string line) {
    if (lines_.size() == capacity_)
        lines_.pop_front();
    lines_.push_back(std::move(line));
    ++total_;
}

std::vector<std::string> LogRing::tail(std::size_t max_lines) const {
    std::size_t n = lines_.size();
    if (max_lines != 0 && max_lines < n)
        n = max_lines;
    return {lines_.end() - static_cast<std::ptrdiff_t>(n), lines_.end()};
}

void LineSplitter::feed(std::string_view bytes, std::vector<std::string>& out) {
    for (char c : bytes) {
        if (c == '\n') {
            if (!partial_.empty() && partial_.back() == '\r')
                partial_.pop_back();
            out.push_back(std::move(partial_));
            partial_.clear();
            continue;
        }
        partial_.push_back(c);
        if (partial_.size() >= max_line_) {
            out.push_back(std::move(partial_));
            partial_.clear();
        }
    }
}

bool LineSplitter::flush(std::string& out) {
    if (partial_.empty())
        return false;
    out = std::move(partial_);
    partial_.clear();
    return true;
}

}  // namespace cordon::guest

#include "cordon/ports/udp_framing.hpp"

#include "cordon/error.hpp"

namespace cordon::ports {

void append_datagram(std::string& out, std::string_view payload) {
    if (payload.size() > kMaxUdpPayload)
        throw Error("a UDP datagram of " + std::to_string(payload.size()) +
                        " bytes is larger than UDP allows (" + std::to_string(kMaxUdpPayload) + ")",
                    "udp framing", "send smaller datagrams");
    out.push_back(static_cast<char>((payload.size() >> 8) & 0xff));
    out.push_back(static_cast<char>(payload.size() & 0xff));
    out.append(payload);
}

DatagramDecoder::DatagramDecoder(std::size_t max_payload)
    : max_(max_payload > kMaxUdpPayload ? kMaxUdpPayload : max_payload) {}

void DatagramDecoder::feed(std::string_view bytes) {
    if (!error_.empty())
        return;
    // Drop what was consumed before growing, so the buffer stays about one datagram.
    if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= 64 * 1024)) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    buf_.append(bytes);
}

DatagramDecoder::Status DatagramDecoder::next(std::string& out) {
    if (!error_.empty())
        return Status::error;
    const std::size_t have = buf_.size() - pos_;
    if (have < kUdpFrameHeader)
        return Status::need_more;
    const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
    const std::size_t len = (std::size_t{p[0]} << 8) | p[1];
    if (len > max_) {
        error_ = "a framed UDP datagram claims " + std::to_string(len) + " bytes, more than the " +
                 std::to_string(max_) + " a UDP socket can carry";
        buf_.clear();
        pos_ = 0;
        return Status::error;
    }
    if (have < kUdpFrameHeader + len)
        return Status::need_more;
    out.assign(buf_, pos_ + kUdpFrameHeader, len);
    pos_ += kUdpFrameHeader + len;
    if (pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    }
    return Status::datagram;
}

}  // namespace cordon::ports

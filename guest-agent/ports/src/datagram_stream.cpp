// clang-format off
#include "cordon/quiet_asio.hpp"  // first: GCC 12 false positives in Asio
// clang-format on
#include "cordon/ports/datagram_stream.hpp"

#include <boost/asio/error.hpp>

namespace cordon::ports {

namespace asio = boost::asio;
using boost::system::error_code;

std::shared_ptr<DatagramStream> DatagramStream::create(std::shared_ptr<channel::Stream> stream,
                                                       std::size_t max_queue) {
    return std::shared_ptr<DatagramStream>(new DatagramStream(std::move(stream), max_queue));
}

DatagramStream::DatagramStream(std::shared_ptr<channel::Stream> stream, std::size_t max_queue)
    : stream_(std::move(stream)), max_queue_(max_queue) {}

void DatagramStream::start(DatagramHandler on_datagram, EndHandler on_end) {
    on_datagram_ = std::move(on_datagram);
    on_end_ = std::move(on_end);
    in_.resize(64 * 1024);
    read();
}

void DatagramStream::read() {
    stream_->async_read_some(
        asio::buffer(in_), [self = shared_from_this()](error_code ec, std::size_t n) {
            if (self->ended_)
                return;
            if (ec) {
                if (ec == asio::error::eof)
                    self->end({});
                else
                    self->end(ec.message() + (self->stream_->reset_reason().empty()
                                                  ? ""
                                                  : " (" + self->stream_->reset_reason() + ")"));
                return;
            }
            self->decoder_.feed(std::string_view(self->in_.data(), n));
            std::string d;
            for (;;) {
                const auto st = self->decoder_.next(d);
                if (st == DatagramDecoder::Status::need_more)
                    break;
                if (st == DatagramDecoder::Status::error) {
                    const std::string why = "protocol error: " + self->decoder_.error();
                    self->stream_->reset(why);
                    self->end(why);
                    return;
                }
                ++self->stats_.received;
                if (self->on_datagram_)
                    self->on_datagram_(d);
                if (self->ended_)
                    return;
            }
            self->read();
        });
}

bool DatagramStream::send(std::string_view payload) {
    if (ended_ || payload.size() > kMaxUdpPayload ||
        queued_.size() + writing_.size() + kUdpFrameHeader + payload.size() > max_queue_) {
        ++stats_.dropped;
        return false;
    }
    append_datagram(queued_, payload);
    ++stats_.sent;
    flush();
    return true;
}

void DatagramStream::flush() {
    if (write_pending_ || queued_.empty() || ended_)
        return;
    writing_.swap(queued_);
    queued_.clear();
    write_pending_ = true;
    stream_->async_write(asio::buffer(writing_),
                         [self = shared_from_this()](error_code ec, std::size_t) {
                             self->write_pending_ = false;
                             self->writing_.clear();
                             if (self->ended_)
                                 return;
                             if (ec) {
                                 self->end("cannot send on the stream: " + ec.message());
                                 return;
                             }
                             self->flush();
                         });
}

void DatagramStream::close(const std::string& reason) {
    if (ended_)
        return;
    ended_ = true;
    on_datagram_ = nullptr;
    on_end_ = nullptr;
    stream_->reset(reason);
}

void DatagramStream::end(const std::string& why) {
    if (ended_)
        return;
    ended_ = true;
    auto handler = std::move(on_end_);
    on_datagram_ = nullptr;
    on_end_ = nullptr;
    if (!stream_->finished())
        stream_->reset(why.empty() ? "the flow ended" : why);
    if (handler)
        handler(why);
}

}  // namespace cordon::ports

#include "cordon/channel/errors.hpp"

#include <string>

namespace cordon::channel {
namespace {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"  // boost's category has a protected dtor
class Category final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "cordon.channel"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::version_mismatch:
                return "no common channel protocol version";
            case errc::handshake_timeout:
                return "channel handshake timed out";
            case errc::session_closed:
                return "channel session closed";
            case errc::peer_went_away:
                return "channel peer went away";
            case errc::protocol_error:
                return "channel protocol error";
            case errc::keepalive_timeout:
                return "channel peer stopped answering keepalives";
            case errc::peer_not_reading:
                return "channel peer stopped reading";
            case errc::stream_reset:
                return "stream reset by peer";
            case errc::stream_refused:
                return "stream open refused by peer";
            case errc::too_many_streams:
                return "too many channel streams";
            case errc::too_many_pending_opens:
                return "too many pending stream opens";
            case errc::invalid_service_name:
                return "invalid channel service name";
            case errc::stream_closed:
                return "stream closed for sending";
            case errc::stream_ids_exhausted:
                return "channel stream ids exhausted";
            case errc::operation_in_progress:
                return "a stream operation is already in progress";
            case errc::not_established:
                return "channel session not established";
        }
        return "unknown channel error " + std::to_string(ev);
    }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& category() noexcept {
    static const Category instance;
    return instance;
}

}  // namespace cordon::channel

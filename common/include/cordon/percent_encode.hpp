#pragma once
// Percent-encoding of one URL query value or path segment (RFC 3986: everything but the
// unreserved characters), for the requests the agents make to dockerd's API.
#include <string>
#include <string_view>

namespace cordon {

std::string percent_encode(std::string_view s);

}  // namespace cordon
